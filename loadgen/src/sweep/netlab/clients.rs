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
use crate::sweep::child::{self, Finish};

/// Connections each load generator is taken to open per second, to choose
/// a start time every one can make (`loadgen run`'s default rate).
const CONNECT_RATE: f64 = 5000.0;

/// Run `loadgen run ARGS` (the sweep's flags for one run) on `hosts`:
/// once on this host when that is all they are, else N times and merged;
/// waited for as [`child::wait`] waits (`tick` every 100 ms, everything
/// stopped when `interrupted()` turns true or `limit` passes).
#[allow(clippy::too_many_arguments)]
pub fn run(
    hosts: &Hosts,
    exe: &Path,
    args: &[String],
    cpus: &[usize],
    log: &Path,
    limit: Duration,
    interrupted: impl Fn() -> bool,
    tick: impl FnMut(Duration),
) -> anyhow::Result<Finish> {
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    if hosts.single() {
        let mut lg = [child::spawn_loadgen(in_namespace(None, exe), args, cpus, &out)?];
        return Ok(child::wait(&mut lg, limit, interrupted, tick));
    }
    let n = hosts.clients.max(1) as usize;
    let plan = split(args, n, start_time(args, n))?;
    let mut children = Vec::new();
    for (k, part) in plan.parts.iter().enumerate() {
        let ns = hosts.lab.as_ref().map(|l| l.client_ns[k].as_str());
        match child::spawn_loadgen(in_namespace(ns, exe), part, cpus, &out) {
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

/// The parts' command lines and files, and the merged files.
#[derive(Debug, PartialEq)]
struct Split {
    parts: Vec<Vec<String>>,
    /// `--json`, `--hgrm`, `--hlog` as the sweep gave them.
    json: PathBuf,
    hgrm: Option<PathBuf>,
    hlog: Option<PathBuf>,
    /// Each part's `--json`.
    part_json: Vec<PathBuf>,
}

/// `NAME.json` -> `NAME.lgK.json`.
fn part_path(path: &str, k: usize) -> String {
    let p = Path::new(path);
    let ext = p.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    p.with_extension("").display().to_string() + &format!(".lg{k}{ext}")
}

/// Split one run's flags into `n` load generators' (see the module's doc).
fn split(args: &[String], n: usize, start_at: String) -> anyhow::Result<Split> {
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let Some(json) = value("--json") else { bail!("the runs of --clients {n} need --json") };
    let connections: u64 = match value("-c").or(value("--connections")) {
        Some(c) => c.parse().with_context(|| format!("-c {c}"))?,
        None => bail!("the runs of --clients {n} need -c"),
    };
    if connections < n as u64 {
        bail!("{connections} connections cannot be shared by --clients {n}: each load generator needs one");
    }
    let mut parts = Vec::new();
    for k in 0..n {
        let share = connections / n as u64 + u64::from((k as u64) < connections % n as u64);
        let mut part = Vec::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let Some(v) =
                matches!(flag.as_str(), "-c" | "--connections" | "--rate" | "--admin" | "--json" | "--hlog" | "--hgrm")
                    .then(|| it.next())
                    .flatten()
            else {
                part.push(flag.clone());
                continue;
            };
            let v = match flag.as_str() {
                "-c" | "--connections" => share.to_string(),
                "--rate" => format!("{}", v.parse::<f64>().with_context(|| format!("--rate {v}"))? / n as f64),
                "--admin" if k > 0 => continue,
                "--admin" => v.clone(),
                _ => part_path(v, k),
            };
            part.extend([flag.clone(), v]);
        }
        part.extend(["--tag".into(), format!("lg{k}"), "--start-at".into(), start_at.clone()]);
        parts.push(part);
    }
    Ok(Split {
        parts,
        json: json.into(),
        hgrm: value("--hgrm").map(PathBuf::from),
        hlog: value("--hlog").map(PathBuf::from),
        part_json: (0..n).map(|k| PathBuf::from(part_path(json, k))).collect(),
    })
}

/// How far ahead the load generators' common start is set: far enough for
/// every one to start and connect (a second, plus twice the time its share
/// of `connections` takes). The sweep's time plan adds it to each run.
pub fn start_lead(connections: u64, n: usize) -> Duration {
    Duration::from_secs_f64(1.0 + 2.0 * connections as f64 / n.max(1) as f64 / CONNECT_RATE)
}

fn start_time(args: &[String], n: usize) -> String {
    let c: u64 = args.iter().position(|a| a == "-c").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(0);
    format!("{:.3}", crate::merge::clock::unix_s(SystemTime::now() + start_lead(c, n)))
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

    fn strings(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn each_load_generator_gets_its_share_and_its_files() {
        let args = strings(
            "--target 10.77.0.1:5 --admin 10.77.0.1:6 -c 1001 --threads 1 --json d/x.json --hlog d/x.hlog \
             --hgrm d/x.hgrm --quiet --rate 3000",
        );
        let s = split(&args, 2, "123.000".into()).unwrap();
        assert_eq!(
            s.parts[0],
            strings(
                "--target 10.77.0.1:5 --admin 10.77.0.1:6 -c 501 --threads 1 --json d/x.lg0.json --hlog d/x.lg0.hlog \
                 --hgrm d/x.lg0.hgrm --quiet --rate 1500 --tag lg0 --start-at 123.000"
            )
        );
        assert_eq!(
            s.parts[1],
            strings(
                "--target 10.77.0.1:5 -c 500 --threads 1 --json d/x.lg1.json --hlog d/x.lg1.hlog --hgrm d/x.lg1.hgrm \
                 --quiet --rate 1500 --tag lg1 --start-at 123.000"
            ),
            "only the first reads the server's counters"
        );
        assert_eq!((s.json, s.hlog), (PathBuf::from("d/x.json"), Some(PathBuf::from("d/x.hlog"))));
        assert_eq!(s.part_json, [PathBuf::from("d/x.lg0.json"), PathBuf::from("d/x.lg1.json")]);
    }

    #[test]
    fn a_level_below_the_clients_or_no_json_is_refused() {
        let e = split(&strings("-c 2 --json x.json"), 3, "1".into()).unwrap_err();
        assert!(e.to_string().contains("each load generator needs one"), "{e}");
        assert!(split(&strings("-c 2"), 2, "1".into()).unwrap_err().to_string().contains("--json"));
    }

    #[test]
    fn the_start_leaves_time_to_connect() {
        let now = crate::merge::clock::unix_s(SystemTime::now());
        let at: f64 = start_time(&strings("-c 5000"), 2).parse().unwrap();
        assert!((at - now - 2.0).abs() < 0.5, "1 s + twice 2500 connections at 5000/s: {}", at - now);
    }
}
