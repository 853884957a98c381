//! `loadgen run --profile` from the outside: against a real mio-single it
//! writes a flame graph, folded stacks and a breakdown that names at least
//! 90% of the samples, and perf sampled the measured window only; without
//! perf, or with a perf that refuses, the run goes on unprofiled and says so.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use testkit::Server;

/// Whether perf can record here (installed, and allowed: root, or a low
/// enough `perf_event_paranoid`); otherwise a `SKIPPED` line, as testkit
/// skips a model that cannot run.
fn perf_records_here() -> bool {
    let ok = Command::new("perf")
        .args(["record", "-a", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED profile: perf is missing or may not record here; nothing was tested");
    }
    ok
}

/// The `perf script` sample times (seconds) of process `pid` in a recording.
fn sample_times(data: &Path, pid: u32) -> Vec<f64> {
    let out =
        Command::new("perf").args(["script", "-F", "time", &format!("--pid={pid}"), "-i"]).arg(data).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|t| t.trim_end_matches(':').parse().ok())
        .collect()
}

#[test]
fn profile_of_mio_single_has_its_files_a_named_breakdown_and_the_window_only() {
    if !perf_records_here() {
        return;
    }
    let server = Server::start("mio-single", &[]);
    let tmp = tempdir();
    let dir = tmp.join("prof");
    let mut args = words("-c 50 --warmup 1s --duration 1s --profile-hz 499");
    args.extend(flag_path("--target", Path::new(&server.data.to_string())));
    args.extend(flag_path("--admin", Path::new(&server.admin.unwrap().to_string())));
    args.extend(flag_path("--profile", &dir));
    let (out, result) = run(&args);
    let r = result.unwrap_or_else(|| panic!("no result: {}", stderr(&out)));
    let p = r.profile.as_ref().unwrap_or_else(|| panic!("no profile; notes: {:?}", r.notes));
    assert_eq!(p.hz, 499);
    let s = p.server.as_ref().expect("a server profile");
    for f in ["server.svg", "server.folded"] {
        assert!(dir.join(f).metadata().is_ok_and(|m| m.len() > 0), "{f} missing or empty");
    }
    assert!(std::fs::read_to_string(dir.join("server.svg")).unwrap().contains("<svg"));
    assert!(s.samples > 0);
    assert!(s.named_share >= 0.9, "named share {} ({:?})", s.named_share, s.categories);
    let sum: f64 = s.categories.values().sum();
    assert!((sum - s.cpu_us_per_req).abs() < 1e-6 * s.cpu_us_per_req.max(1.0), "{sum} vs {}", s.cpu_us_per_req);
    assert!(s.cpu_us_per_req > 0.0);

    // Window only: a second of warm-up came before the window and a drain
    // after it, so samples from either would stretch their span well past
    // the window's length.
    let times = sample_times(&dir.join("perf.data"), server.child.id());
    assert!(!times.is_empty());
    let (first, last) = (times.iter().cloned().fold(f64::MAX, f64::min), times.iter().cloned().fold(0.0, f64::max));
    assert!(last - first <= p.window_s + 0.05, "samples span {:.3} s, window {:.3} s", last - first, p.window_s);
    assert!((p.window_s - r.window_s).abs() < 0.25, "perf on {:.3} s, window {:.3} s", p.window_s, r.window_s);

    // Every run on loopback with --admin has the run-queue wait.
    let q = r.run_queue.as_ref().expect("run_queue");
    assert!(q.threads >= 2, "{q:?}");
    assert!(q.read_ms > 0.0);
}

/// `loadgen run --profile` with `path` as PATH at a mio-single: the
/// result's notes.
fn notes_with_path(path: &Path) -> Vec<String> {
    let server = Server::start("mio-single", &[]);
    let dir = tempdir();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "-c", "10", "--warmup", "0.2s", "--duration", "0.5s", "--quiet"])
        .args(["--target", &server.data.to_string(), "--admin", &server.admin.unwrap().to_string()])
        .arg("--profile")
        .arg(dir.join("prof"))
        .arg("--json")
        .arg(dir.join("run.json"))
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "the run failed: {}", stderr(&out));
    let r: loadgen::records::run::RunResult =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert!(r.profile.is_none(), "{:?}", r.profile);
    r.notes
}

#[test]
fn without_perf_the_run_goes_on_and_says_so() {
    let empty = tempdir();
    let notes = notes_with_path(&empty);
    assert_eq!(notes.iter().filter(|n| n.contains("perf is not installed")).count(), 1, "{notes:?}");
}

#[test]
fn a_perf_that_refuses_leaves_the_run_unprofiled_with_its_reason() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempdir();
    let fake = bin.join("perf");
    std::fs::write(&fake, "#!/bin/sh\necho 'Error: Access to performance monitoring is restricted' >&2\nexit 255\n")
        .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let notes = notes_with_path(&bin);
    let refused: Vec<_> = notes.iter().filter(|n| n.contains("perf refused")).collect();
    assert_eq!(refused.len(), 1, "{notes:?}");
    assert!(refused[0].contains("Access to performance monitoring is restricted"), "{notes:?}");
}
