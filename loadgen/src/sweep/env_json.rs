//! `env.json`: what the sweep ran on and what it did — machine, pinning,
//! versions, scenarios and their flags, what was skipped and why — and the
//! provenance of its figures: the exact command line, the git revision with
//! a dirty flag, and the SHA-256 of each binary that ran, so that a reader
//! can judge and repeat it, and tell which build made which numbers.
//! Rewritten when the sweep starts and when it ends.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cpus::Pinning;
use crate::env::{Binary, GitState};
use crate::floor::Floor;
use crate::records::run::Env;

/// The CPU budget of a sweep's budgeted servers: every scenario's with
/// `--server-cpu-budget F`, else `knee-budget`'s alone (each scenario's
/// own `server_cpu_budget` says whether it ran under it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BudgetInfo {
    #[serde(flatten)]
    pub budget: crate::cgroup::CpuBudget,
    /// `v1` (`cpu.cfs_quota_us`) or `v2` (`cpu.max`).
    pub cgroup_version: crate::cgroup::Version,
    /// Where each server's `iomodels-*` cgroup was made.
    pub cgroup_parent: String,
    /// Whether the servers' admin thread (STATS) ran outside the budget.
    pub admin_outside: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepEnv {
    pub run_id: String,
    /// The sweep's own command line, exactly as given (argv).
    pub command: Vec<String>,
    /// The directory it was given in (relative paths in `command` start there).
    pub cwd: Option<String>,
    /// The git checkout behind the binaries, at sweep start: revision, and
    /// whether it had changes not committed (and which).
    pub git: GitState,
    /// The binaries that ran (`loadgen` itself, which also ran every
    /// `loadgen run`, and `servers`), hashed at sweep start.
    pub binaries: Vec<Binary>,
    /// Binaries whose file changed during the sweep (hashed again at its
    /// end): a rebuild meanwhile means some runs used another build.
    pub binaries_changed: Vec<String>,
    /// The checkout again as the sweep ended (`None` until it has).
    pub git_at_end: Option<GitState>,
    /// HEAD moved, or `git status --porcelain` (outside results/) changed,
    /// between start and end (see `super::provenance::changed_during_run`):
    /// the figures may not be the start revision's. `None` until the end.
    pub changed_during_run: Option<bool>,
    /// Started with `--reference`: the tree was clean and both binaries
    /// were built from its HEAD (checked before the first run).
    pub reference: bool,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: Option<String>,
    pub elapsed_s: Option<f64>,
    /// Stopped by Ctrl-C (or SIGTERM) before every run was done.
    pub interrupted: bool,
    pub machine: Env,
    pub pinning: Pinning,
    /// The quota the budgeted scenarios' servers ran under (with
    /// `--server-cpu-budget F`, every scenario; without it, `knee-budget`'s
    /// default), and the cgroup hierarchy their cgroups were made in
    /// (`None`: no scenario was budgeted). Sweeps made before scenarios had
    /// budgets of their own wrote it for a budget of the whole sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_budget: Option<BudgetInfo>,
    pub servers_bin: String,
    pub versions: Versions,
    pub models: Vec<String>,
    /// What was left out and why, e.g. "libevent: not built (libevent-dev missing)".
    pub skipped: Vec<String>,
    pub levels: Vec<u64>,
    /// Passes over every cell (`--repeat`), interleaved.
    pub repeats: u32,
    pub warmup_s: f64,
    /// `--duration`; an open-loop run's window may be longer (see each
    /// scenario's `window_s`).
    pub duration_s: f64,
    pub scenarios: Vec<ScenarioInfo>,
    pub compute: Compute,
    /// What one request costs at the very least here (`loadgen floor`),
    /// measured at sweep start; `None` with `--no-floor`.
    pub floor: Option<SweepFloor>,
    /// The time plan's estimate of the runs, in seconds (see `sweep`'s
    /// doc), the profiled runs included.
    pub planned_s: f64,
    /// Every run planned: the measured passes' and the profiled ones'.
    pub runs_planned: usize,
    /// Of those, the profiled runs (`--profile`: every model at each chosen
    /// cell, after the passes; never in the summaries).
    pub runs_profiled: usize,
    /// A ladder's rungs not run: its climb stopped past the model's knee.
    pub runs_skipped: usize,
    /// Runs finished, profiled ones included.
    pub runs_done: usize,
    pub runs_failed: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Versions {
    pub loadgen: String,
    /// `servers --version`.
    pub servers: String,
    /// `rustc --version`, if a toolchain is on PATH.
    pub rustc: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub about: String,
    /// The scenario's own `loadgen run` flags.
    pub loadgen_flags: Vec<String>,
    /// The measured window at each level, seconds: `--duration`, or for an
    /// open loop at least connections ÷ rate.
    pub window_s: BTreeMap<u64, f64>,
    /// The connection levels it ran at.
    pub levels: Vec<u64>,
    /// A ladder's offered rates (requests/s), each run with `--rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<Vec<f64>>,
    /// A `scaling` step's own CPUs (the sweep's `pinning` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling_step: Option<crate::cpus::ScalingStep>,
    /// The CPU budget its servers ran under (`None`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_budget: Option<crate::cgroup::CpuBudget>,
}

/// The COMPUTE calibration behind `cpu-work`.
#[derive(Clone, Debug, Serialize)]
pub struct Compute {
    pub rounds: u32,
    /// Measured in this process at startup (best of 5).
    pub us_per_round: f64,
    pub us_per_request: f64,
    /// "calibrated" or "--compute-rounds".
    pub source: String,
}

/// The floors of `loadgen floor`, measured where the sweep's processes run:
/// the write+read pair on the server's first CPU, the ping-pongs on that
/// CPU alone and between it and the load generator's first CPU.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SweepFloor {
    pub pair_cpu: usize,
    pub pairs: u64,
    pub round_trips: u64,
    pub figures: Floor,
}

/// Pairs and round trips the sweep's floor measurement times (about 3 s).
pub const FLOOR_PAIRS: u64 = 200_000;
pub const FLOOR_ROUND_TRIPS: u64 = 20_000;

/// Measure the floors on the sweep's CPUs (see [`SweepFloor`]).
pub fn measure_floor(pinning: &Pinning) -> anyhow::Result<SweepFloor> {
    let server = pinning.server_cpus[0];
    let mut cpus = vec![server];
    cpus.extend(pinning.loadgen_cpus.iter().copied().find(|&c| c != server));
    let figures = crate::floor::measure(Some(server), &cpus, FLOOR_PAIRS, FLOOR_ROUND_TRIPS)?;
    Ok(SweepFloor { pair_cpu: server, pairs: FLOOR_PAIRS, round_trips: FLOOR_ROUND_TRIPS, figures })
}

/// The floor a sweep recorded in `DIR/env.json`: `None` when it measured
/// none (`--no-floor`, or a sweep older than the field).
pub fn load_floor(dir: &Path) -> anyhow::Result<Option<SweepFloor>> {
    use anyhow::Context;
    let path = dir.join("env.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match value.get("floor") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(f) => serde_json::from_value(f.clone())
            .map(Some)
            .with_context(|| format!("{}: `floor` is not a floor measurement", path.display())),
    }
}

/// The machine, as `RunResult.env` describes it (`crate::env`). Call it
/// once the sweep has pinned itself to the load generator's CPUs.
pub fn machine(pinning: &Pinning) -> Env {
    let mut env = crate::env::collect(Some(pinning.server_cpus.clone()));
    // `collect` counts the CPUs this (now pinned) process may use; the
    // machine has at least those the sweep could split.
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    env.cores = env.cores.max(pinning.available.len()).max(online.max(0) as usize);
    env
}

/// Hash the binaries that the sweep runs.
pub fn binaries(loadgen: &Path, servers: &Path) -> Vec<Binary> {
    vec![Binary::of("loadgen", loadgen), Binary::of("servers", servers)]
}

/// The binaries whose hash is not what it was at sweep start, said so.
pub fn changed(at_start: &[Binary]) -> Vec<String> {
    let hash = |h: &Option<String>| h.clone().unwrap_or_else(|| "unreadable".into());
    let mut changed = Vec::new();
    for b in at_start {
        let now = Binary::of(&b.role, Path::new(&b.path)).sha256;
        if now != b.sha256 {
            let (role, path, at_start, at_end) = (&b.role, &b.path, hash(&b.sha256), hash(&now));
            changed
                .push(format!("{role}: {path} changed during the sweep (sha256 {at_start} at start, {at_end} at end)"));
        }
    }
    changed
}

/// The first line a command prints, or None if it cannot run.
pub fn version_of(program: &Path, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
}

/// `2026-11-26T13-05-00Z`: a run id, UTC, safe in a file name.
pub fn run_id(t: SystemTime) -> String {
    crate::records::clock::rfc3339(t).replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_floor_round_trips_through_env_json() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(load_floor(dir).unwrap(), None, "no env.json: no floor");
        let floor = SweepFloor {
            pair_cpu: 0,
            pairs: 10,
            round_trips: 10,
            figures: Floor { pair_cpu_us: 2.5, pair_wall_us: 2.6, ..Floor::default() },
        };
        let env = serde_json::json!({"run_id": "x", "floor": floor});
        std::fs::write(dir.join("env.json"), env.to_string()).unwrap();
        assert_eq!(load_floor(dir).unwrap(), Some(floor));
        std::fs::write(dir.join("env.json"), r#"{"floor": null}"#).unwrap();
        assert_eq!(load_floor(dir).unwrap(), None, "--no-floor");
        std::fs::write(dir.join("env.json"), r#"{"floor": 3}"#).unwrap();
        assert!(load_floor(dir).unwrap_err().to_string().contains("floor"));
    }

    #[test]
    fn a_binary_rebuilt_during_the_sweep_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (lg, srv) = (dir.join("loadgen"), dir.join("servers"));
        std::fs::write(&lg, b"loadgen build 1").unwrap();
        std::fs::write(&srv, b"servers build 1").unwrap();
        let start = binaries(&lg, &srv);
        assert_eq!(start.iter().map(|b| b.role.as_str()).collect::<Vec<_>>(), ["loadgen", "servers"]);
        assert!(start.iter().all(|b| b.sha256.as_ref().is_some_and(|h| h.len() == 64)), "{start:?}");
        assert!(changed(&start).is_empty());
        std::fs::write(&srv, b"servers build 2").unwrap();
        let changes = changed(&start);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].starts_with("servers: ") && changes[0].contains("changed during the sweep"));
    }

    #[test]
    fn run_ids_are_file_names() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_871_100);
        assert_eq!(run_id(t), "2026-11-28T13-05-00Z");
    }
}
