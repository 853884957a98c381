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
use super::{SweepPlan, CONNECT_RATE};
use crate::records::config::{CpuList, RunArgs};
use crate::records::run::RunResult;
use crate::records::sweep::{Record, RunFiles, RunStatus};

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
    /// A profiled run (`sweep --profile`): its profiles' directory.
    pub profile: Option<&'a Path>,
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
    let run = OneRun { plan, dir, slot: *slot, started: Instant::now(), files: files_of(slot) };
    if interrupted.load(Ordering::SeqCst) {
        return None;
    }
    progress.phase(&run.what(), "starting server", run.planned(), 0.0);
    let log = dir.join(&run.files.server_log);
    let (server_cpus, _) = plan.cpus_of(slot.scenario);
    let flags = plan.server_flags(slot.scenario, slot.model);
    let (servers, bind) = (plan.hosts.server_command(&plan.servers_bin), plan.hosts.server_bind());
    let mut server =
        match Server::start(servers, &bind, slot.model, &flags, server_cpus, plan.budget_of(slot.scenario), &log) {
            Ok(s) => s,
            Err(e) => return Some(run.record(vec![format!("{e:#}")], None)),
        };
    let finish = match run.loadgen(&server, interrupted, progress) {
        Ok(finish) => finish,
        Err(e) => {
            server.stop();
            return Some(run.record(vec![format!("{e:#}")], None));
        }
    };
    let crashed = server.exited();
    progress.phase(&run.what(), "stopping server", run.planned(), run.started.elapsed().as_secs_f64());
    let server_log = server.log.clone();
    server.stop();
    if matches!(finish, Finish::Interrupted) {
        return None;
    }
    let (result, unreadable) = run.result();
    let mut why: Vec<String> = Vec::new();
    if let Some(status) = crashed {
        why.push(format!("server exited during the run ({status}): {}", child::tail(&server_log)));
    }
    why.extend(run.reasons(result.as_ref(), &finish, unreadable));
    Some(run.record(why, result))
}

/// One run of the sweep while it goes on.
struct OneRun<'a> {
    plan: &'a SweepPlan,
    dir: &'a Path,
    slot: Slot<'a>,
    started: Instant,
    files: RunFiles,
}

/// Where a slot's files go (a ladder's rung: its rate in the name).
fn files_of(slot: &Slot) -> RunFiles {
    let Slot { scenario, model, level, rate, repeat, .. } = *slot;
    match rate {
        Some(r) => RunFiles::for_rung(scenario.name, model, level, r, repeat),
        None => RunFiles::for_run(scenario.name, model, level, repeat),
    }
}

impl OneRun<'_> {
    /// The progress bar's name for this run.
    fn what(&self) -> String {
        let Slot { scenario, model, level, rate, repeat, .. } = self.slot;
        let rung = rate.map(|r| format!(" · {r:.0} req/s")).unwrap_or_default();
        match self.plan.repeats {
            1 => format!("{} · {model} · {level} conns{rung}", scenario.name),
            n => format!("pass {repeat}/{n} · {} · {model} · {level} conns{rung}", scenario.name),
        }
    }

    fn planned(&self) -> f64 {
        self.plan.run_seconds(self.slot.scenario, self.slot.level, self.slot.rate)
    }

    fn window(&self) -> Duration {
        self.plan.window(self.slot.scenario, self.slot.level, self.slot.rate)
    }

    /// `loadgen run`'s configuration against `server`: the scenario's
    /// requests (at a rung's rate), and this run's connections, windows,
    /// pinning and files.
    fn config(&self, server: &Server) -> RunArgs {
        let (plan, files) = (self.plan, &self.files);
        let (server_cpus, loadgen_cpus) = plan.cpus_of(self.slot.scenario);
        let mut requests = self.slot.scenario.requests(&plan.knobs);
        requests.rate = self.slot.rate.or(requests.rate);
        RunArgs {
            admin: Some(server.admin),
            connections: self.slot.level as u32,
            threads: loadgen_cpus.len().clamp(1, 64) as u16,
            warmup: plan.warmup,
            duration: self.window(),
            json: Some(self.dir.join(&files.json)),
            hlog: Some(self.dir.join(&files.hlog)),
            hgrm: Some(self.dir.join(&files.hgrm)),
            server_cpus: Some(CpuList(server_cpus.to_vec())),
            // A connection its model does not serve (the pool past its size)
            // fails the run after 1 s of waiting for its first answer, not 5
            // (thread-per-conn answers all 5000 within 0.1 s of connecting),
            // or 1 s over the server's CPU budget (0.3 CPU: 3.3 s): under
            // 0.3 CPU thread-per-conn's 5000 threads took over 1 s to give
            // 5000 first answers.
            connect_timeout: connect_timeout(plan.budget_of(self.slot.scenario)),
            quiet: true,
            server_cgroup: server.cgroup.as_ref().map(|cg| cg.path().to_path_buf()),
            // A profiled run (`--profile`, after the measured passes):
            // both sides' stacks.
            profile: self.slot.profile.map(Path::to_path_buf),
            profile_loadgen: self.slot.profile.is_some(),
            ..RunArgs::new(server.data, requests)
        }
    }

    /// Run `loadgen run` against `server` and wait for it (30 s past its
    /// plan at the most), showing its phase.
    fn loadgen(&self, server: &Server, interrupted: &AtomicBool, progress: &SweepProgress) -> anyhow::Result<Finish> {
        let plan = self.plan;
        let (warmup, window) = (plan.warmup.as_secs_f64(), self.window().as_secs_f64());
        let connect_s = self.slot.level as f64 / CONNECT_RATE;
        let limit = Duration::from_secs_f64(warmup + window + connect_s + 30.0);
        let log = self.dir.join(&self.files.loadgen_log);
        let (what, planned) = (self.what(), self.planned());
        // One `loadgen run`, or --clients of them (in the lab's hosts with
        // --netlab) started together and merged into the run's files.
        crate::sweep::netlab::clients::run(
            &plan.hosts,
            &plan.exe,
            &self.config(server),
            plan.cpus_of(self.slot.scenario).1,
            &log,
            limit,
            || interrupted.load(Ordering::SeqCst),
            |t| {
                let t = t.as_secs_f64();
                let phase = if t < connect_s {
                    "connecting"
                } else if t < connect_s + warmup {
                    "warm-up"
                } else if t < connect_s + warmup + window {
                    "measuring"
                } else {
                    "finishing"
                };
                progress.phase(&what, phase, planned, self.started.elapsed().as_secs_f64());
            },
        )
    }

    /// What `loadgen run` wrote, if anything, or why it cannot be read.
    fn result(&self) -> (Option<RunResult>, Option<String>) {
        let json = &self.files.json;
        let read = std::fs::read(self.dir.join(json))
            .ok()
            .map(|bytes| RunResult::from_json_slice(&bytes).with_context(|| format!("{json} is not a RunResult")));
        match read {
            Some(Ok(r)) => (Some(r), None),
            Some(Err(e)) => (None, Some(format!("{e:#}"))),
            None => (None, None),
        }
    }

    /// Why the run failed, from its result and how `loadgen run` ended
    /// (empty: it did not).
    fn reasons(&self, result: Option<&RunResult>, finish: &Finish, unreadable: Option<String>) -> Vec<String> {
        let loadgen_tail = || child::tail(&self.dir.join(&self.files.loadgen_log));
        // The run's own failure, else the sweep's verdict on its connections.
        let mut why: Vec<String> = result.and_then(|r| r.failure.clone().or_else(|| starved(r))).into_iter().collect();
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
        why
    }

    /// The run's record: ok, or failed for the reasons in `why`.
    fn record(&self, why: Vec<String>, result: Option<RunResult>) -> Record {
        let Slot { scenario, model, level, rate, repeat, .. } = self.slot;
        let (status, failure) = match why.is_empty() {
            true => (RunStatus::Ok, None),
            false => (RunStatus::Failed, Some(why.join("; "))),
        };
        Record {
            scenario: scenario.name.into(),
            model: model.into(),
            level,
            repeat,
            status,
            failure,
            loadgen_saturated: result.as_ref().is_some_and(|r| r.loadgen_saturated),
            elapsed_s: self.started.elapsed().as_secs_f64(),
            files: self.files.clone(),
            result,
            offered_rps: rate,
        }
    }
}

/// How long a connection may wait for its first answer: 1 s, stretched by
/// the server's CPU budget where it has less than one CPU.
fn connect_timeout(budget: Option<&child::Budgeted>) -> Duration {
    let share = budget.map_or(1.0, |b| b.budget.cpus.min(1.0));
    Duration::from_secs_f64(1.0 / share)
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
            "{head} ok, {} req/s, p99 {}{}{} ({:.1} s)",
            thousands(x.throughput_rps),
            us(x.latency.p99),
            if r.loadgen_saturated { ", loadgen-saturated" } else { "" },
            if x.send_lag_large { ", send lag large" } else { "" },
            r.elapsed_s
        ),
        _ => match super::cells::AsDesigned::of(r) {
            Some(designed) => format!("{head} {} ({:.1} s)", designed.text(), r.elapsed_s),
            None => format!("{head} FAILED: {} ({:.1} s)", r.failure.as_deref().unwrap_or("?"), r.elapsed_s),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-run line names each finding about the load generator apart:
    /// a late but idle one is not called saturated.
    #[test]
    fn the_run_line_says_saturated_only_when_it_was() {
        let mut r = crate::testdata::record_of_pass("echo-paced", "mio-single", 1000, 2000.0, 1);
        r.loadgen_saturated = false;
        r.result.as_mut().unwrap().send_lag_large = true;
        let line = outcome_line(1, 2, 1, &r);
        assert!(line.contains(", send lag large") && !line.contains("saturated"), "{line}");
        r.loadgen_saturated = true;
        r.result.as_mut().unwrap().send_lag_large = false;
        let line = outcome_line(1, 2, 1, &r);
        assert!(line.contains(", loadgen-saturated") && !line.contains("send lag"), "{line}");
    }

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
