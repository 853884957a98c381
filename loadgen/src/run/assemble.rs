//! The end of a run: the threads' counts and histograms added up into the
//! [`RunResult`], with both sides' costs over the window, the per-second
//! samples, and every reason the run failed.

use std::time::{Duration, Instant, SystemTime};

use super::conn;
use super::engine::WorkerReport;
use super::histo::{self, Hist};
use super::sampler::{self, SamplerReport};
use super::schedule::Timeline;
use super::{attribution, Measured};
use crate::records::config::{Protocol, RunArgs};
use crate::records::run::*;

/// What the load left behind, for [`assemble`].
pub(super) struct Assembly<'a> {
    pub args: &'a RunArgs,
    pub threads: usize,
    pub connections: ConnectionFigures,
    pub connect_s: f64,
    pub notes: Vec<String>,
    pub timeline: Timeline,
    pub connect_begin: Instant,
    pub reports: Vec<WorkerReport>,
    pub buckets: Vec<(Hist, u64)>,
    pub sampled: SamplerReport,
    pub interrupted: bool,
    /// Connections whose first request went unanswered before the load.
    pub unanswered: Vec<u64>,
}

/// Add the threads' figures up into the record.
pub(super) fn assemble(a: Assembly) -> Measured {
    let Assembly { args, threads, mut connections, connect_s, mut notes, timeline: t, .. } = a;
    let mut totals = add_up(&a.reports, args, &t, &mut connections);
    let send_lag = args.requests.rate.map(|_| lag_summary(&totals.send_lag, totals.held_back, &totals.latency));
    let by_method = totals.methods();
    let latency_by_method = by_method.iter().map(|(m, h)| (m.to_string(), histo::latency(h))).collect();
    let window = Window::of(&a.reports, a.interrupted, &t, totals.ended);

    // Costs: both sides' counters over the window.
    let lg_cpus = crate::env::affinity();
    let loadgen = loadgen_cost(&a.sampled, &totals.counts, threads);
    let server = server_figures(args, &a.sampled, &mut notes);
    let binaries = Binaries { loadgen: loadgen_id(), server: server_id(args, &a.sampled) };
    let server_cgroup = cgroup_figures(args, &a.sampled, &mut notes);
    let usable = threads.min(lg_cpus.len().max(1)) as f64;
    let LoadgenFlags { saturated: loadgen_saturated, send_lag_large } =
        LoadgenFlags::of(loadgen.cpu_utilization, usable, send_lag.as_ref());
    let env = crate::env::collect(args.server_cpus.as_ref().map(|c| c.0.clone()));
    let combined = attribution::combined(server.as_ref(), &loadgen);
    let answered = totals.counts.answered();
    let proc_stat = attribution::proc_stat(&a.sampled, &env, answered).unwrap_or_else(|why| {
        notes.push(format!("per-CPU time not measured: {why}"));
        None
    });
    let fairness = fairness(&mut totals.per_conn);
    let (timeseries, intervals) = timeseries(a.buckets, &t, &window, totals.ended, &a.sampled, a.connect_begin);

    let failures = failures(args, &totals, &window, &connections, &t, a.interrupted, &a.unanswered);
    notes.extend(closing_notes(&totals, &window, &connections, connect_s));
    let Totals { counts, latency, uncorrected, .. } = totals;
    let result = RunResult {
        args: std::env::args().collect(),
        config: Some(args.clone()),
        env,
        connections,
        window_s: window.seconds,
        throughput_rps: if window.seconds > 0.0 { counts.ok as f64 / window.seconds } else { 0.0 },
        latency: histo::latency(&latency),
        latency_uncorrected: args.requests.rate.map(|_| histo::latency(&uncorrected)),
        send_lag,
        latency_by_method,
        counts,
        server,
        server_cgroup,
        loadgen,
        combined,
        proc_stat,
        fairness,
        loadgen_saturated,
        send_lag_large,
        binaries,
        timeseries,
        profile: None,
        run_queue: None,
        failure: if failures.is_empty() { None } else { Some(failures.join("; ")) },
        notes,
    };
    let started = SystemTime::now() - t.start.elapsed();
    Measured { result, latency, by_method, started, intervals }
}

/// Add the threads up, and settle what follows from the sum: the
/// connections' figures, the requests scheduled (without --rate, every
/// request sent was), and whether every scheduled request is accounted for.
fn add_up(reports: &[WorkerReport], args: &RunArgs, t: &Timeline, connections: &mut ConnectionFigures) -> Totals {
    let mut totals = Totals::of(reports, t);
    connections.never_served += totals.never_served.len() as u64;
    connections.stuck += totals.stuck;
    connections.first_answer_us = histo::percentiles(&totals.first_answer);
    if args.requests.rate.is_none() {
        totals.counts.scheduled = totals.counts.sent;
    }
    let counts = &mut totals.counts;
    counts.accounted = counts.scheduled == counts.answered() + counts.timeouts + counts.in_flight_end + counts.unsent;
    totals
}

/// Every thread's counts, histograms and first problems, added up.
struct Totals {
    counts: Counts,
    latency: Hist,
    uncorrected: Hist,
    send_lag: Hist,
    first_answer: Hist,
    by_method: [Hist; conn::METHODS],
    held_back: u64,
    /// The connections never served, and those that owed requests never sent.
    never_served: Vec<u64>,
    unsent_conns: Vec<(u64, u64)>,
    stuck: u64,
    /// Answered in the window, per connection.
    per_conn: Vec<u64>,
    /// When the last thread stopped.
    ended: Instant,
    first_mismatch: Option<String>,
    garbage: Option<String>,
    first_close: Option<String>,
    last_answer: Option<Instant>,
}

impl Totals {
    fn of(reports: &[WorkerReport], t: &Timeline) -> Totals {
        let mut all = Totals {
            counts: Counts::default(),
            latency: histo::new_hist(),
            uncorrected: histo::new_hist(),
            send_lag: histo::new_hist(),
            first_answer: histo::new_hist(),
            by_method: std::array::from_fn(|_| histo::new_hist()),
            held_back: 0,
            never_served: Vec::new(),
            unsent_conns: Vec::new(),
            stuck: 0,
            per_conn: Vec::new(),
            ended: t.start,
            first_mismatch: None,
            garbage: None,
            first_close: None,
            last_answer: None,
        };
        for r in reports {
            all.add(r);
        }
        all
    }

    fn add(&mut self, r: &WorkerReport) {
        let (x, counts) = (&r.tally, &mut self.counts);
        counts.sent += x.sent;
        counts.scheduled += x.scheduled;
        counts.unsent += x.unsent;
        counts.ok += x.ok;
        for (code, n) in x.errors.iter().enumerate().filter(|(_, n)| **n > 0) {
            counts.errors += n;
            *counts.errors_by_status.entry(status_name(code as u8)).or_default() += n;
        }
        counts.mismatches += x.mismatches;
        counts.mismatches_total += x.mismatches_total;
        counts.timeouts += x.timeouts;
        counts.resets += x.resets;
        counts.in_flight_end += r.in_flight_end;
        self.latency.add(&x.corrected).expect("same shape");
        self.uncorrected.add(&x.uncorrected).expect("same shape");
        self.send_lag.add(&x.send_lag).expect("same shape");
        for (all, one) in self.by_method.iter_mut().zip(&x.by_method) {
            all.add(one).expect("same shape");
        }
        self.held_back += x.held_back;
        self.never_served.extend_from_slice(&r.never_served_conns);
        self.unsent_conns.extend_from_slice(&r.unsent_conns);
        self.first_answer.add(&r.first_answer_us).expect("same shape");
        self.per_conn.extend_from_slice(&r.answered_per_conn);
        self.stuck += r.stuck;
        self.ended = self.ended.max(r.ended_at);
        self.first_mismatch = self.first_mismatch.take().or(x.first_mismatch.clone());
        self.garbage = self.garbage.take().or(x.garbage.clone());
        self.first_close = self.first_close.take().or(x.first_close.clone());
        self.last_answer = self.last_answer.max(x.last_answer);
    }

    /// The latency of each method the run sent, by name, in protocol order.
    fn methods(&mut self) -> Vec<(&'static str, Hist)> {
        let by_method = std::mem::replace(&mut self.by_method, std::array::from_fn(|_| histo::new_hist()));
        conn::METHOD_ORDER.iter().zip(by_method).filter(|(_, h)| !h.is_empty()).map(|(m, h)| (m.name(), h)).collect()
    }
}

/// The measured window as it really was: cut short where the run was
/// interrupted or the server closed every connection.
struct Window {
    all_closed: bool,
    end: Instant,
    seconds: f64,
}

impl Window {
    fn of(reports: &[WorkerReport], interrupted: bool, t: &Timeline, ended: Instant) -> Window {
        let all_closed = !reports.is_empty() && reports.iter().all(|r| r.all_closed || r.answered_per_conn.is_empty());
        let cut_short = interrupted || all_closed;
        let end = if cut_short { t.window_end.min(ended) } else { t.window_end };
        Window { all_closed, end, seconds: end.saturating_duration_since(t.warmup_end).as_secs_f64() }
    }
}

/// The server's cgroup over the window (`--server-cgroup`): its budget
/// and the growth of its `cpu.stat` between the window's two snapshots.
fn cgroup_figures(args: &RunArgs, sampled: &SamplerReport, notes: &mut Vec<String>) -> Option<ServerCgroup> {
    let dir = args.server_cgroup.as_ref()?;
    let edges = [&sampled.window_start, &sampled.window_end];
    let (start, end) = match edges.map(|s| s.as_ref().and_then(|s| s.cgroup.clone())) {
        [Some(Ok(a)), Some(Ok(b))] => (a, b),
        [Some(Err(e)), _] | [_, Some(Err(e))] => {
            notes.push(format!("--server-cgroup {}: {e}", dir.display()));
            return None;
        }
        _ => {
            notes.push(format!("--server-cgroup {}: the window ended before both reads", dir.display()));
            return None;
        }
    };
    let budget = crate::cgroup::read_budget(dir).unwrap_or_else(|e| {
        notes.push(format!("--server-cgroup {}: {e}", dir.display()));
        None
    });
    let window = end.since(&start);
    let [t0, t1] = edges.map(|s| s.as_ref().and_then(|s| s.threads.clone()).unwrap_or_default());
    let waits = t1.waits_since(&t0);
    let between = match edges.map(|s| s.as_ref().and_then(|s| s.threads_at)) {
        [Some(a), Some(b)] if b > a => Some((b - a).as_secs_f64() * 1e6),
        _ => None,
    };
    let read_cost_us: u64 = edges.into_iter().flatten().map(|s| s.reader.user_us + s.reader.sys_us).sum();
    let read_cost_ms = read_cost_us as f64 / 2e3;
    Some(ServerCgroup {
        path: dir.display().to_string(),
        budget,
        window,
        throttled_share: if window.periods > 0 { window.throttled_periods as f64 / window.periods as f64 } else { 0.0 },
        admin_inside: crate::cgroup::admin_inside(dir),
        threads: t1.sched.len() as u64,
        mean_waiting: waits.zip(between).map(|((w, _), us)| w as f64 / us),
        read_cost_ms,
        wait_us: waits.map(|(w, _)| w),
        timeslices: waits.map(|(_, n)| n),
        wait_per_slice_us: waits.filter(|&(_, n)| n > 0).map(|(w, n)| w as f64 / n as f64),
    })
}

/// The server's own figures over the window, per request, from the two
/// STATS snapshots; `None` (and a note why, where it matters) when they
/// could not be taken or count no request.
fn server_figures(args: &RunArgs, sampled: &SamplerReport, notes: &mut Vec<String>) -> Option<ServerCost> {
    let admin = args.admin?;
    let (Some(s), Some(e)) = (&sampled.window_start, &sampled.window_end) else {
        notes.push(format!("--admin {admin}: the window was cut short before both STATS snapshots were taken"));
        return None;
    };
    match (&s.server, &e.server) {
        (Some(Ok(s)), Some(Ok(e))) => match server_cost(s, e, raw_message(args)) {
            // Nothing to divide by: no per-request figure, rather than zeros.
            cost if cost.requests == 0 => {
                notes.push("server counters: the server counted no requests between the two STATS".into());
                None
            }
            cost => Some(cost),
        },
        (Some(Err(why)), _) | (_, Some(Err(why))) => {
            notes.push(format!("server counters not measured: {why}"));
            None
        }
        _ => None,
    }
}

/// This load generator: the revision it was built from, its file's hash.
fn loadgen_id() -> BinaryId {
    let sha256 = crate::env::self_sha256();
    let unknown = sha256.is_none().then(|| "cannot read /proc/self/exe".to_string());
    BinaryId { revision: Some(crate::REVISION.to_string()), sha256, unknown }
}

/// The server that ran: its revision from the last STATS it answered, and
/// the hash of its executable where it can be read from here.
///
/// The STATS `pid` names a process of this host only if the server is on
/// this host's loopback (a server in another network namespace, or on
/// another machine, has a pid of its own namespace): otherwise the hash is
/// left unknown rather than taken from whatever process has that number.
fn server_id(args: &RunArgs, sampled: &SamplerReport) -> BinaryId {
    let Some(admin) = args.admin else {
        return BinaryId { unknown: Some("no --admin: the server was not asked".into()), ..Default::default() };
    };
    let last = [&sampled.window_end, &sampled.window_start]
        .into_iter()
        .flatten()
        .filter_map(|snap| snap.server.as_ref()?.as_ref().ok())
        .chain(sampled.seconds.iter().rev().flatten())
        .next();
    let Some(stats) = last else {
        return BinaryId { unknown: Some(format!("--admin {admin}: no STATS answered")), ..Default::default() };
    };
    let mut unknown = Vec::new();
    if stats.revision.is_none() {
        unknown.push("its STATS has no revision (a server built before it reported one)".to_string());
    }
    let exe = format!("/proc/{}/exe", stats.pid);
    let sha256 = match admin.ip().is_loopback() {
        false => {
            unknown.push(format!("--admin {admin} is not loopback: the server's executable is not readable here"));
            None
        }
        true => crate::env::sha256_file(std::path::Path::new(&exe))
            .map_err(|e| unknown.push(format!("cannot read {exe}: {e}")))
            .ok(),
    };
    BinaryId { revision: stats.revision.clone(), sha256, unknown: (!unknown.is_empty()).then(|| unknown.join("; ")) }
}

/// Requests answered per connection in the window: min, p1, median, max.
fn fairness(per_conn: &mut [u64]) -> Fairness {
    per_conn.sort_unstable();
    Fairness {
        min: per_conn.first().copied().unwrap_or(0),
        p1: histo::percentile_of_sorted(per_conn, 0.01),
        median: histo::percentile_of_sorted(per_conn, 0.5),
        max: per_conn.last().copied().unwrap_or(0),
    }
}

/// The one-second buckets of warm-up and window as samples, and the
/// window's as intervals for the `--hlog` file.
fn timeseries(
    buckets: Vec<(Hist, u64)>,
    t: &Timeline,
    window: &Window,
    ended: Instant,
    sampled: &SamplerReport,
    connect_begin: Instant,
) -> (Vec<Sample>, Vec<(Duration, Duration, Hist)>) {
    let mut timeseries = Vec::new();
    let mut intervals = Vec::new();
    for (k, (h, n)) in buckets.into_iter().enumerate() {
        let (from, to) = t.bucket_span(k);
        if from >= window.end.max(ended.min(t.window_end)) || to <= from {
            continue;
        }
        let len = (to - from).as_secs_f64();
        let stats = sampled.seconds.get(k).cloned().flatten();
        timeseries.push(Sample {
            t_s: (to - connect_begin).as_secs_f64(),
            phase: if t.bucket_in_window(k) { "window" } else { "warmup" }.into(),
            rps: n as f64 / len,
            p50_us: if h.is_empty() { 0 } else { h.value_at_quantile(0.5) },
            p99_us: if h.is_empty() { 0 } else { h.value_at_quantile(0.99) },
            server_threads: stats.as_ref().map(|s| s.threads),
            server_rss_bytes: stats.as_ref().map(|s| s.rss_bytes),
        });
        if t.bucket_in_window(k) {
            intervals.push((from - t.start, to - from, h));
        }
    }
    (timeseries, intervals)
}

/// Every reason the run is no measurement (empty: it is one).
fn failures(
    args: &RunArgs,
    totals: &Totals,
    window: &Window,
    connections: &ConnectionFigures,
    t: &Timeline,
    interrupted: bool,
    unanswered: &[u64],
) -> Vec<String> {
    if interrupted {
        return vec!["interrupted".to_string()];
    }
    let counts = &totals.counts;
    let mut failures = Vec::new();
    if window.all_closed && counts.resets > 0 {
        failures.push(format!(
            "--target {}: the server closed or reset all {} connections {:.1} s into the load (did it die?): {}",
            args.target,
            connections.established,
            totals.ended.saturating_duration_since(t.start).as_secs_f64(),
            totals.first_close.clone().unwrap_or_default()
        ));
    }
    if let Some(g) = &totals.garbage {
        failures.push(g.clone());
    }
    failures.extend(silence(args, totals, window, t));
    failures.extend(accounting_failures(args, counts, unanswered, &totals.never_served, &totals.unsent_conns));
    if counts.mismatches_total > 0 && !args.allow_mismatch {
        failures.push(format!(
            "{} answers did not match what was sent (first: {}); --allow-mismatch to accept",
            counts.mismatches_total,
            totals.first_mismatch.as_deref().unwrap_or("undecodable answer")
        ));
    }
    failures
}

/// A server that stopped answering is no measurement: no answer in the
/// whole window, or none for longer than --timeout (1 s at least) before
/// its end while requests were waiting.
fn silence(args: &RunArgs, totals: &Totals, window: &Window, t: &Timeline) -> Option<String> {
    let counts = &totals.counts;
    let unanswered = counts.timeouts + counts.in_flight_end;
    let silent_for = window.end.saturating_duration_since(totals.last_answer.unwrap_or(t.start));
    if !window.all_closed && counts.sent > 0 && counts.answered() == 0 {
        Some(format!(
            "--target {}: no answer in the window ({} requests timed out, {} still in flight)",
            args.target, counts.timeouts, counts.in_flight_end
        ))
    } else if !window.all_closed && unanswered > 0 && silent_for > args.timeout.max(Duration::from_secs(1)) {
        Some(format!(
            "--target {}: the server stopped answering {:.1} s before the window ended ({} requests timed out, \
             {} still in flight): frozen or overloaded?",
            args.target,
            silent_for.as_secs_f64(),
            counts.timeouts,
            counts.in_flight_end
        ))
    } else {
        None
    }
}

/// What a reader should know about how the connections went.
fn closing_notes(totals: &Totals, window: &Window, connections: &ConnectionFigures, connect_s: f64) -> Vec<String> {
    let mut notes = Vec::new();
    if totals.counts.resets > 0 && !window.all_closed {
        notes.push(format!(
            "{} connections reset or closed by the server: {}",
            totals.counts.resets,
            totals.first_close.clone().unwrap_or_default()
        ));
    }
    notes.push(opened_note(connections, connect_s));
    notes
}

/// How the connections came up before the load: all answered once, or how
/// many were not (the warm-up then ran without them).
fn opened_note(connections: &ConnectionFigures, connect_s: f64) -> String {
    let opened = connections.established;
    match connections.unanswered_first {
        0 => format!("{opened} connections opened, and each answered once, in {connect_s:.2} s"),
        n => format!("{opened} connections opened in {connect_s:.2} s; {n} of them had no answer to their first request before the load"),
    }
}

/// The send lag's median as a share of the latency's median from which a
/// run is flagged `send_lag_large` (a flag of its own: a late sender is
/// not a busy one).
pub const SEND_LAG_LARGE_SHARE: f64 = 0.25;

fn lag_summary(lag: &Hist, held_back: u64, latency: &Hist) -> SendLag {
    let p = histo::percentiles(lag);
    let p50 = if latency.is_empty() { 0 } else { latency.value_at_quantile(0.5) };
    SendLag {
        p50: p.p50,
        p99: p.p99,
        max: p.max,
        count: lag.len(),
        held_back,
        share_of_p50: if p50 > 0 { p.p50 as f64 / p50 as f64 } else { 0.0 },
    }
}

/// What makes a run fail in its accounting: a connection never served
/// before the load (the warm-up could not end with every connection
/// answered), requests the schedule owed and never sent (the rate was not
/// offered), error statuses the workload did not expect.
fn accounting_failures(
    args: &RunArgs,
    counts: &Counts,
    unanswered: &[u64],
    never_served: &[u64],
    unsent_conns: &[(u64, u64)],
) -> Vec<String> {
    let mut failures = Vec::new();
    if !unanswered.is_empty() {
        failures.push(format!(
            "--target {}: {} connections had no answer to their first request within --connect-timeout {:?}, so \
             the warm-up could not end with every connection served ({} never answered in the whole run): {}",
            args.target,
            unanswered.len(),
            args.connect_timeout,
            never_served.len(),
            name_some(unanswered.iter().copied())
        ));
    } else if !never_served.is_empty() {
        failures.push(format!(
            "--target {}: {} connections never got an answer: {}",
            args.target,
            never_served.len(),
            name_some(never_served.iter().copied())
        ));
    }
    if counts.unsent > 0 {
        failures.push(format!(
            "--rate {}: not offered: {} of the {} requests scheduled in the window were never sent, because their \
             connection still waited for an earlier answer when the run ended ({} connections: {})",
            args.requests.rate.unwrap_or_default(),
            counts.unsent,
            counts.scheduled,
            unsent_conns.len(),
            name_some(unsent_conns.iter().map(|&(c, _)| c))
        ));
    }
    if counts.errors > 0 && !args.expect_errors {
        let by: Vec<String> = counts.errors_by_status.iter().map(|(k, v)| format!("{v} {k}")).collect();
        failures.push(format!(
            "--target {}: {} answers carried an error status ({}); --expect-errors if the workload expects them",
            args.target,
            counts.errors,
            by.join(", ")
        ));
    }
    failures
}

/// "connections 3, 7, 12 and 40 more", sorted.
fn name_some(conns: impl Iterator<Item = u64>) -> String {
    let mut all: Vec<u64> = conns.collect();
    all.sort_unstable();
    let shown: Vec<String> = all.iter().take(10).map(u64::to_string).collect();
    let more = if all.len() > 10 { format!(" and {} more", all.len() - 10) } else { String::new() };
    format!("connections {}{more}", shown.join(", "))
}

/// The load generator's own cost over the window, less what its reading
/// of the server's thread files cost (under a CPU budget; see
/// `sampler::Snapshot::reader`): the instrument does not count itself.
fn loadgen_cost(s: &SamplerReport, counts: &Counts, threads: usize) -> LoadgenCost {
    let now = sampler::rusage();
    let mut cost = LoadgenCost {
        rss_bytes: now.rss_bytes,
        max_rss_bytes: now.max_rss_bytes,
        threads: threads + 2,
        ..Default::default()
    };
    if let (Some(a), Some(b)) = (&s.window_start, &s.window_end) {
        let reader = |f: fn(&sampler::Rusage) -> u64| f(&a.reader) + f(&b.reader);
        cost.user_us = b.loadgen.user_us.saturating_sub(a.loadgen.user_us).saturating_sub(reader(|r| r.user_us));
        cost.sys_us = b.loadgen.sys_us.saturating_sub(a.loadgen.sys_us).saturating_sub(reader(|r| r.sys_us));
        cost.rss_bytes = b.loadgen.rss_bytes;
        let answered = counts.answered();
        let per = |us: u64| if answered > 0 { us as f64 / answered as f64 } else { 0.0 };
        (cost.user_us_per_req, cost.sys_us_per_req) = (per(cost.user_us), per(cost.sys_us));
        cost.cpu_us_per_req = per(cost.user_us + cost.sys_us);
        let wall = (b.at - a.at).as_secs_f64() * 1e6;
        cost.cpu_utilization = if wall > 0.0 { (cost.user_us + cost.sys_us) as f64 / wall } else { 0.0 };
    }
    cost
}

/// What a run finds about the load generator itself: two findings, kept
/// apart because they mean different things. Its CPUs saturated limits the
/// throughput (the tie rule uses it); a large send lag is its lateness in
/// the latency, and happens with idle CPUs too (echo-paced runs at 2,000
/// req/s with the load generator 4-8% busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoadgenFlags {
    pub saturated: bool,
    pub send_lag_large: bool,
}

impl LoadgenFlags {
    pub(crate) fn of(utilization: f64, usable_cpus: f64, send_lag: Option<&SendLag>) -> LoadgenFlags {
        LoadgenFlags {
            saturated: is_loadgen_saturated(utilization, usable_cpus),
            send_lag_large: send_lag.is_some_and(|l| l.share_of_p50 >= SEND_LAG_LARGE_SHARE),
        }
    }
}

/// Raw mode: the message size. A raw server cannot see messages, only
/// reads: its STATS `requests` counts reads, however the bytes were cut.
fn raw_message(args: &RunArgs) -> Option<u32> {
    match args.protocol {
        Protocol::Raw => Some(args.requests.size),
        Protocol::Framed => None,
    }
}

/// The server's figures over the window, per request: per answer in
/// framed mode, per message echoed in raw mode (the bytes it wrote over
/// the message size), never per read.
///
/// The instrument is left out: each snapshot less its admin thread's own
/// use (where the server reports it), so the once-a-second STATS reads do
/// not count as the server's switches, CPU or system calls.
fn server_cost(a: &proto::Stats, b: &proto::Stats, raw_message: Option<u32>) -> ServerCost {
    let (a, b) = (&a.less_admin(), &b.less_admin());
    let requests = match raw_message {
        Some(size) if size > 0 => b.bytes_out.saturating_sub(a.bytes_out) / size as u64,
        _ => b.requests.saturating_sub(a.requests),
    };
    let per = |x: u64, y: u64| if requests > 0 { y.saturating_sub(x) as f64 / requests as f64 } else { 0.0 };
    // A counter the server may not have: per request where both snapshots have it.
    let counted = |x: Option<u64>, y: Option<u64>| Some(per(x?, y?)).filter(|_| requests > 0);
    let cpu = (b.user_us + b.sys_us).saturating_sub(a.user_us + a.sys_us) as f64;
    let wall = b.uptime_us.saturating_sub(a.uptime_us) as f64;
    ServerCost {
        model: b.model.clone(),
        requests,
        voluntary_cs_per_req: per(a.voluntary_ctxt_switches, b.voluntary_ctxt_switches),
        involuntary_cs_per_req: per(a.involuntary_ctxt_switches, b.involuntary_ctxt_switches),
        user_us_per_req: per(a.user_us, b.user_us),
        sys_us_per_req: per(a.sys_us, b.sys_us),
        cpu_us_per_req: if requests > 0 { cpu / requests as f64 } else { 0.0 },
        syscalls_per_req: counted(a.syscalls, b.syscalls),
        wait_syscalls_per_req: counted(a.syscalls_wait, b.syscalls_wait),
        bytes_per_req: per(a.bytes_in + a.bytes_out, b.bytes_in + b.bytes_out),
        cpu_utilization: if wall > 0.0 { cpu / wall } else { 0.0 },
        admin_realtime: b.admin.as_ref().map(|x| x.realtime),
        threads: b.threads,
        connections_open: b.connections_open,
        rss_bytes: b.rss_bytes,
        max_rss_bytes: b.max_rss_bytes,
        limits_acted: limits_acted(b),
    }
}

/// The hostile-client limits' counts in `stats`, where the server has them.
fn limits_acted(stats: &proto::Stats) -> Option<LimitsActed> {
    Some(LimitsActed {
        connections_refused: stats.connections_refused?,
        partial_frame_timeouts: stats.partial_frame_timeouts?,
        write_timeouts: stats.write_timeouts?,
    })
}

fn status_name(code: u8) -> String {
    proto::Status::from_code(code).map_or_else(|| format!("STATUS_{code}"), |s| s.name().to_string())
}

/// The record of a run that never started its load.
pub(super) fn empty_result(
    args: &RunArgs,
    threads: usize,
    connections: ConnectionFigures,
    notes: Vec<String>,
    failure: String,
) -> RunResult {
    RunResult {
        args: std::env::args().collect(),
        config: Some(args.clone()),
        env: crate::env::collect(args.server_cpus.as_ref().map(|c| c.0.clone())),
        connections,
        latency_uncorrected: args.requests.rate.map(|_| Latency::default()),
        loadgen: loadgen_cost(&SamplerReport::default(), &Counts::default(), threads),
        binaries: Binaries { loadgen: loadgen_id(), server: BinaryId::default() },
        failure: Some(failure),
        notes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The note on opening says each connection was answered only when
    /// each was (the pool past its size leaves some unanswered).
    #[test]
    fn the_opening_note_counts_the_unanswered() {
        let all = ConnectionFigures { established: 8, ..Default::default() };
        assert_eq!(opened_note(&all, 1.0), "8 connections opened, and each answered once, in 1.00 s");
        let some = ConnectionFigures { established: 8, unanswered_first: 4, ..Default::default() };
        let note = opened_note(&some, 1.0);
        assert!(note.contains("4 of them had no answer") && !note.contains("each answered"), "{note}");
    }

    /// The flag fires whenever its condition holds, server state aside
    /// (mio-multi c1000 echo-saturate: loadgen 0.987, server 0.907).
    #[test]
    fn loadgen_saturated_is_the_load_generators_cpu_alone() {
        assert!(is_loadgen_saturated(0.987, 1.0));
        assert!(is_loadgen_saturated(0.9, 1.0));
        assert!(!is_loadgen_saturated(0.89, 1.0));
        assert!(!is_loadgen_saturated(1.5, 2.0), "two CPUs: 75% busy");
        assert!(is_loadgen_saturated(1.85, 2.0));
    }

    /// A late but idle load generator is not saturated, and its throughput
    /// is compared like any other; only saturated CPUs force a tie.
    #[test]
    fn a_large_send_lag_alone_does_not_tie_the_throughput() {
        use crate::stats::Spread;
        use crate::sweep::cells::{Comparison, Contender, Order, Rule};
        let lag = SendLag { p50: 60, p99: 90, max: 100, count: 1000, held_back: 0, share_of_p50: 0.6 };
        let idle = LoadgenFlags::of(0.05, 1.0, Some(&lag));
        assert_eq!(idle, LoadgenFlags { saturated: false, send_lag_large: true });
        let busy = LoadgenFlags::of(0.95, 1.0, Some(&lag));
        assert_eq!(busy, LoadgenFlags { saturated: true, send_lag_large: true });

        // Three passes each, the same pass effect on both sides.
        let side = |model: &str, rps: &[f64], flags: LoadgenFlags| Contender {
            model: model.into(),
            spread: Spread::of(rps).unwrap(),
            passes: rps.iter().enumerate().map(|(k, &v)| (k as u32 + 1, v)).collect(),
            loadgen_saturated: flags.saturated,
        };
        let calm = LoadgenFlags::of(0.05, 1.0, None);
        let slow = side("slow", &[1_000.0, 1_010.0, 1_020.0], calm);
        let fast = side("fast", &[2_000.0, 2_010.0, 2_030.0], idle);
        let order = |a: &Contender, b: &Contender| Comparison::paired(a, b, Rule::THROUGHPUT).order_of(&a.model);
        assert_eq!(order(&fast, &slow), Order::Ahead, "5% busy: its lead stands");
        let fast_busy = side("fast", &[2_000.0, 2_010.0, 2_030.0], busy);
        assert_eq!(order(&fast_busy, &slow), Order::Tie, "95% busy: a tie");
    }

    /// The send lag is summarised apart and flagged when its median is a
    /// quarter of the latency's or more (a lag of 40 µs against 100 µs).
    #[test]
    fn send_lag_share_of_the_median() {
        let (mut lag, mut latency) = (histo::new_hist(), histo::new_hist());
        for _ in 0..100 {
            histo::record(&mut lag, Duration::from_micros(40));
            histo::record(&mut latency, Duration::from_micros(100));
        }
        let g = lag_summary(&lag, 7, &latency);
        assert_eq!((g.p50, g.count, g.held_back), (40, 100, 7));
        assert!((g.share_of_p50 - 0.4).abs() < 0.01, "{g:?}");
        assert!(g.share_of_p50 >= SEND_LAG_LARGE_SHARE);
        let small = lag_summary(&histo::new_hist(), 0, &latency);
        assert_eq!(small.share_of_p50, 0.0);
    }
}
