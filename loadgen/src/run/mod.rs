//! `loadgen run`: drive one server with N connections and measure it, with
//! figures a reader can check.
//!
//! The run goes: check the flags; read STATS once (so a wrong `--admin`
//! fails before any load); open every connection, paced, and check the
//! count; send one request on each and wait until all are answered (so the
//! warm-up ends only after every connection has been served once); start
//! all threads at one instant; warm up; measure the window
//! (STATS and `getrusage` at both ends, from the sampler thread); wait a
//! short drain for the window's answers; then add up the threads' counts
//! and histograms into a [`RunResult`], print it and write the files.
//!
//! The load generator must never be the bottleneck, so it reports its own
//! CPU per request and utilization beside the server's, and its send lag
//! (open loop: how late it sent each request), and flags every run in which
//! its CPUs were saturated or its lag was a large share of the latency
//! (`loadgen_bound`), whether or not the server's were too: in both cases
//! the figures are partly the load generator's. On loopback each side is
//! also charged some of the other's kernel work, so the run adds the two up
//! and reads every CPU's time from /proc/stat over the window (see
//! `attribution`).
//!
//! Nothing vanishes: open loop, every request the schedule owed the window
//! is answered, timed out, in flight at the end or unsent, and the result
//! says whether those add up (`counts.accounted`). A run that left any
//! unsent did not offer its rate, and fails.

pub mod args;
mod attribution;
mod conn;
pub mod engine;
pub mod histo;
mod output;
pub mod sampler;
pub mod schedule;
mod summary;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use args::RunArgs;
use engine::{ConnectReport, LoadPlan, Shared, WorkerReport};
use histo::Hist;
use sampler::{SamplerReport, StatsClient};
use schedule::Timeline;

use crate::result::*;

/// Longest wait for the window's answers after it closes.
pub const MAX_DRAIN: Duration = Duration::from_secs(2);

/// Run, print the summary (unless `--quiet`) and write the files asked for.
/// A run that measured something returns `Ok` even when it failed; see
/// `failure` in the result (the binary then exits non-zero).
pub fn run(args: &RunArgs) -> anyhow::Result<RunResult> {
    output::check_writable(args)?;
    let m = measure(args)?;
    output::write_files(args, &m)?;
    if !args.quiet {
        print!("{}", summary::render(args, &m.result));
    }
    Ok(m.result)
}

/// A finished measurement: the record plus what the files are made from.
pub struct Measured {
    pub result: RunResult,
    /// Corrected latency over the window.
    pub latency: Hist,
    /// The same, per method, for the methods the run sent (by name).
    pub by_method: Vec<(&'static str, Hist)>,
    /// Wall-clock time at the start of the load, and the window's
    /// one-second intervals: (offset from that start, length, histogram).
    pub started: SystemTime,
    pub intervals: Vec<(Duration, Duration, Hist)>,
}

/// SIGINT sets this; the threads poll it.
fn stop_flag() -> Arc<AtomicBool> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        // A second Ctrl-C kills the process outright.
        let _ = signal_hook::flag::register_conditional_default(signal_hook::consts::SIGINT, flag.clone());
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone());
        flag
    })
    .clone()
}

pub fn measure(args: &RunArgs) -> anyhow::Result<Measured> {
    args.validate()?;
    crate::files::raise_nofile_limit();
    let stop = stop_flag();
    stop.store(false, Relaxed);
    let mut notes = Vec::new();
    match args.admin {
        Some(admin) => {
            let s = StatsClient::new(admin).fetch().map_err(|e| anyhow!(e))?;
            if s.model.is_empty() {
                notes.push(format!("--admin {admin}: STATS names no model"));
            }
        }
        None => notes.push("no --admin: server counters not measured".into()),
    }

    let threads = (args.threads as u64).min(args.connections as u64) as usize;
    let plan = Arc::new(LoadPlan {
        target: args.target,
        protocol: args.protocol,
        shape: args.shape(),
        workload: workload::Workload::new(&args.mix(), args.size, args.delay_us, args.rounds),
        timeout: args.timeout,
        connect_rate: args.connect_rate as f64 / threads as f64,
        connect_timeout: args.connect_timeout,
        connections: args.connections as u64,
    });
    let shared = Arc::new(Shared { stop: stop.clone(), ..Default::default() });
    let (connected_tx, connected_rx) = mpsc::channel::<ConnectReport>();
    let (bucket_tx, bucket_rx) = mpsc::channel();
    let mut starts = Vec::new();
    let mut handles = Vec::new();
    let connect_begin = Instant::now();
    for t in 0..threads {
        let indices: Vec<u64> = (t as u64..args.connections as u64).step_by(threads).collect();
        let (start_tx, start_rx) = mpsc::channel();
        starts.push(start_tx);
        let (plan, shared, connected, buckets) =
            (plan.clone(), shared.clone(), connected_tx.clone(), bucket_tx.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || engine::worker(plan, shared, indices, connected, start_rx, buckets))
                .context("cannot start a load thread")?,
        );
    }
    drop((connected_tx, bucket_tx));

    // Every connection open, or why not.
    let mut established = 0;
    let mut connect_us = histo::new_hist();
    let mut first_error = None;
    let mut unanswered = Vec::new();
    for report in connected_rx.iter().take(threads) {
        unanswered.extend(report.unanswered);
        established += report.established;
        connect_us.add(&report.connect_us).expect("same histogram shape");
        first_error = first_error.or(report.first_error);
    }
    let connect_s = connect_begin.elapsed().as_secs_f64();
    let requested = args.connections as u64;
    let connections = ConnectionFigures {
        requested,
        established,
        failed: requested - established,
        connect_us: histo::percentiles(&connect_us),
        unanswered_first: unanswered.len() as u64,
        ..Default::default()
    };
    let short = established < requested;
    if short {
        notes.push(format!(
            "only {established} of {requested} connections established: --target {}: {}",
            args.target,
            first_error.as_deref().unwrap_or("unknown error")
        ));
    }
    if stop.load(Relaxed) || established == 0 || (short && !args.allow_partial) {
        for s in &starts {
            let _ = s.send(None);
        }
        for h in handles {
            let _ = h.join();
        }
        let failure = if stop.load(Relaxed) {
            "interrupted".to_string()
        } else {
            format!(
                "--target {}: {} ({established} of {requested} connections established{})",
                args.target,
                first_error.as_deref().unwrap_or("connections failed"),
                if established > 0 { "; --allow-partial to run with fewer" } else { "" }
            )
        };
        let result = empty_result(args, threads, connections, notes, failure);
        return Ok(Measured {
            result,
            latency: histo::new_hist(),
            by_method: vec![],
            started: SystemTime::now(),
            intervals: vec![],
        });
    }

    // Start every thread at the same instant.
    let drain = args.timeout.min(MAX_DRAIN);
    let timeline = Timeline::new(Instant::now() + Duration::from_millis(20), args.warmup, args.duration, drain);
    for s in &starts {
        let _ = s.send(Some(timeline));
    }
    let (sampler_stop, sampler_rx) = mpsc::channel();
    let sampler = sampler::spawn(args.admin, timeline, sampler_rx).context("cannot start the STATS sampler")?;

    let progress = progress_bar(args, timeline);
    let mut buckets: Vec<(Hist, u64)> = (0..timeline.buckets()).map(|_| (histo::new_hist(), 0)).collect();
    let mut last = (Instant::now(), 0u64);
    loop {
        match bucket_rx.recv_timeout(Duration::from_millis(100)) {
            Ok((k, h, n)) => {
                if let Some(b) = buckets.get_mut(k) {
                    b.0.add(&h).expect("same histogram shape");
                    b.1 += n;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last.0.elapsed() >= Duration::from_millis(500) {
            let answered = shared.answered.load(Relaxed);
            let rps = (answered - last.1) as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), answered);
            let now = Instant::now();
            let phase = if now < timeline.warmup_end {
                "warm-up"
            } else if now < timeline.window_end {
                "window"
            } else {
                "drain"
            };
            progress.set_position((now.saturating_duration_since(timeline.start)).as_millis() as u64);
            progress.set_message(format!("{phase}: {rps:.0} req/s, {} connections open", shared.open.load(Relaxed)));
        }
    }
    progress.finish_and_clear();
    let mut reports: Vec<WorkerReport> = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(Some(r))) => reports.push(r),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(anyhow!(e).context("a load thread failed")),
            Err(_) => return Err(anyhow!("a load thread panicked")),
        }
    }
    let _ = sampler_stop.send(());
    let sampled = sampler.join().map_err(|_| anyhow!("the STATS sampler panicked"))?;
    let interrupted = stop.load(Relaxed);
    Ok(assemble(Assembly {
        args,
        threads,
        connections,
        connect_s,
        notes,
        timeline,
        connect_begin,
        reports,
        buckets,
        sampled,
        interrupted,
        unanswered,
    }))
}

struct Assembly<'a> {
    args: &'a RunArgs,
    threads: usize,
    connections: ConnectionFigures,
    connect_s: f64,
    notes: Vec<String>,
    timeline: Timeline,
    connect_begin: Instant,
    reports: Vec<WorkerReport>,
    buckets: Vec<(Hist, u64)>,
    sampled: SamplerReport,
    interrupted: bool,
    /// Connections whose first request went unanswered before the load.
    unanswered: Vec<u64>,
}

/// Add the threads' figures up into the record.
fn assemble(a: Assembly) -> Measured {
    let Assembly { args, threads, mut connections, connect_s, mut notes, timeline: t, reports, sampled, .. } = a;
    let mut counts = Counts::default();
    let (mut latency, mut uncorrected, mut first_answer) = (histo::new_hist(), histo::new_hist(), histo::new_hist());
    let mut send_lag = histo::new_hist();
    let mut by_method: [Hist; conn::METHODS] = std::array::from_fn(|_| histo::new_hist());
    let mut held_back = 0;
    let (mut never_served, mut unsent_conns) = (Vec::new(), Vec::new());
    let mut per_conn = Vec::new();
    let mut ended = t.start;
    let mut first_mismatch = None;
    let mut garbage = None;
    let mut first_close = None;
    let mut last_answer: Option<Instant> = None;
    for r in &reports {
        let x = &r.tally;
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
        latency.add(&x.corrected).expect("same shape");
        uncorrected.add(&x.uncorrected).expect("same shape");
        send_lag.add(&x.send_lag).expect("same shape");
        for (all, one) in by_method.iter_mut().zip(&x.by_method) {
            all.add(one).expect("same shape");
        }
        held_back += x.held_back;
        never_served.extend_from_slice(&r.never_served_conns);
        unsent_conns.extend_from_slice(&r.unsent_conns);
        first_answer.add(&r.first_answer_us).expect("same shape");
        per_conn.extend_from_slice(&r.answered_per_conn);
        connections.never_served += r.never_served;
        connections.stuck += r.stuck;
        ended = ended.max(r.ended_at);
        first_mismatch = first_mismatch.or(x.first_mismatch.clone());
        garbage = garbage.or(x.garbage.clone());
        first_close = first_close.or(x.first_close.clone());
        last_answer = last_answer.max(x.last_answer);
    }
    connections.first_answer_us = histo::percentiles(&first_answer);
    if args.rate.is_none() {
        counts.scheduled = counts.sent;
    }
    counts.accounted =
        counts.scheduled == counts.ok + counts.errors + counts.timeouts + counts.in_flight_end + counts.unsent;
    let send_lag = args.rate.map(|_| lag_summary(&send_lag, held_back, &latency));
    let by_method: Vec<(&'static str, Hist)> =
        conn::METHOD_ORDER.iter().zip(by_method).filter(|(_, h)| !h.is_empty()).map(|(m, h)| (m.name(), h)).collect();
    let latency_by_method = by_method.iter().map(|(m, h)| (m.to_string(), histo::latency(h))).collect();
    let send_lag_large = send_lag.as_ref().is_some_and(|l| l.share_of_p50 >= SEND_LAG_LARGE_SHARE);
    let all_closed = !reports.is_empty() && reports.iter().all(|r| r.all_closed || r.answered_per_conn.is_empty());
    let cut_short = a.interrupted || all_closed;
    let window_end = if cut_short { t.window_end.min(ended) } else { t.window_end };
    let window_s = window_end.saturating_duration_since(t.warmup_end).as_secs_f64();

    // Costs: both sides' counters over the window.
    let lg_cpus = crate::env::affinity();
    let (loadgen, lg_util) = loadgen_cost(&sampled, &counts, threads);
    let server = match (&sampled.window_start, &sampled.window_end, args.admin) {
        (Some(s), Some(e), Some(_)) => match (&s.server, &e.server) {
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
        },
        (_, _, Some(admin)) => {
            notes.push(format!("--admin {admin}: the window was cut short before both STATS snapshots were taken"));
            None
        }
        _ => None,
    };
    let usable = threads.min(lg_cpus.len().max(1)) as f64;
    let loadgen_bound = is_loadgen_bound(lg_util, usable) || send_lag_large;
    let env = crate::env::collect(args.server_cpus.as_ref().map(|c| c.0.clone()));
    let combined = attribution::combined(server.as_ref(), &loadgen);
    let proc_stat = attribution::proc_stat(&sampled, &env, counts.ok + counts.errors).unwrap_or_else(|why| {
        notes.push(format!("per-CPU time not measured: {why}"));
        None
    });

    per_conn.sort_unstable();
    let fairness = Fairness {
        min: per_conn.first().copied().unwrap_or(0),
        p1: histo::percentile_of_sorted(&per_conn, 0.01),
        median: histo::percentile_of_sorted(&per_conn, 0.5),
        max: per_conn.last().copied().unwrap_or(0),
    };

    let mut timeseries = Vec::new();
    let mut intervals = Vec::new();
    for (k, (h, n)) in a.buckets.into_iter().enumerate() {
        let (from, to) = t.bucket_span(k);
        if from >= window_end.max(ended.min(t.window_end)) || to <= from {
            continue;
        }
        let len = (to - from).as_secs_f64();
        let stats = sampled.seconds.get(k).cloned().flatten();
        timeseries.push(Sample {
            t_s: (to - a.connect_begin).as_secs_f64(),
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

    let mut failures = Vec::new();
    if a.interrupted {
        failures.push("interrupted".to_string());
    } else {
        if all_closed && counts.resets > 0 {
            failures.push(format!(
                "--target {}: the server closed or reset all {} connections {:.1} s into the load (did it die?): {}",
                args.target,
                connections.established,
                ended.saturating_duration_since(t.start).as_secs_f64(),
                first_close.clone().unwrap_or_default()
            ));
        }
        if let Some(g) = garbage {
            failures.push(g);
        }
        // A server that stopped answering is no measurement: no answer in
        // the whole window, or none for longer than --timeout (1 s at least)
        // before its end while requests were waiting.
        let unanswered = counts.timeouts + counts.in_flight_end;
        let silent_for = window_end.saturating_duration_since(last_answer.unwrap_or(t.start));
        if !all_closed && counts.sent > 0 && counts.ok + counts.errors == 0 {
            failures.push(format!(
                "--target {}: no answer in the window ({} requests timed out, {} still in flight)",
                args.target, counts.timeouts, counts.in_flight_end
            ));
        } else if !all_closed && unanswered > 0 && silent_for > args.timeout.max(Duration::from_secs(1)) {
            failures.push(format!(
                "--target {}: the server stopped answering {:.1} s before the window ended ({} requests timed out, \
                 {} still in flight): frozen or overloaded?",
                args.target,
                silent_for.as_secs_f64(),
                counts.timeouts,
                counts.in_flight_end
            ));
        }
        failures.extend(accounting_failures(args, &counts, &a.unanswered, &never_served, &unsent_conns));
        if counts.mismatches_total > 0 && !args.allow_mismatch {
            failures.push(format!(
                "{} answers did not match what was sent (first: {}); --allow-mismatch to accept",
                counts.mismatches_total,
                first_mismatch.as_deref().unwrap_or("undecodable answer")
            ));
        }
    }
    if counts.resets > 0 && !all_closed {
        notes.push(format!(
            "{} connections reset or closed by the server: {}",
            counts.resets,
            first_close.unwrap_or_default()
        ));
    }
    notes.push(format!("{} connections opened, and each answered once, in {connect_s:.2} s", connections.established));

    let result = RunResult {
        args: std::env::args().collect(),
        env,
        connections,
        window_s,
        throughput_rps: if window_s > 0.0 { counts.ok as f64 / window_s } else { 0.0 },
        latency: histo::latency(&latency),
        latency_uncorrected: args.rate.map(|_| histo::latency(&uncorrected)),
        send_lag,
        latency_by_method,
        counts,
        server,
        loadgen,
        combined,
        proc_stat,
        fairness,
        loadgen_bound,
        send_lag_large,
        timeseries,
        failure: if failures.is_empty() { None } else { Some(failures.join("; ")) },
        notes,
    };
    let started = SystemTime::now() - t.start.elapsed();
    Measured { result, latency, by_method, started, intervals }
}

/// The send lag's median as a share of the latency's median from which a
/// run is flagged `send_lag_large` (and so `loadgen_bound`).
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
            args.rate.unwrap_or_default(),
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

fn loadgen_cost(s: &SamplerReport, counts: &Counts, threads: usize) -> (LoadgenCost, f64) {
    let now = sampler::rusage();
    let mut cost = LoadgenCost {
        rss_bytes: now.rss_bytes,
        max_rss_bytes: now.max_rss_bytes,
        threads: threads + 2,
        ..Default::default()
    };
    let mut util = 0.0;
    if let (Some(a), Some(b)) = (&s.window_start, &s.window_end) {
        cost.user_us = b.loadgen.user_us.saturating_sub(a.loadgen.user_us);
        cost.sys_us = b.loadgen.sys_us.saturating_sub(a.loadgen.sys_us);
        cost.rss_bytes = b.loadgen.rss_bytes;
        let answered = counts.ok + counts.errors;
        let cpu = (cost.user_us + cost.sys_us) as f64;
        cost.cpu_us_per_req = if answered > 0 { cpu / answered as f64 } else { 0.0 };
        let per = |us: u64| if answered > 0 { us as f64 / answered as f64 } else { 0.0 };
        (cost.user_us_per_req, cost.sys_us_per_req) = (per(cost.user_us), per(cost.sys_us));
        let wall = (b.at - a.at).as_secs_f64() * 1e6;
        util = if wall > 0.0 { cpu / wall } else { 0.0 };
        cost.cpu_utilization = util;
    }
    (cost, util)
}

/// The load generator was (at least) a limit of the run: its CPUs were
/// 90% busy or more, whatever the server's state. A run where both sides
/// are saturated is flagged too, since its throughput is then partly the
/// load generator's.
pub const LOADGEN_BOUND_UTILIZATION: f64 = 0.9;

fn is_loadgen_bound(loadgen_utilization: f64, loadgen_cpus: f64) -> bool {
    loadgen_utilization >= LOADGEN_BOUND_UTILIZATION * loadgen_cpus
}

/// Raw mode: the message size. A raw server cannot see messages, only
/// reads: its STATS `requests` counts reads, however the bytes were cut.
fn raw_message(args: &RunArgs) -> Option<u32> {
    match args.protocol {
        args::Protocol::Raw => Some(args.size),
        args::Protocol::Framed => None,
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
    }
}

fn status_name(code: u8) -> String {
    match proto::Status::from_code(code) {
        Some(proto::Status::Ok) => "OK",
        Some(proto::Status::UnknownMethod) => "UNKNOWN_METHOD",
        Some(proto::Status::BadRequest) => "BAD_REQUEST",
        Some(proto::Status::TooLarge) => "TOO_LARGE",
        Some(proto::Status::Busy) => "BUSY",
        None => return format!("STATUS_{code}"),
    }
    .to_string()
}

/// The record of a run that never started its load.
fn empty_result(
    args: &RunArgs,
    threads: usize,
    connections: ConnectionFigures,
    notes: Vec<String>,
    failure: String,
) -> RunResult {
    let now = sampler::rusage();
    RunResult {
        args: std::env::args().collect(),
        env: crate::env::collect(args.server_cpus.as_ref().map(|c| c.0.clone())),
        connections,
        window_s: 0.0,
        counts: Counts::default(),
        throughput_rps: 0.0,
        latency: Latency::default(),
        latency_uncorrected: args.rate.map(|_| Latency::default()),
        send_lag: None,
        latency_by_method: Default::default(),
        server: None,
        loadgen: LoadgenCost {
            rss_bytes: now.rss_bytes,
            max_rss_bytes: now.max_rss_bytes,
            threads: threads + 2,
            ..Default::default()
        },
        combined: None,
        proc_stat: None,
        fairness: Fairness::default(),
        loadgen_bound: false,
        send_lag_large: false,
        timeseries: vec![],
        failure: Some(failure),
        notes,
    }
}

fn progress_bar(args: &RunArgs, t: Timeline) -> ProgressBar {
    let total = (t.window_end - t.start).as_millis() as u64;
    let target = if args.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let pb = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}") {
        pb.set_style(style);
    }
    pb
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    /// The flag fires whenever its condition holds, server state aside
    /// (mio-multi c1000 echo-saturate: loadgen 0.987, server 0.907).
    #[test]
    fn loadgen_bound_is_the_load_generators_cpu_alone() {
        assert!(is_loadgen_bound(0.987, 1.0));
        assert!(is_loadgen_bound(0.9, 1.0));
        assert!(!is_loadgen_bound(0.89, 1.0));
        assert!(!is_loadgen_bound(1.5, 2.0), "two CPUs: 75% busy");
        assert!(is_loadgen_bound(1.85, 2.0));
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
