//! Where a run happened and with what: kernel, CPU, cores, pinning, date,
//! host, and the provenance of the code: the git revision with a dirty
//! flag, and the SHA-256 of the binaries that ran. Recorded with every
//! result so that numbers from two machines, two commits or two builds are
//! never compared unknowingly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::records::run::Env;

/// The environment of this process now. `server_cpus` is what the caller
/// knows about the server's pinning (the load generator cannot see it).
pub fn collect(server_cpus: Option<Vec<usize>>) -> Env {
    Env {
        kernel: kernel(),
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        loadgen_cpus: affinity(),
        server_cpus,
        git_rev: git_rev(),
        git_dirty: git_state().dirty,
        loadgen_sha256: self_sha256(),
        date: crate::records::clock::rfc3339(SystemTime::now()),
        hostname: hostname(),
    }
}

/// `uname -sr`, e.g. "Linux 6.1.0-18-amd64".
pub fn kernel() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        let field = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        format!("{} {}", field(&u.sysname), field(&u.release))
    }
}

/// The first "model name" of /proc/cpuinfo.
pub fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':'));
    model.map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string())
}

/// The CPUs this process may run on (`sched_getaffinity`), or none.
pub fn affinity() -> Vec<usize> {
    crate::cpus::available().unwrap_or_default()
}

/// `git rev-parse --short HEAD` of the source tree this binary was built
/// from (or of the current directory), or "unknown".
pub fn git_rev() -> String {
    source_dir()
        .and_then(|dir| git(&dir, &["rev-parse", "--short", "HEAD"]).ok())
        .map(|out| out.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The git checkout behind the figures: the source tree this binary was
/// built from if it is still there, else the current directory.
fn source_dir() -> Option<PathBuf> {
    [Path::new(env!("CARGO_MANIFEST_DIR")), Path::new(".")]
        .into_iter()
        .find(|dir| git(dir, &["rev-parse", "--git-dir"]).is_ok())
        .map(Path::to_path_buf)
}

/// What `git -C DIR ARGS` printed, or why it could not say.
pub(crate) fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("git cannot run ({e})"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The git state of the checkout behind the figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GitState {
    /// The checkout asked, its top directory (where this binary was built,
    /// or the current directory); `None` when neither is a git checkout.
    pub dir: Option<String>,
    /// `git rev-parse HEAD`.
    pub revision: Option<String>,
    /// Whether `git status --porcelain` printed anything outside `results/`:
    /// changes not committed, untracked files included. `results/` is left
    /// out because sweeps write there (a sweep's own new directory would
    /// otherwise make every run after its first look dirty) and it holds no
    /// code. `None` when unknown.
    pub dirty: Option<bool>,
    /// What it printed, at most [`MAX_CHANGES`] lines.
    pub changes: Vec<String>,
    /// Why the revision or the dirty flag is unknown.
    pub note: Option<String>,
}

/// Lines of `git status --porcelain` kept in [`GitState::changes`].
pub const MAX_CHANGES: usize = 20;

/// The git state now (see [`GitState`]); never fails, says why instead.
pub fn git_state() -> GitState {
    let Some(dir) = source_dir() else {
        return GitState {
            note: Some(format!(
                "no git checkout at {} or in the current directory (or git is not installed): revision unknown",
                env!("CARGO_MANIFEST_DIR")
            )),
            ..GitState::default()
        };
    };
    git_state_in(&dir)
}

/// The git state of the checkout at `dir`.
pub fn git_state_in(dir: &Path) -> GitState {
    let top = git(dir, &["rev-parse", "--show-toplevel"]).map(|t| PathBuf::from(t.trim()));
    let top = top.unwrap_or_else(|_| dir.to_path_buf());
    let mut state = GitState { dir: Some(top.display().to_string()), ..GitState::default() };
    let mut notes = Vec::new();
    match git(dir, &["rev-parse", "HEAD"]) {
        Ok(rev) => state.revision = Some(rev.trim().to_string()),
        Err(e) => notes.push(format!("git rev-parse HEAD: {e}")),
    }
    match git(&top, &["status", "--porcelain", "--", ".", ":(exclude)results"]) {
        Ok(status) => {
            let lines: Vec<&str> = status.lines().filter(|l| !l.trim().is_empty()).collect();
            state.dirty = Some(!lines.is_empty());
            state.changes = lines.iter().take(MAX_CHANGES).map(|l| l.to_string()).collect();
            if lines.len() > MAX_CHANGES {
                state.changes.push(format!("... and {} more", lines.len() - MAX_CHANGES));
            }
        }
        Err(e) => notes.push(format!("git status --porcelain: {e}")),
    }
    state.note = (!notes.is_empty()).then(|| notes.join("; "));
    state
}

/// The SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The SHA-256 of this running executable (`/proc/self/exe`: the file this
/// process was started from, even if it was rebuilt since), computed once.
pub fn self_sha256() -> Option<String> {
    static HASH: OnceLock<Option<String>> = OnceLock::new();
    HASH.get_or_init(|| sha256_file(Path::new("/proc/self/exe")).ok()).clone()
}

/// A binary that ran, and what it was.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Binary {
    /// `loadgen` or `servers`.
    pub role: String,
    pub path: String,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    /// Why it could not be hashed.
    pub error: Option<String>,
}

impl Binary {
    /// Hash the file at `path` now.
    pub fn of(role: &str, path: &Path) -> Binary {
        let (sha256, error) = match sha256_file(path) {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(format!("cannot read {}: {e}", path.display()))),
        };
        let bytes = std::fs::metadata(path).ok().map(|m| m.len());
        Binary { role: role.into(), path: path.display().to_string(), sha256, bytes, error }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_file() {
        let dir = crate::testdata::scratch("sha");
        std::fs::write(dir.join("abc"), b"abc").unwrap();
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_file(&dir.join("abc")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let b = Binary::of("servers", &dir.join("abc"));
        assert_eq!((b.bytes, b.error.as_deref()), (Some(3), None));
        let missing = Binary::of("servers", &dir.join("nope"));
        assert!(missing.sha256.is_none() && missing.error.unwrap().contains("nope"));
    }

    #[test]
    fn git_state_says_dirty_and_why_it_cannot_tell() {
        let dir = crate::testdata::scratch("git");
        let none = git_state_in(&dir);
        assert_eq!((none.revision.as_deref(), none.dirty), (None, None), "{none:?}");
        assert!(none.note.is_some(), "says why: {none:?}");
        let sh = |args: &[&str]| git(&dir, args).unwrap_or_else(|e| panic!("git {args:?}: {e}"));
        sh(&["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "one").unwrap();
        sh(&["add", "a.txt"]);
        sh(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one"]);
        let clean = git_state_in(&dir);
        assert_eq!(clean.revision.as_ref().map(String::len), Some(40), "{clean:?}");
        assert_eq!((clean.dirty, clean.note.as_deref()), (Some(false), None), "{clean:?}");
        std::fs::create_dir_all(dir.join("results/2026-01-01T00-00-00Z")).unwrap();
        std::fs::write(dir.join("results/2026-01-01T00-00-00Z/env.json"), "{}").unwrap();
        assert_eq!(git_state_in(&dir).dirty, Some(false), "a sweep's own results are no change of code");
        std::fs::write(dir.join("a.txt"), "two").unwrap();
        let dirty = git_state_in(&dir);
        assert_eq!(dirty.dirty, Some(true));
        assert_eq!(dirty.changes, [" M a.txt"]);
    }

    #[test]
    fn this_machine() {
        let e = collect(Some(vec![0]));
        assert!(e.kernel.starts_with("Linux "), "{}", e.kernel);
        assert!(e.cores >= 1);
        assert!(!e.loadgen_cpus.is_empty());
        assert_eq!(e.server_cpus, Some(vec![0]));
        assert!(e.date.ends_with('Z') && e.date.len() == 20, "{}", e.date);
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        assert_eq!(e.loadgen_sha256, Some(sha256_file(&exe).unwrap()), "the hash of the binary that runs");
    }
}
