//! One run of the sweep with N load generators: each `loadgen run` gets its
//! share of the connections (and of an open loop's rate), its own tag and
//! files, the same `--start-at`, and runs on its own host; when all have
//! ended, their results are merged exactly into the files the sweep reads,
//! as if one load generator had made them.
//!
//! Only the first one reads the server's counters (`--admin`): every
//! reading covers all clients' requests, so one is the server's figure.
//! The parts' files stay beside the merged ones (`NAME.lg0.json`, ...), and
//! all of them write into the run's one log, where the merge adds a line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use super::{in_namespace, Hosts};
use crate::merge::{self, Outputs};
use crate::records::config::{Requests, RunArgs};
use crate::sweep::child::{self, Finish};
use crate::sweep::CONNECT_RATE;

/// Run `loadgen run` with `config` (the sweep's for one run) on `hosts`:
/// once on this host when that is all they are, else N times and merged;
/// waited for as [`child::wait`] waits (`tick` every 100 ms, everything
/// stopped when `interrupted()` turns true or `limit` passes).
#[allow(clippy::too_many_arguments)]
pub fn run(
    hosts: &Hosts,
    exe: &Path,
    config: &RunArgs,
    cpus: &[usize],
    log: &Path,
    limit: Duration,
    interrupted: impl Fn() -> bool,
    tick: impl FnMut(Duration),
) -> anyhow::Result<Finish> {
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    if hosts.single() {
        let mut lg = [child::spawn_loadgen(in_namespace(None, exe), &config.to_argv(), cpus, &out)?];
        return Ok(child::wait(&mut lg, limit, interrupted, tick));
    }
    let n = hosts.clients.max(1) as usize;
    let plan = split(config, n, SystemTime::now() + start_lead(config.connections as u64, n))?;
    let mut children = Vec::new();
    for (k, part) in plan.parts.iter().enumerate() {
        let ns = hosts.lab.as_ref().map(|l| l.client_ns[k].as_str());
        match child::spawn_loadgen(in_namespace(ns, exe), &part.to_argv(), cpus, &out) {
            Ok(c) => children.push(c),
            Err(e) => {
                child::stop_all(&mut children);
                return Err(e.context(format!("load generator {k} of {n}")));
            }
        }
    }
    let finish = child::wait(&mut children, limit, interrupted, tick);
    if let Finish::Exited(_) = finish {
        merge_parts(&plan, log);
    }
    Ok(finish)
}

/// The parts' configurations and files, and the merged files.
#[derive(Debug, PartialEq)]
struct Split {
    parts: Vec<RunArgs>,
    /// `--json`, `--hgrm`, `--hlog` as the sweep gave them.
    json: PathBuf,
    hgrm: Option<PathBuf>,
    hlog: Option<PathBuf>,
    /// Each part's `--json`.
    part_json: Vec<PathBuf>,
}

/// `NAME.json` -> `NAME.lgK.json`.
fn part_path(path: &Path, k: usize) -> PathBuf {
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    PathBuf::from(path.with_extension("").display().to_string() + &format!(".lg{k}{ext}"))
}

/// Split one run's configuration into `n` load generators' (see the
/// module's doc).
fn split(config: &RunArgs, n: usize, start_at: SystemTime) -> anyhow::Result<Split> {
    let Some(json) = config.json.clone() else { bail!("the runs of --clients {n} need --json") };
    let connections = config.connections;
    if (connections as usize) < n {
        bail!("{connections} connections cannot be shared by --clients {n}: each load generator needs one");
    }
    let parts = (0..n)
        .map(|k| RunArgs {
            connections: connections / n as u32 + u32::from((k as u32) < connections % n as u32),
            requests: Requests { rate: config.requests.rate.map(|r| r / n as f64), ..config.requests.clone() },
            admin: config.admin.filter(|_| k == 0),
            json: Some(part_path(&json, k)),
            hlog: config.hlog.as_deref().map(|p| part_path(p, k)),
            hgrm: config.hgrm.as_deref().map(|p| part_path(p, k)),
            tag: Some(format!("lg{k}")),
            start_at: Some(start_at),
            ..config.clone()
        })
        .collect();
    Ok(Split {
        parts,
        part_json: (0..n).map(|k| part_path(&json, k)).collect(),
        json,
        hgrm: config.hgrm.clone(),
        hlog: config.hlog.clone(),
    })
}

/// How far ahead the load generators' common start is set: far enough for
/// every one to start and connect (a second, plus twice the time its share
/// of `connections` takes). The sweep's time plan adds it to each run.
pub fn start_lead(connections: u64, n: usize) -> Duration {
    Duration::from_secs_f64(1.0 + 2.0 * connections as f64 / n.max(1) as f64 / CONNECT_RATE)
}

/// Merge the parts into the sweep's files; a line in the log says how it went.
fn merge_parts(plan: &Split, log: &Path) {
    let missing: Vec<String> = plan.part_json.iter().filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
    let line = if !missing.is_empty() {
        format!("merge: not done: no result from {}", missing.join(", "))
    } else {
        let outputs = Outputs { json: &plan.json, hgrm: plan.hgrm.as_deref(), hlog: plan.hlog.as_deref() };
        let mut args = vec!["loadgen".to_string(), "merge".into(), plan.json.display().to_string()];
        args.extend(plan.part_json.iter().map(|p| p.display().to_string()));
        match merge::merge_files(&plan.part_json, outputs, args) {
            Ok(r) => merge::describe(&r),
            Err(e) => format!("merge: {e:#}"),
        }
    };
    if let Ok(mut f) = OpenOptions::new().append(true).open(log) {
        let _ = writeln!(f, "{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &str) -> RunArgs {
        let argv: Vec<String> = format!("loadgen run {flags}").split_whitespace().map(String::from).collect();
        RunArgs::from_stored_argv(&argv).unwrap().unwrap()
    }

    #[test]
    fn each_load_generator_gets_its_share_and_its_files() {
        let whole = config(
            "--target 10.77.0.1:5 --admin 10.77.0.1:6 -c 1001 --threads 1 --json d/x.json --hlog d/x.hlog \
             --hgrm d/x.hgrm --quiet --rate 3000",
        );
        let at = std::time::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let s = split(&whole, 2, at).unwrap();
        assert_eq!(
            s.parts[0].to_argv().join(" "),
            "--target 10.77.0.1:5 --admin 10.77.0.1:6 --rate 1500 --connections 501 --json d/x.lg0.json --hlog \
             d/x.lg0.hlog --hgrm d/x.lg0.hgrm --quiet --start-at 2000000000 --tag lg0"
        );
        assert_eq!(
            s.parts[1].to_argv().join(" "),
            "--target 10.77.0.1:5 --rate 1500 --connections 500 --json d/x.lg1.json --hlog d/x.lg1.hlog --hgrm \
             d/x.lg1.hgrm --quiet --start-at 2000000000 --tag lg1",
            "only the first reads the server's counters"
        );
        assert_eq!((s.json, s.hlog), (PathBuf::from("d/x.json"), Some(PathBuf::from("d/x.hlog"))));
        assert_eq!(s.part_json, [PathBuf::from("d/x.lg0.json"), PathBuf::from("d/x.lg1.json")]);
    }

    #[test]
    fn a_level_below_the_clients_or_no_json_is_refused() {
        let now = SystemTime::now();
        let e = split(&config("--target 1.2.3.4:5 -c 2 --json x.json"), 3, now).unwrap_err();
        assert!(e.to_string().contains("each load generator needs one"), "{e}");
        assert!(split(&config("--target 1.2.3.4:5 -c 2"), 2, now).unwrap_err().to_string().contains("--json"));
    }

    #[test]
    fn the_start_leaves_time_to_connect() {
        let lead = start_lead(5000, 2).as_secs_f64();
        assert!((lead - 2.0).abs() < 1e-9, "1 s + twice 2500 connections at 5000/s: {lead}");
    }
}
