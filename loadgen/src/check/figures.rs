//! What the regression check reads from one sweep's `summary.json`: the
//! figures it compares, head against base, and the invariants that must
//! hold in every run whatever the base shows.
//!
//! Only figures that survive a noisy shared machine are taken:
//!
//! - per scenario, model and level: voluntary context switches per request
//!   and the server's CPU µs per request (costs, smaller is better);
//! - per scenario and level: the load generator's CPU µs per request, the
//!   geometric mean over the models (so a costlier load generator is caught
//!   and one model's odd run does not decide it);
//! - closed-loop scenarios only, per model and level: the model's
//!   throughput divided by the median throughput of all models at that
//!   level in the same sweep (bigger is better). Never absolute req/s: a
//!   ratio of runs on the same machine minutes apart cancels most of what
//!   the machine does to all of them.
//!
//! Involuntary context switches are left out: they count preemptions, and
//! on a shared runner those come from the neighbours, not from the model.

use serde::{Deserialize, Serialize};

use crate::records::run::RunResult;
use crate::records::sweep::{Record, RunStatus, Summary};
use crate::stats::median;

/// The blocking model every event loop ([`crate::models::is_event_loop`])
/// is held against: at 1000 connections and more their context switches
/// per request must stay far below its.
pub const THREAD_PER_CONN: &str = "thread-per-conn";
/// The pool model, and its worker count when the sweep starts it (the
/// `servers pool --threads` default): connections past it wait, unserved.
pub const POOL: &str = "pool";
pub const POOL_THREADS: u64 = 64;
/// From this many connections on, the context-switch invariant applies.
pub const CS_INVARIANT_LEVEL: u64 = 1000;
/// An event loop may switch at most this share of thread-per-conn's rate.
pub const CS_INVARIANT_SHARE: f64 = 1.0 / 3.0;
/// Open-loop scenarios: every model that serves every connection answers
/// at least this share of the requested rate.
pub const PACED_SHARE: f64 = 0.9;

/// What kind of figure, which says its unit, its direction and the level
/// below which differences are noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Server voluntary context switches per request.
    CsPerReq,
    /// Server user+sys CPU µs per request.
    ServerCpu,
    /// Server user-space CPU µs per request: the model's own code, without
    /// the kernel's TCP path that dominates `ServerCpu` on loopback. A
    /// change that adds CPU work in the model shows here many times larger
    /// than in the total (how much: results/check-runs/README.md).
    ServerUserCpu,
    /// Load generator CPU µs per request (geometric mean over the models).
    LoadgenCpu,
    /// Throughput over the median throughput of all models, same sweep.
    ThroughputRatio,
    /// Server system calls per request that do work (STATS `syscalls`
    /// minus `syscalls_wait`), where counted: exact per request.
    SyscallsPerReq,
    /// Server system calls per request that wait (epoll_wait, poll, futex):
    /// timing decides how many requests share one.
    WaitSyscallsPerReq,
    /// Server bytes read and written per request, headers included.
    BytesPerReq,
}

impl Kind {
    pub fn unit(self) -> &'static str {
        match self {
            Kind::CsPerReq => "cs/req",
            Kind::ServerCpu | Kind::ServerUserCpu | Kind::LoadgenCpu => "µs/req",
            Kind::ThroughputRatio => "x",
            Kind::SyscallsPerReq | Kind::WaitSyscallsPerReq => "calls/req",
            Kind::BytesPerReq => "B/req",
        }
    }

    pub fn bigger_is_better(self) -> bool {
        self == Kind::ThroughputRatio
    }

    /// Values below this are compared as if they were this: an event loop
    /// that switches almost never (results/check-runs/README.md) and
    /// switches five times as often has not regressed fivefold, it is still
    /// at "almost never".
    pub fn floor(self) -> f64 {
        match self {
            Kind::CsPerReq => 0.1,
            Kind::ServerCpu | Kind::LoadgenCpu => 2.0,
            Kind::ServerUserCpu => 0.2,
            Kind::ThroughputRatio => 0.02,
            Kind::SyscallsPerReq => 0.05,
            // An event loop shares one epoll_wait among 1 to 50 ready
            // sockets, as timing has it; more than one wait per request is
            // a loop spinning or a thread woken per request.
            Kind::WaitSyscallsPerReq => 1.0,
            Kind::BytesPerReq => 1.0,
        }
    }
}

/// One figure of one sweep, as the regression check gates on it (a chart's
/// figure is `charts::draw::Figure`).
#[derive(Clone, Debug, PartialEq)]
pub struct GatedFigure {
    /// Unique and readable: `echo-saturate mio-multi c1000 cs/req`.
    pub name: String,
    pub scenario: String,
    /// `None` for the load generator's figures (all models together).
    pub model: Option<String>,
    pub level: u64,
    pub kind: Kind,
    pub value: f64,
}

/// One invariant at one place (scenario, level, maybe model).
#[derive(Clone, Debug, PartialEq)]
pub struct Invariant {
    /// The family, the same for every place: `no mismatches`.
    pub family: &'static str,
    /// Where: `echo-saturate mio-multi c1000`.
    pub place: String,
    pub scenario: String,
    pub level: u64,
    /// `None` when it holds; what was seen otherwise.
    pub violation: Option<String>,
    /// A strict invariant is a correctness bug when violated once: a rerun
    /// that happens to pass does not excuse it.
    pub strict: bool,
}

pub fn name(scenario: &str, model: Option<&str>, level: u64, kind: Kind) -> String {
    let what = match kind {
        Kind::CsPerReq => "cs/req",
        Kind::ServerCpu => "server CPU µs/req",
        Kind::ServerUserCpu => "server user CPU µs/req",
        Kind::LoadgenCpu => "loadgen CPU µs/req",
        Kind::ThroughputRatio => "throughput ÷ median model",
        Kind::SyscallsPerReq => "syscalls/req (waits excluded)",
        Kind::WaitSyscallsPerReq => "wait syscalls/req",
        Kind::BytesPerReq => "bytes/req",
    };
    match model {
        Some(m) => format!("{scenario} {m} c{level} {what}"),
        None => format!("{scenario} c{level} {what}"),
    }
}

/// The result of a record whose figures count: `loadgen run` measured it
/// without a failure, and the sweep's own verdict, if any, is only that
/// some connections were never answered (`starved: ...`, the pool model
/// past its size: the invariants judge that, not the figures).
pub fn usable(r: &Record) -> Option<&RunResult> {
    let x = r.result.as_ref().filter(|x| x.failure.is_none())?;
    match (r.status, r.failure.as_deref()) {
        (RunStatus::Ok, _) => Some(x),
        (RunStatus::Failed, Some(why)) if why.starts_with("starved:") && !why.contains("; ") => Some(x),
        _ => None,
    }
}

/// The records of one scenario at one level that measured something.
fn measured<'a>(s: &'a Summary, scenario: &'a str, level: u64) -> Vec<(&'a Record, &'a RunResult)> {
    s.scenario(scenario).filter(|r| r.level == level).filter_map(|r| usable(r).map(|x| (r, x))).collect()
}

fn geo_mean(v: &[f64]) -> f64 {
    let v: Vec<f64> = v.iter().copied().filter(|x| *x > 0.0).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp()
}

/// Every figure of a sweep, in a stable order: scenario, level, kind, model.
/// A sweep of several passes (`--repeat`) gives each figure's median over
/// its passes, each pass judged as a sweep of its own (throughput ratios
/// are taken within a pass, where the models ran minutes apart).
pub fn figures(s: &Summary) -> Vec<GatedFigure> {
    let per_pass: Vec<Vec<GatedFigure>> = s.passes().iter().map(|&k| figures_of_one_pass(&s.pass(k))).collect();
    let mut out: Vec<GatedFigure> = Vec::new();
    for f in per_pass.iter().flatten() {
        if out.iter().any(|o| o.name == f.name) {
            continue;
        }
        let values: Vec<f64> =
            per_pass.iter().filter_map(|p| p.iter().find(|g| g.name == f.name)).map(|g| g.value).collect();
        out.push(GatedFigure { value: median(&values).unwrap_or(f64::NAN), ..f.clone() });
    }
    out
}

fn figures_of_one_pass(s: &Summary) -> Vec<GatedFigure> {
    let mut out = Vec::new();
    for scenario in &s.scenarios {
        for level in s.levels(scenario) {
            let runs = measured(s, scenario, level);
            let push = |out: &mut Vec<GatedFigure>, model: Option<&str>, kind: Kind, value: f64| {
                if value.is_finite() {
                    let name = name(scenario, model, level, kind);
                    let model = model.map(String::from);
                    out.push(GatedFigure { name, scenario: scenario.clone(), model, level, kind, value });
                }
            };
            for (r, x) in &runs {
                if let Some(server) = &x.server {
                    push(&mut out, Some(&r.model), Kind::CsPerReq, server.voluntary_cs_per_req);
                    push(&mut out, Some(&r.model), Kind::ServerCpu, server.cpu_us_per_req);
                    push(&mut out, Some(&r.model), Kind::ServerUserCpu, server.user_us_per_req);
                    if let (Some(all), Some(waits)) = (server.syscalls_per_req, server.wait_syscalls_per_req) {
                        push(&mut out, Some(&r.model), Kind::SyscallsPerReq, all - waits);
                        push(&mut out, Some(&r.model), Kind::WaitSyscallsPerReq, waits);
                    }
                    if server.bytes_per_req > 0.0 {
                        push(&mut out, Some(&r.model), Kind::BytesPerReq, server.bytes_per_req);
                    }
                }
            }
            let loadgen: Vec<f64> = runs.iter().map(|(_, x)| x.loadgen.cpu_us_per_req).collect();
            push(&mut out, None, Kind::LoadgenCpu, geo_mean(&loadgen));
            let closed = runs.iter().all(|(_, x)| x.rate().is_none());
            if closed && runs.len() >= 3 {
                let mid = median(&runs.iter().map(|(_, x)| x.throughput_rps).collect::<Vec<_>>()).unwrap_or(f64::NAN);
                for (r, x) in &runs {
                    push(&mut out, Some(&r.model), Kind::ThroughputRatio, x.throughput_rps / mid);
                }
            }
        }
    }
    out
}

/// Every invariant at every place of a sweep: of every pass of it, one
/// after the other (a place checked in three passes is three checks).
pub fn invariants(s: &Summary) -> Vec<Invariant> {
    s.passes().iter().flat_map(|&k| invariants_of_one_pass(&s.pass(k))).collect()
}

fn invariants_of_one_pass(s: &Summary) -> Vec<Invariant> {
    let mut out = Vec::new();
    for scenario in &s.scenarios {
        for level in s.levels(scenario) {
            let mut add = |family: &'static str, place: String, strict: bool, violation: Option<String>| {
                out.push(Invariant { family, place, scenario: scenario.clone(), level, violation, strict });
            };
            for r in s.scenario(scenario).filter(|r| r.level == level) {
                invariants_of_one_run(r, level, &mut add);
            }
            event_loops_switch_rarely(s, scenario, level, &mut add);
        }
    }
    out
}

/// Notes one invariant: (family, place, strict, the violation if any).
type Add<'a> = dyn FnMut(&'static str, String, bool, Option<String>) + 'a;

/// What every run must show: it succeeded, established every connection,
/// matched every answer, and served its connections (see
/// [`serving_invariants`]).
fn invariants_of_one_run(r: &Record, level: u64, add: &mut Add) {
    let place = format!("{} {} c{level}", r.scenario, r.model);
    let failed = usable(r).is_none().then(|| {
        r.failure
            .clone()
            .or_else(|| r.result.as_ref().and_then(|x| x.failure.clone()))
            .unwrap_or_else(|| "failed".into())
    });
    add("every run succeeds", place.clone(), false, failed);
    let Some(x) = &r.result else { return };
    let c = &x.connections;
    let missing =
        (c.established < level).then(|| format!("{} of {level} established, {} failed", c.established, c.failed));
    add("every connection established", place.clone(), false, missing);
    let bad = x.counts.mismatches.max(x.counts.mismatches_total);
    add("no mismatches", place.clone(), true, (bad > 0).then(|| format!("{bad} mismatched answers")));
    serving_invariants(r, x, level, place, add);
}

/// Pool leaves the connections past its threads unserved; every other
/// model serves every connection, and keeps an open loop's rate.
fn serving_invariants(r: &Record, x: &RunResult, level: u64, place: String, add: &mut Add) {
    let c = &x.connections;
    if r.model == POOL {
        if level > POOL_THREADS {
            let served = (c.never_served == 0)
                .then(|| format!("never_served = 0 with {level} connections and {POOL_THREADS} threads"));
            add("pool leaves connections past its threads unserved", place, false, served);
        }
        return;
    }
    let unserved = (c.never_served > 0).then(|| format!("{} of {level} connections never answered", c.never_served));
    add("every connection served (all but pool)", place.clone(), false, unserved);
    if let Some(rate) = x.rate() {
        let slow = (x.throughput_rps < PACED_SHARE * rate)
            .then(|| format!("{:.0} req/s of the {rate:.0} asked (< {:.0}%)", x.throughput_rps, PACED_SHARE * 100.0));
        add("paced rate kept (all but pool)", place, false, slow);
    }
}

/// The argument itself: under full load, an event loop does not pay a
/// context switch per request; a thread per connection does.
fn event_loops_switch_rarely(s: &Summary, scenario: &str, level: u64, add: &mut Add) {
    let runs = measured(s, scenario, level);
    let closed = runs.iter().all(|(_, x)| x.rate().is_none());
    let tpc = runs.iter().find(|(r, _)| r.model == THREAD_PER_CONN).and_then(|(_, x)| x.server.as_ref());
    let (true, true, Some(tpc)) = (closed, level >= CS_INVARIANT_LEVEL, tpc) else { return };
    let tpc = tpc.voluntary_cs_per_req;
    let limit = tpc * CS_INVARIANT_SHARE;
    let family = "event loops switch ≤ 1/3 as often as thread-per-conn (≥ 1000 conns, closed loop)";
    for (r, x) in runs.iter().filter(|(r, _)| crate::models::is_event_loop(&r.model)) {
        let Some(cs) = x.server.as_ref().map(|s| s.voluntary_cs_per_req) else { continue };
        let often = (cs > limit).then(|| format!("{cs:.3} cs/req vs thread-per-conn's {tpc:.3} (limit {limit:.3})"));
        add(family, format!("{scenario} {} c{level}", r.model), false, often);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn a_repeated_sweep_gives_each_figure_once_at_its_median() {
        let summary = testdata::summary_repeated(3);
        let one = figures(&summary.pass(1));
        let all = figures(&summary);
        let names = |f: &[GatedFigure]| f.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&all), names(&one), "the same figures, once each");
        let cpu = |f: &[GatedFigure]| {
            f.iter().find(|f| f.name == "echo-saturate tokio c500 server CPU µs/req").unwrap().value
        };
        // Server CPU 10 µs × 1, 1.02 and 0.98 in the three passes.
        assert!((cpu(&figures(&summary.pass(2))) - 10.2).abs() < 1e-9);
        assert!((cpu(&all) - 10.0).abs() < 1e-9, "{}", cpu(&all));
        assert_eq!(invariants(&summary).len(), 3 * invariants(&summary.pass(1)).len(), "every pass is checked");
    }
}
