//! `env.json`: what the sweep ran on and what it did — machine, pinning,
//! versions, scenarios and their flags, what was skipped and why — so that
//! a reader can judge and repeat it. Rewritten when the sweep starts and
//! when it ends.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use serde::Serialize;

use super::cpus::Pinning;
use crate::result::Env;

#[derive(Clone, Debug, Serialize)]
pub struct SweepEnv {
    pub run_id: String,
    /// The sweep's own command line.
    pub command: Vec<String>,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: Option<String>,
    pub elapsed_s: Option<f64>,
    /// Stopped by Ctrl-C (or SIGTERM) before every run was done.
    pub interrupted: bool,
    pub machine: Env,
    pub pinning: Pinning,
    pub servers_bin: String,
    pub versions: Versions,
    pub models: Vec<String>,
    /// What was left out and why, e.g. "libevent: not built (libevent-dev missing)".
    pub skipped: Vec<String>,
    pub levels: Vec<u64>,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub scenarios: Vec<ScenarioInfo>,
    pub compute: Compute,
    pub runs_planned: usize,
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

/// The first line a command prints, or None if it cannot run.
pub fn version_of(program: &Path, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
}

/// `2026-11-26T13-05-00Z`: a run id, UTC, safe in a file name.
pub fn run_id(t: SystemTime) -> String {
    crate::env::rfc3339(t).replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn run_ids_are_file_names() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_871_100);
        assert_eq!(run_id(t), "2026-11-28T13-05-00Z");
    }
}
