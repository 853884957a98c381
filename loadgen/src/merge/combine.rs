//! Several load generators' results added up into one.
//!
//! What is exact: the latency histograms are added, never averaged, so the
//! merged percentiles are those of every request together; counts, both
//! sides' CPU time and connections add up; the throughput is all the OK
//! answers over the common window; each part's failure and notes carry its
//! tag.
//!
//! What cannot be exact from the parts' records, and is a stated bound
//! instead (listed in `merged_from.bounds`): percentiles that a run keeps
//! only as percentiles (the uncorrected latency, the send lag, connect
//! and first-answer times, the per-second samples): the largest of the
//! parts' (no lower than the percentile of all together), with the exact
//! count, mean and max; the fairness percentiles (requests per connection):
//! the smallest of the parts' (no higher than all together's), with the
//! exact min and max.
//!
//! What is not added: the server's counters (each load generator given
//! `--admin` read the same server over the same window, all clients'
//! requests included: one reading, the first part's, is kept) and the
//! per-CPU times (machine-wide; kept when all parts ran on one host).

use std::collections::BTreeMap;

use crate::records::config::RunArgs;
use crate::records::part::{encode, Histograms, MergedFrom, Part, PartRecord};
use crate::records::run::*;
use crate::run::attribution;
use crate::run::histo::{self, Hist};

use super::Input;

/// The merged record of `inputs` (checked by `super::check`), with `args`
/// as its command line.
pub fn combine(inputs: &[Input], args: Vec<String>) -> PartRecord {
    let (start, end) = common_window(inputs);
    // Whole microseconds: the bounds are seconds since the epoch, in f64.
    let window_s = ((end - start).max(0.0) * 1e6).round() / 1e6;
    let results: Vec<&RunResult> = inputs.iter().map(|i| &i.record.result).collect();
    let latency = add(inputs.iter().map(|i| &i.latency));
    let by_method = methods(inputs);
    let counts = counts(&results);
    let loadgen = loadgen(&results, counts.answered());
    let (server, server_note) = server(inputs);
    let mut bounds = Vec::new();
    let result = RunResult {
        args,
        config: Some(config(inputs)),
        env: env(&results),
        connections: connections(&results, &mut bounds),
        window_s,
        throughput_rps: if window_s > 0.0 { counts.ok as f64 / window_s } else { 0.0 },
        latency: histo::latency(&latency),
        latency_uncorrected: latency_uncorrected(&results, &mut bounds),
        send_lag: send_lag(&results, &latency, &mut bounds),
        latency_by_method: by_method.iter().map(|(m, h)| (m.clone(), histo::latency(h))).collect(),
        combined: attribution::combined(server.as_ref(), &loadgen),
        proc_stat: proc_stat(inputs, counts.answered()),
        fairness: fairness(&results, &mut bounds),
        loadgen_saturated: loadgen_saturated(&results, &loadgen),
        send_lag_large: results.iter().any(|r| r.send_lag_large),
        binaries: Binaries {
            loadgen: one_binary(results.iter().map(|r| &r.binaries.loadgen), "load generator"),
            server: one_binary(results.iter().map(|r| &r.binaries.server), "server"),
        },
        timeseries: timeseries(&results, &mut bounds),
        profile: None,
        run_queue: None,
        failure: failure(inputs),
        notes: notes(inputs, server_note),
        counts,
        server,
        // Every client read the same server's cgroup over the same window.
        server_cgroup: results.iter().find_map(|r| r.server_cgroup.clone()),
        loadgen,
    };
    let part = Part {
        tag: tags(inputs).join("+"),
        start_at: inputs[0].part.start_at.clone(),
        window_start_unix_s: start,
        window_end_unix_s: end,
        histograms: Histograms {
            latency: encode(&latency),
            by_method: by_method.iter().map(|(m, h)| (m.clone(), encode(h))).collect(),
        },
    };
    let merged_from = MergedFrom {
        tags: tags(inputs).into_iter().map(String::from).collect(),
        files: inputs.iter().map(|i| i.path.display().to_string()).collect(),
        bounds,
    };
    PartRecord { result, part: Some(part), merged_from: Some(merged_from) }
}

/// The experiment all the parts ran together: the first part's
/// configuration with every part's connections and rate added up, under no
/// tag and with no files of its own (the merge's are its command line's).
fn config(inputs: &[Input]) -> RunArgs {
    let first = &inputs[0].config;
    let rate = first.requests.rate.map(|_| inputs.iter().filter_map(|i| i.config.requests.rate).sum());
    RunArgs {
        admin: inputs.iter().find_map(|i| i.config.admin),
        connections: inputs.iter().map(|i| i.config.connections).sum(),
        requests: crate::records::config::Requests { rate, ..first.requests.clone() },
        tag: None,
        json: None,
        hlog: None,
        hgrm: None,
        ..first.clone()
    }
}

/// Every load generator's tag, in input order.
pub fn tags(inputs: &[Input]) -> Vec<&str> {
    inputs.iter().flat_map(|i| i.part.tags(i.record.merged_from.as_ref())).collect()
}

/// The span every part measured: the latest window start to the earliest end.
fn common_window(inputs: &[Input]) -> (f64, f64) {
    let start = inputs.iter().map(|i| i.part.window_start_unix_s).fold(f64::MIN, f64::max);
    let end = inputs.iter().map(|i| i.part.window_end_unix_s).fold(f64::MAX, f64::min);
    (start, end)
}

/// Histograms added up, exactly.
pub(super) fn add<'a>(hists: impl Iterator<Item = &'a Hist>) -> Hist {
    let mut all = histo::new_hist();
    for h in hists {
        all.add(h).expect("one histogram shape everywhere");
    }
    all
}

fn methods(inputs: &[Input]) -> BTreeMap<String, Hist> {
    let mut out: BTreeMap<String, Hist> = BTreeMap::new();
    for (m, h) in inputs.iter().flat_map(|i| &i.by_method) {
        out.entry(m.clone()).or_insert_with(histo::new_hist).add(h).expect("one histogram shape everywhere");
    }
    out
}

fn counts(results: &[&RunResult]) -> Counts {
    let mut c = Counts { accounted: true, ..Default::default() };
    for r in results.iter().map(|r| &r.counts) {
        c.scheduled += r.scheduled;
        c.sent += r.sent;
        c.unsent += r.unsent;
        c.accounted &= r.accounted;
        c.ok += r.ok;
        c.errors += r.errors;
        for (status, n) in &r.errors_by_status {
            *c.errors_by_status.entry(status.clone()).or_default() += n;
        }
        c.mismatches += r.mismatches;
        c.timeouts += r.timeouts;
        c.resets += r.resets;
        c.in_flight_end += r.in_flight_end;
        c.mismatches_total += r.mismatches_total;
    }
    c
}

/// Every load generator's CPU added up, per request over every answer.
fn loadgen(results: &[&RunResult], answered: u64) -> LoadgenCost {
    let mut l = LoadgenCost::default();
    for r in results.iter().map(|r| &r.loadgen) {
        l.user_us += r.user_us;
        l.sys_us += r.sys_us;
        l.cpu_utilization += r.cpu_utilization;
        l.rss_bytes += r.rss_bytes;
        l.max_rss_bytes += r.max_rss_bytes;
        l.threads += r.threads;
    }
    let per = |us: u64| if answered > 0 { us as f64 / answered as f64 } else { 0.0 };
    (l.user_us_per_req, l.sys_us_per_req, l.cpu_us_per_req) =
        (per(l.user_us), per(l.sys_us), per(l.user_us + l.sys_us));
    l
}

/// Saturated if any part was, or if parts that shared one host's load
/// generator CPUs were, together, as busy on them as one saturated load
/// generator would be: two parts each half busy on one CPU fill it,
/// though neither alone looks saturated.
fn loadgen_saturated(results: &[&RunResult], merged: &LoadgenCost) -> bool {
    if results.iter().any(|r| r.loadgen_saturated) {
        return true;
    }
    let first = &results[0].env;
    let shared = results.iter().all(|r| r.env.hostname == first.hostname && r.env.loadgen_cpus == first.loadgen_cpus);
    shared && is_loadgen_saturated(merged.cpu_utilization, first.loadgen_cpus.len().max(1) as f64)
}

/// The binary every part names, or, where the parts disagree, what they
/// agree on and a note saying what they do not.
fn one_binary<'a>(parts: impl Iterator<Item = &'a BinaryId>, role: &str) -> BinaryId {
    let parts: Vec<&BinaryId> = parts.collect();
    let Some(first) = parts.first() else { return BinaryId::default() };
    if parts.iter().all(|p| p == first) {
        return (*first).clone();
    }
    let agreed = |f: fn(&BinaryId) -> &Option<String>| {
        parts.iter().all(|p| f(p) == f(first)).then(|| f(first).clone()).flatten()
    };
    let (revision, sha256) = (agreed(|b| &b.revision), agreed(|b| &b.sha256));
    let differ: Vec<&str> = [("revision", &revision, &first.revision), ("sha256", &sha256, &first.sha256)]
        .into_iter()
        .filter(|(_, agreed, first)| agreed.is_none() && first.is_some())
        .map(|(name, ..)| name)
        .collect();
    let unknown = Some(format!("the parts ran different {role} binaries ({} differ)", differ.join(", ")));
    BinaryId { revision, sha256, unknown }
}

/// The first reading of the server's counters, and a note when others were
/// left out.
fn server(inputs: &[Input]) -> (Option<ServerCost>, Option<String>) {
    let with: Vec<&Input> = inputs.iter().filter(|i| i.record.result.server.is_some()).collect();
    let Some(first) = with.first() else { return (None, None) };
    let note = (with.len() > 1).then(|| {
        let others: Vec<&str> = with[1..].iter().map(|i| i.part.tag.as_str()).collect();
        format!(
            "server counters: {}'s reading; {}'s of the same server over the same window left out (not additive)",
            first.part.tag,
            others.join(", ")
        )
    });
    (first.record.result.server.clone(), note)
}

fn env(results: &[&RunResult]) -> Env {
    let mut env = results[0].env.clone();
    let mut hosts: Vec<&str> = results.iter().map(|r| r.env.hostname.as_str()).collect();
    hosts.dedup();
    env.hostname = hosts.join(",");
    env
}

fn connections(results: &[&RunResult], bounds: &mut Vec<String>) -> ConnectionFigures {
    let mut c = ConnectionFigures::default();
    for r in results.iter().map(|r| &r.connections) {
        c.requested += r.requested;
        c.established += r.established;
        c.failed += r.failed;
        c.never_served += r.never_served;
        c.stuck += r.stuck;
        c.unanswered_first += r.unanswered_first;
    }
    c.connect_us = percentiles_bound(results.iter().map(|r| &r.connections.connect_us));
    c.first_answer_us = percentiles_bound(results.iter().map(|r| &r.connections.first_answer_us));
    bounds.push("connections.connect_us, connections.first_answer_us: p50/p90/p99 the largest part's".into());
    c
}

fn percentiles_bound<'a>(ps: impl Iterator<Item = &'a Percentiles>) -> Percentiles {
    ps.fold(Percentiles::default(), |a, p| Percentiles {
        p50: a.p50.max(p.p50),
        p90: a.p90.max(p.p90),
        p99: a.p99.max(p.p99),
        max: a.max.max(p.max),
    })
}

/// The uncorrected latency, kept only as a summary: percentiles the largest
/// part's, count, mean and max exact.
fn latency_uncorrected(results: &[&RunResult], bounds: &mut Vec<String>) -> Option<Latency> {
    let all: Vec<&Latency> = results.iter().filter_map(|r| r.latency_uncorrected.as_ref()).collect();
    if all.is_empty() {
        return None;
    }
    let count: u64 = all.iter().map(|l| l.count).sum();
    let weighted: f64 = all.iter().map(|l| l.mean * l.count as f64).sum();
    bounds.push("latency_uncorrected: percentiles the largest part's".into());
    Some(Latency {
        p50: all.iter().map(|l| l.p50).max().unwrap_or(0),
        p90: all.iter().map(|l| l.p90).max().unwrap_or(0),
        p99: all.iter().map(|l| l.p99).max().unwrap_or(0),
        p999: all.iter().map(|l| l.p999).max().unwrap_or(0),
        p9999: all.iter().map(|l| l.p9999).max().unwrap_or(0),
        max: all.iter().map(|l| l.max).max().unwrap_or(0),
        mean: if count > 0 { weighted / count as f64 } else { 0.0 },
        count,
    })
}

fn send_lag(results: &[&RunResult], latency: &Hist, bounds: &mut Vec<String>) -> Option<SendLag> {
    let all: Vec<&SendLag> = results.iter().filter_map(|r| r.send_lag.as_ref()).collect();
    if all.is_empty() {
        return None;
    }
    bounds.push("send_lag: p50/p99 the largest part's".into());
    let p50 = all.iter().map(|l| l.p50).max().unwrap_or(0);
    let median = if latency.is_empty() { 0 } else { latency.value_at_quantile(0.5) };
    Some(SendLag {
        p50,
        p99: all.iter().map(|l| l.p99).max().unwrap_or(0),
        max: all.iter().map(|l| l.max).max().unwrap_or(0),
        count: all.iter().map(|l| l.count).sum(),
        held_back: all.iter().map(|l| l.held_back).sum(),
        share_of_p50: if median > 0 { p50 as f64 / median as f64 } else { 0.0 },
    })
}

/// Machine-wide CPU times: one part's when all ran on one host (each read
/// the same CPUs), per request over every answer; else none.
fn proc_stat(inputs: &[Input], answered: u64) -> Option<ProcStatWindow> {
    let host = &inputs[0].record.result.env.hostname;
    if inputs.iter().any(|i| &i.record.result.env.hostname != host) {
        return None;
    }
    let mut p = inputs.iter().find_map(|i| i.record.result.proc_stat.clone())?;
    let busy: u64 = p.cpus.values().map(|c| c.busy_us).sum();
    p.busy_us_per_req = if answered > 0 { busy as f64 / answered as f64 } else { 0.0 };
    Some(p)
}

fn fairness(results: &[&RunResult], bounds: &mut Vec<String>) -> Fairness {
    bounds.push("fairness: p1 and median the smallest part's".into());
    let f = |pick: fn(&Fairness) -> u64| results.iter().map(move |r| pick(&r.fairness));
    Fairness {
        min: f(|x| x.min).min().unwrap_or(0),
        p1: f(|x| x.p1).min().unwrap_or(0),
        median: f(|x| x.median).min().unwrap_or(0),
        max: f(|x| x.max).max().unwrap_or(0),
    }
}

/// Second by second (the parts started together): rates added, p50/p99 the
/// largest part's, the server's figures the first part's that has them.
fn timeseries(results: &[&RunResult], bounds: &mut Vec<String>) -> Vec<Sample> {
    bounds.push("timeseries: p50_us and p99_us the largest part's".into());
    let longest = results.iter().map(|r| r.timeseries.len()).max().unwrap_or(0);
    (0..longest)
        .map(|k| {
            let at: Vec<&Sample> = results.iter().filter_map(|r| r.timeseries.get(k)).collect();
            Sample {
                t_s: at[0].t_s,
                phase: at[0].phase.clone(),
                rps: at.iter().map(|s| s.rps).sum(),
                p50_us: at.iter().map(|s| s.p50_us).max().unwrap_or(0),
                p99_us: at.iter().map(|s| s.p99_us).max().unwrap_or(0),
                server_threads: at.iter().find_map(|s| s.server_threads),
                server_rss_bytes: at.iter().find_map(|s| s.server_rss_bytes),
            }
        })
        .collect()
}

/// Each part's failure, after its tag.
fn failure(inputs: &[Input]) -> Option<String> {
    let all: Vec<String> = inputs
        .iter()
        .filter_map(|i| i.record.result.failure.as_ref().map(|f| format!("{}: {f}", i.part.tag)))
        .collect();
    (!all.is_empty()).then(|| all.join("; "))
}

fn notes(inputs: &[Input], server_note: Option<String>) -> Vec<String> {
    let mut out: Vec<String> =
        inputs.iter().flat_map(|i| i.record.result.notes.iter().map(|n| format!("{}: {n}", i.part.tag))).collect();
    out.extend(server_note);
    out
}
