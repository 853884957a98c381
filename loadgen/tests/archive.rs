//! `loadgen archive` end to end: a small sweep packed into runs.tar.zst is
//! reported exactly as its loose twin (tables, CSVs and every chart, the
//! percentile spectrum drawn from the archived `.hgrm` files), and every
//! archive committed under results/ holds the files its summary names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use loadgen::archive::{Runs, ARCHIVE, RUNS};
use loadgen::records::sweep::{RunStatus, Summary};

mod common;
use common::{flag_path, tempdir, text, words};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn loadgen<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(LOADGEN).args(args).stdin(Stdio::null()).output().expect("run loadgen")
}

/// What `loadgen report` writes, by name: the tables, the CSVs and every
/// chart.
fn report_outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = ["summary.csv", "runs.csv", "verdicts.csv", "tables.md"].map(String::from).into();
    let charts = std::fs::read_dir(dir.join("charts")).unwrap();
    names.extend(charts.map(|e| format!("charts/{}", e.unwrap().file_name().to_string_lossy())));
    names.sort();
    names.into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap())).collect()
}

#[test]
fn report_reads_an_archived_sweep_as_it_reads_the_loose_one() {
    let tmp = tempdir();
    let (loose, packed) = (tmp.join("loose"), tmp.join("packed"));
    let mut args = words("sweep --models mio-single --levels 20 --warmup 0.2s --duration 0.4s --repeat 1 --no-floor");
    args.extend([flag_path("--out", &loose), flag_path("--servers-bin", &testkit::servers_bin())].concat());
    let sweep = loadgen(&args);
    assert!(sweep.status.success(), "{}", text(&sweep));
    let copy = Command::new("cp").arg("-a").args([&loose, &packed]).status().unwrap();
    assert!(copy.success());

    // Packed: the loose files are gone, and packing again is refused.
    let pack = loadgen(&["archive", packed.to_str().unwrap()]);
    assert!(pack.status.success(), "{}", text(&pack));
    assert!(packed.join(ARCHIVE).is_file() && !packed.join(RUNS).exists());
    let again = loadgen(&["archive", packed.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(text(&again).contains("runs.tar.zst exists already"), "{}", text(&again));

    // The same report from either form, byte for byte.
    for dir in [&loose, &packed] {
        let report = loadgen(&["report", dir.to_str().unwrap(), "--quiet"]);
        assert!(report.status.success(), "{}", text(&report));
    }
    let (from_loose, from_packed) = (report_outputs(&loose), report_outputs(&packed));
    assert!(from_loose.iter().any(|(n, _)| n == "charts/echo-saturate-spectrum.svg"), "no spectrum chart");
    for ((name, a), (other, b)) in from_loose.iter().zip(&from_packed) {
        assert_eq!(name, other);
        assert!(a == b, "{name} differs between the loose and the archived sweep");
    }
    assert_eq!(from_loose.len(), from_packed.len());
    // And the spectrum is the runs' own, not the fallback drawn without them.
    let spectrum = String::from_utf8(std::fs::read(packed.join("charts/echo-saturate-spectrum.svg")).unwrap()).unwrap();
    assert!(!spectrum.contains("No .hgrm file"), "the archived .hgrm files were not read");
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Every sweep folder under `dir` (at any depth) that has an archive.
fn archived_sweeps(dir: &Path, found: &mut Vec<PathBuf>) {
    if dir.join(ARCHIVE).is_file() {
        found.push(dir.to_path_buf());
    }
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            archived_sweeps(&entry.path(), found);
        }
    }
}

#[test]
fn every_committed_archive_holds_the_files_its_summary_names() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let mut sweeps = Vec::new();
    archived_sweeps(&results, &mut sweeps);
    assert!(sweeps.iter().any(|d| d.ends_with("reference")), "results/reference has no {ARCHIVE}: {sweeps:?}");
    for dir in &sweeps {
        assert!(!dir.join(RUNS).exists(), "{}: both an archive and loose runs/", dir.display());
        let summary = Summary::load(dir).unwrap();
        let runs = Runs::open(dir).unwrap();
        for record in summary.records.iter().filter(|r| r.status == RunStatus::Ok) {
            for name in [&record.files.json, &record.files.hlog, &record.files.hgrm] {
                runs.read(name).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}
