//! One run of the sweep: a fresh server, `loadgen run` against it, the
//! server stopped, and the verdict: ok, or failed with the reason (the
//! server did not start or crashed, `loadgen run` failed or exited non-zero,
//! connections were starved).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::child::{self, Finish, Server};
use super::progress::SweepProgress;
use super::scenario::Scenario;
use super::summary::{Record, RunFiles, RunStatus};
use super::{cpus, SweepPlan, CONNECT_RATE};
use crate::result::RunResult;

/// Which run: a model at a level in a scenario (at a rate of its ladder),
/// in one pass of the sweep.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot<'a> {
    pub scenario: &'a Scenario,
    pub model: &'a str,
    pub level: u64,
    /// A ladder's rung: the offered rate, added as `--rate`.
    pub rate: Option<f64>,
    /// The pass, from 1.
    pub repeat: u32,
}

/// One model at one level (at one rate of a ladder): fresh server,
/// `loadgen run`, server stopped. `None` when the sweep was interrupted
/// meanwhile (the run is not kept).
pub(super) fn run_one(
    plan: &SweepPlan,
    dir: &Path,
    slot: &Slot,
    interrupted: &AtomicBool,
    progress: &SweepProgress,
) -> Option<Record> {
    let Slot { scenario, model, level, rate, repeat } = *slot;
    let started = Instant::now();
    let files = match rate {
        Some(r) => RunFiles::for_rung(scenario.name, model, level, r, repeat),
        None => RunFiles::for_run(scenario.name, model, level, repeat),
    };
    let rung = rate.map(|r| format!(" · {r:.0} req/s")).unwrap_or_default();
    let what = match plan.repeats {
        1 => format!("{} · {model} · {level} conns{rung}", scenario.name),
        n => format!("pass {repeat}/{n} · {} · {model} · {level} conns{rung}", scenario.name),
    };
    let planned = plan.run_seconds(scenario, level, rate);
    let window = plan.window(scenario, level, rate);
    let failed = |why: String, result: Option<RunResult>| Record {
        scenario: scenario.name.into(),
        model: model.into(),
        level,
        repeat,
        status: RunStatus::Failed,
        failure: Some(why),
        loadgen_bound: result.as_ref().is_some_and(|r| r.loadgen_bound),
        elapsed_s: started.elapsed().as_secs_f64(),
        files: files.clone(),
        result,
        offered_rps: rate,
    };
    if interrupted.load(Ordering::SeqCst) {
        return None;
    }
    progress.phase(&what, "starting server", planned, 0.0);
    let mut server =
        match Server::start(&plan.servers_bin, model, &plan.pinning.server_cpus, &dir.join(&files.server_log)) {
            Ok(s) => s,
            Err(e) => return Some(failed(format!("{e:#}"), None)),
        };

    let path = |p: &str| dir.join(p).display().to_string();
    let mut args: Vec<String> = vec![
        "--target".into(),
        server.data.to_string(),
        "--admin".into(),
        server.admin.to_string(),
        "-c".into(),
        level.to_string(),
        "--threads".into(),
        plan.pinning.loadgen_cpus.len().clamp(1, 64).to_string(),
        "--warmup".into(),
        format!("{}ms", plan.warmup.as_millis()),
        "--duration".into(),
        format!("{}ms", window.as_millis()),
        "--json".into(),
        path(&files.json),
        "--hlog".into(),
        path(&files.hlog),
        "--hgrm".into(),
        path(&files.hgrm),
        "--server-cpus".into(),
        cpus::list(&plan.pinning.server_cpus),
        // A connection its model does not serve (the pool past its size)
        // fails the run after 1 s of waiting for its first answer, not 5
        // (thread-per-conn answers all 5000 within 0.1 s of connecting).
        "--connect-timeout".into(),
        "1s".into(),
        "--quiet".into(),
    ];
    args.extend(scenario.flags(&plan.knobs));
    if let Some(r) = rate {
        args.extend(["--rate".into(), format!("{r}")]);
    }
    let connect_s = level as f64 / CONNECT_RATE;
    let limit = Duration::from_secs_f64(plan.warmup.as_secs_f64() + window.as_secs_f64() + connect_s + 30.0);
    let finish = match child::spawn_loadgen(&plan.exe, &args, &plan.pinning.loadgen_cpus, &dir.join(&files.loadgen_log))
    {
        Ok(mut lg) => child::wait(
            &mut lg,
            limit,
            || interrupted.load(Ordering::SeqCst),
            |t| {
                let t = t.as_secs_f64();
                let phase = if t < connect_s {
                    "connecting"
                } else if t < connect_s + plan.warmup.as_secs_f64() {
                    "warm-up"
                } else if t < connect_s + plan.warmup.as_secs_f64() + window.as_secs_f64() {
                    "measuring"
                } else {
                    "finishing"
                };
                progress.phase(&what, phase, planned, started.elapsed().as_secs_f64());
            },
        ),
        Err(e) => {
            server.stop();
            return Some(failed(format!("{e:#}"), None));
        }
    };
    let crashed = server.exited();
    progress.phase(&what, "stopping server", planned, started.elapsed().as_secs_f64());
    let server_log = server.log.clone();
    server.stop();
    if matches!(finish, Finish::Interrupted) {
        return None;
    }

    let result: Option<anyhow::Result<RunResult>> = std::fs::read(dir.join(&files.json))
        .ok()
        .map(|bytes| serde_json::from_slice(&bytes).with_context(|| format!("{} is not a RunResult", files.json)));
    let (result, unreadable) = match result {
        Some(Ok(r)) => (Some(r), None),
        Some(Err(e)) => (None, Some(format!("{e:#}"))),
        None => (None, None),
    };
    let loadgen_tail = || child::tail(&dir.join(&files.loadgen_log));
    let mut why: Vec<String> = Vec::new();
    if let Some(status) = crashed {
        why.push(format!("server exited during the run ({status}): {}", child::tail(&server_log)));
    }
    match result.as_ref() {
        Some(r) if r.failure.is_some() => why.extend(r.failure.clone()),
        Some(r) => why.extend(starved(r)),
        None => {}
    }
    match finish {
        Finish::Exited(status) if !status.success() && why.is_empty() => {
            why.push(format!("loadgen run exited with {status}: {}", loadgen_tail()))
        }
        Finish::TimedOut(limit) => why.push(format!("loadgen run did not finish within {limit:?}; killed")),
        _ => {}
    }
    if let Some(e) = unreadable {
        why.push(e);
    } else if result.is_none() && why.is_empty() {
        why.push(format!("loadgen run wrote no result: {}", loadgen_tail()));
    }
    if !why.is_empty() {
        return Some(failed(why.join("; "), result));
    }
    let result = result.expect("a run without failures has a result");
    Some(Record {
        scenario: scenario.name.into(),
        model: model.into(),
        level,
        repeat,
        status: RunStatus::Ok,
        failure: None,
        loadgen_bound: result.loadgen_bound,
        elapsed_s: started.elapsed().as_secs_f64(),
        files,
        result: Some(result),
        offered_rps: rate,
    })
}

/// The sweep's own verdict on a run that `loadgen run` passed: a model that
/// leaves connections unserved has not served that level, however good its
/// figures for the others look (the pool model past its size).
fn starved(r: &RunResult) -> Option<String> {
    let c = &r.connections;
    if c.established < c.requested {
        return Some(format!("only {} of {} connections established", c.established, c.requested));
    }
    (c.never_served > 0)
        .then(|| format!("starved: {} of {} connections never got an answer", c.never_served, c.requested))
}

/// `[n/total] (pass k/R) SCENARIO MODEL LEVEL conns: ok, ...` (the pass
/// only when there are several).
pub(super) fn outcome_line(n: usize, total: usize, repeats: u32, r: &Record) -> String {
    use crate::fmt::{thousands, us};
    let pass = if repeats > 1 { format!(" pass {}/{repeats}", r.repeat) } else { String::new() };
    let rung = r.offered_rps.map(|o| format!(" at {} req/s", thousands(o))).unwrap_or_default();
    let head = format!("[{n}/{total}]{pass} {} {} {} conns{rung}:", r.scenario, r.model, r.level);
    match (&r.status, &r.result) {
        (RunStatus::Ok, Some(x)) => format!(
            "{head} ok, {} req/s, p99 {}{} ({:.1} s)",
            thousands(x.throughput_rps),
            us(x.latency.p99),
            if r.loadgen_bound { ", loadgen-bound" } else { "" },
            r.elapsed_s
        ),
        _ => format!("{head} FAILED: {} ({:.1} s)", r.failure.as_deref().unwrap_or("?"), r.elapsed_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starved_connections_fail_the_level() {
        let mut r = crate::testdata::result("pool", 1000, 128.0);
        assert_eq!(starved(&r), None);
        r.connections.never_served = 936;
        assert_eq!(starved(&r).unwrap(), "starved: 936 of 1000 connections never got an answer");
        r.connections.established = 990;
        assert_eq!(starved(&r).unwrap(), "only 990 of 1000 connections established");
    }
}
