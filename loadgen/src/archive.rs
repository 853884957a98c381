//! A sweep's per-run files, loose or packed in one archive
//! (`DIR/runs.tar.zst`), and the one way every reader opens them: [`Runs`].
//!
//! A sweep writes each run's files loose, as it goes, under
//! `DIR/runs/<scenario>/`: the record (`.json`), the interval log
//! (`.hlog`), the percentile distribution (`.hgrm`, and one per method of a
//! mix, `.echo.hgrm`...), both sides' stderr (`.loadgen.log`,
//! `.server.log`) and, for several load generators, each one's own
//! (`.lg0.*`). A reference sweep has about 6,000 of them. For a sweep that
//! is committed, `loadgen archive DIR` packs them into one tar compressed
//! with zstd, each under the name the summary gives it (`runs/...`), and
//! removes the loose files. Readers do not care which form a folder has:
//! [`Runs::open`] reads the archive when it is there, the loose files
//! otherwise.
//!
//! The archive is reproducible: members in byte order of their names, each
//! a plain file with mode 0644, owner 0 and time 0, so that packing the same
//! files twice gives the same bytes (and git one blob). The usual tools read
//! it too: `tar --zstd -xf runs.tar.zst` gives back `runs/`.
//!
//! It is compressed once and read many times, so at zstd's level 19
//! ([`LEVEL`]): a reference sweep's 17 MB tar of runs (5,796 files) becomes
//! 2.5 MB in about 20 s on a 2-core machine, where zstd's fastest level leaves 3 MB (and
//! ruzstd's, the pure-Rust encoder, 4.7 MB: more than git's own 4.1 MB for
//! the same files loose). Reading decodes the whole archive into memory
//! once, which is what a report needs anyway (it reads one `.hgrm` per
//! run), and keeps a member's read a lookup.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::files::write_atomic;

/// The archive's file name in a sweep folder.
pub const ARCHIVE: &str = "runs.tar.zst";
/// The folder of loose per-run files in a sweep folder; also the first part
/// of every member's name.
pub const RUNS: &str = "runs";

/// zstd's compression level for an archive: its highest short of the
/// `--ultra` levels, whose larger windows cost every reader more memory.
pub const LEVEL: i32 = 19;

/// What can go wrong reading or making an archive: each names the file, the
/// archive or the member at fault.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: no member {member}", archive.display())]
    Missing { archive: PathBuf, member: String },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{} is not a zstd-compressed tar: {reason}", archive.display())]
    Corrupt { archive: PathBuf, reason: String },
    #[error("{}: {member} is not valid UTF-8", archive.display())]
    NotText { archive: PathBuf, member: String },
    #[error("{} exists already: its runs were archived before", .0.display())]
    Exists(PathBuf),
    #[error("{} is not a sweep folder: it has no summary.json", .0.display())]
    NotASweep(PathBuf),
    #[error("{} has no loose run files to archive (no runs/ folder, or an empty one)", .0.display())]
    NothingToPack(PathBuf),
    #[error("{}: {what}; only plain files with UTF-8 names are archived", path.display())]
    Unpackable { path: PathBuf, what: &'static str },
}

/// Where a sweep folder's per-run files are, ready to read.
#[derive(Debug)]
pub enum Runs {
    /// Loose under the folder, as the sweep wrote them.
    Loose { dir: PathBuf },
    /// In the folder's archive, decoded: member name (`runs/...`) → bytes.
    Packed { archive: PathBuf, members: BTreeMap<String, Vec<u8>> },
}

impl Runs {
    /// The per-run files of the sweep folder `dir`: its archive, decoded,
    /// when it has one; its loose files otherwise (which may be missing:
    /// a read then says which).
    pub fn open(dir: &Path) -> Result<Runs, ArchiveError> {
        let archive = dir.join(ARCHIVE);
        if !archive.exists() {
            return Ok(Runs::Loose { dir: dir.to_path_buf() });
        }
        let packed = fs::read(&archive).map_err(|source| ArchiveError::Read { path: archive.clone(), source })?;
        let members = unpack(&archive, &packed)?;
        Ok(Runs::Packed { archive, members })
    }

    /// The bytes of one run file, named relative to the sweep folder as the
    /// summary names it (`Record::files`, `runs/<scenario>/...`).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        match self {
            Runs::Loose { dir } => {
                let path = dir.join(name);
                fs::read(&path).map_err(|source| ArchiveError::Read { path, source })
            }
            Runs::Packed { archive, members } => members
                .get(name)
                .cloned()
                .ok_or_else(|| ArchiveError::Missing { archive: archive.clone(), member: name.to_string() }),
        }
    }

    /// One run file as text ([`Runs::read`]).
    pub fn read_to_string(&self, name: &str) -> Result<String, ArchiveError> {
        String::from_utf8(self.read(name)?).map_err(|_| {
            let archive = match self {
                Runs::Loose { dir } => dir.clone(),
                Runs::Packed { archive, .. } => archive.clone(),
            };
            ArchiveError::NotText { archive, member: name.to_string() }
        })
    }
}

/// What [`pack`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub archive: PathBuf,
    /// Files packed (and removed).
    pub files: usize,
    /// Their bytes, and the archive's.
    pub raw_bytes: u64,
    pub archive_bytes: u64,
}

/// `loadgen archive DIR`: pack the loose files under `DIR/runs/` into
/// `DIR/runs.tar.zst` and remove them. Refuses a folder that is not a
/// sweep's, one archived before, and one with nothing loose to pack. The
/// archive is read back and compared with the files before any is removed.
pub fn pack(dir: &Path) -> Result<Packed, ArchiveError> {
    let archive = dir.join(ARCHIVE);
    if archive.exists() {
        return Err(ArchiveError::Exists(archive));
    }
    if !dir.join("summary.json").is_file() {
        return Err(ArchiveError::NotASweep(dir.to_path_buf()));
    }
    let files = loose_files(dir)?;
    if files.is_empty() {
        return Err(ArchiveError::NothingToPack(dir.to_path_buf()));
    }
    let bytes = compress(&archive, &files)?;
    check_round_trip(&archive, &bytes, &files)?;
    write_atomic(&archive, &bytes).map_err(|source| ArchiveError::Write { path: archive.clone(), source })?;
    let runs = dir.join(RUNS);
    fs::remove_dir_all(&runs).map_err(|source| ArchiveError::Write { path: runs, source })?;
    Ok(Packed {
        archive,
        files: files.len(),
        raw_bytes: files.values().map(|b| b.len() as u64).sum(),
        archive_bytes: bytes.len() as u64,
    })
}

/// Every file under `DIR/runs/`, by its member name (`runs/...`), sorted:
/// the archive's order, whatever order the directory lists them in.
fn loose_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let mut files = BTreeMap::new();
    let mut pending = vec![(dir.join(RUNS), RUNS.to_string())];
    if !pending[0].0.is_dir() {
        return Ok(files);
    }
    while let Some((path, name)) = pending.pop() {
        let read = |source| ArchiveError::Read { path: path.clone(), source };
        for entry in fs::read_dir(&path).map_err(read)? {
            let entry = entry.map_err(read)?;
            let child = entry.path();
            let kind = entry.file_type().map_err(|source| ArchiveError::Read { path: child.clone(), source })?;
            let Some(base) = entry.file_name().to_str().map(str::to_string) else {
                return Err(ArchiveError::Unpackable { path: child, what: "a name that is not UTF-8" });
            };
            let member = format!("{name}/{base}");
            if kind.is_dir() {
                pending.push((child, member));
            } else if kind.is_file() {
                let bytes = fs::read(&child).map_err(|source| ArchiveError::Read { path: child.clone(), source })?;
                files.insert(member, bytes);
            } else {
                return Err(ArchiveError::Unpackable { path: child, what: "not a plain file (a link?)" });
            }
        }
    }
    Ok(files)
}

/// The tar of `files` (in their order, each with fixed metadata), compressed.
fn compress(archive: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, ArchiveError> {
    let write = |source| ArchiveError::Write { path: archive.to_path_buf(), source };
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, name, bytes.as_slice()).map_err(write)?;
    }
    let plain = tar.into_inner().map_err(write)?;
    zstd::stream::encode_all(plain.as_slice(), LEVEL).map_err(write)
}

/// The archive about to replace the loose files holds exactly them.
fn check_round_trip(archive: &Path, bytes: &[u8], files: &BTreeMap<String, Vec<u8>>) -> Result<(), ArchiveError> {
    if unpack(archive, bytes)? == *files {
        return Ok(());
    }
    let reason = "it does not read back as the files it was made of; nothing was removed".to_string();
    Err(ArchiveError::Corrupt { archive: archive.to_path_buf(), reason })
}

/// Decode an archive's bytes into its plain files, by name. Directory
/// entries (as `tar` itself writes them) are skipped, and a leading `./`
/// dropped, so that a folder packed by hand reads the same.
fn unpack(archive: &Path, bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let corrupt = |reason: String| ArchiveError::Corrupt { archive: archive.to_path_buf(), reason };
    let plain = zstd::stream::decode_all(bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut tar = tar::Archive::new(plain.as_slice());
    let mut members = BTreeMap::new();
    for entry in tar.entries().map_err(|e| corrupt(e.to_string()))? {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").to_string();
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(|e| corrupt(format!("member {name}: {e}")))?;
        members.insert(name, data);
    }
    Ok(members)
}

/// Pack a sweep folder's run files into `DIR/runs.tar.zst` and remove them.
#[derive(Clone, Debug, clap::Args)]
pub struct ArchiveArgs {
    /// The sweep's results directory (`results/<run-id>`), with its run
    /// files loose under `runs/`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// `loadgen archive DIR`, with what it did said on stderr.
pub fn archive(args: &ArchiveArgs) -> anyhow::Result<()> {
    let done = pack(&args.dir)?;
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!(
        "{}: {} files ({:.1} MB) packed into {:.1} MB; {} removed",
        done.archive.display(),
        done.files,
        mb(done.raw_bytes),
        mb(done.archive_bytes),
        args.dir.join(RUNS).display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep folder with a summary and a few run files, in a fresh
    /// temporary directory.
    fn sweep_folder(tag: &str) -> crate::testdata::Scratch {
        let dir = crate::testdata::scratch(&format!("archive-{tag}"));
        fs::create_dir_all(dir.join("runs/echo-saturate")).unwrap();
        fs::create_dir_all(dir.join("runs/knee")).unwrap();
        fs::write(dir.join("summary.json"), "{}").unwrap();
        fs::write(dir.join("runs/echo-saturate/tokio-c200-r1.json"), "{\"ok\":1}").unwrap();
        fs::write(dir.join("runs/echo-saturate/tokio-c200-r1.hgrm"), "percentiles\n").unwrap();
        // A name past the 100 bytes of a plain tar header.
        let long = format!("runs/knee/{}-c5000-at180000-r3.server.log", "m".repeat(100));
        fs::write(dir.join(long), vec![0u8, 255, 7]).unwrap();
        dir
    }

    #[test]
    fn packs_reads_back_every_file_and_removes_the_loose_ones() {
        let dir = sweep_folder("trip");
        let before = loose_files(&dir).unwrap();
        assert_eq!(before.len(), 3);
        let done = pack(&dir).unwrap();
        assert_eq!((done.files, done.archive), (3, dir.join(ARCHIVE)));
        assert!(!dir.join(RUNS).exists());
        let packed = Runs::open(&dir).unwrap();
        assert!(matches!(packed, Runs::Packed { .. }));
        for (name, bytes) in &before {
            assert_eq!(&packed.read(name).unwrap(), bytes, "{name}");
        }
        assert_eq!(packed.read_to_string("runs/echo-saturate/tokio-c200-r1.json").unwrap(), "{\"ok\":1}");
    }

    #[test]
    fn the_same_files_pack_to_the_same_bytes() {
        let (a, b) = (sweep_folder("same-a"), sweep_folder("same-b"));
        // Different times on disk: the archive keeps none.
        let old = fs::File::options().write(true).open(b.join("runs/echo-saturate/tokio-c200-r1.json")).unwrap();
        old.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
        pack(&a).unwrap();
        pack(&b).unwrap();
        assert_eq!(fs::read(a.join(ARCHIVE)).unwrap(), fs::read(b.join(ARCHIVE)).unwrap());
    }

    #[test]
    fn a_missing_member_names_the_archive_and_the_member() {
        let dir = sweep_folder("missing");
        pack(&dir).unwrap();
        let err = Runs::open(&dir).unwrap().read("runs/echo-saturate/pool-c200-r1.hgrm").unwrap_err().to_string();
        assert!(err.contains(&dir.join(ARCHIVE).display().to_string()), "{err}");
        assert!(err.contains("no member runs/echo-saturate/pool-c200-r1.hgrm"), "{err}");
    }

    #[test]
    fn a_loose_folder_reads_its_files_and_names_a_missing_one() {
        let dir = sweep_folder("loose");
        let runs = Runs::open(&dir).unwrap();
        assert_eq!(runs.read_to_string("runs/echo-saturate/tokio-c200-r1.hgrm").unwrap(), "percentiles\n");
        let err = runs.read("runs/echo-saturate/nope.hgrm").unwrap_err().to_string();
        assert!(err.contains("runs/echo-saturate/nope.hgrm"), "{err}");
    }

    #[test]
    fn refuses_to_pack_twice_or_what_is_not_a_sweep() {
        let dir = sweep_folder("refuse");
        pack(&dir).unwrap();
        let archive = fs::read(dir.join(ARCHIVE)).unwrap();
        fs::create_dir_all(dir.join("runs/x")).unwrap();
        fs::write(dir.join("runs/x/new.json"), "{}").unwrap();
        assert!(matches!(pack(&dir), Err(ArchiveError::Exists(_))));
        // Refused before touching anything.
        assert_eq!(fs::read(dir.join(ARCHIVE)).unwrap(), archive);
        assert!(dir.join("runs/x/new.json").is_file());
        fs::remove_file(dir.join(ARCHIVE)).unwrap();
        fs::remove_file(dir.join("summary.json")).unwrap();
        assert!(matches!(pack(&dir), Err(ArchiveError::NotASweep(_))));
        fs::write(dir.join("summary.json"), "{}").unwrap();
        fs::remove_dir_all(dir.join(RUNS)).unwrap();
        assert!(matches!(pack(&dir), Err(ArchiveError::NothingToPack(_))));
    }

    #[test]
    fn a_damaged_archive_is_named_not_read_as_empty() {
        let dir = sweep_folder("damaged");
        pack(&dir).unwrap();
        let mut bytes = fs::read(dir.join(ARCHIVE)).unwrap();
        bytes.truncate(bytes.len() / 2);
        fs::write(dir.join(ARCHIVE), bytes).unwrap();
        let err = Runs::open(&dir).unwrap_err().to_string();
        assert!(err.contains("runs.tar.zst is not a zstd-compressed tar"), "{err}");
    }
}
