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
//! (`loadgen_saturated`), whether or not the server's were too: in both cases
//! the figures are partly the load generator's. On loopback each side is
//! also charged some of the other's kernel work, so the run adds the two up
//! and reads every CPU's time from /proc/stat over the window (see
//! `attribution`).
//!
//! Nothing vanishes: open loop, every request the schedule owed the window
//! is answered, timed out, in flight at the end or unsent, and the result
//! says whether those add up (`counts.accounted`). A run that left any
//! unsent did not offer its rate, and fails.

mod assemble;
pub mod attribution;
mod conn;
mod connect;
pub mod engine;
pub mod histo;
mod output;
mod plan;
pub mod sampler;
pub mod schedule;
mod terminal;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use crate::records::config::RunArgs;
pub use assemble::SEND_LAG_LARGE_SHARE;
use assemble::{assemble, empty_result, Assembly};
use connect::ConnectReport;
use engine::{Bucket, WorkerReport};
use histo::Hist;
use plan::{LoadPlan, Shared};
use sampler::StatsClient;
use schedule::Timeline;

use crate::records::run::*;

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
        print!("{}", terminal::render(args, &m.result));
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

/// Measure one run: the steps of the module's doc, each a function below.
pub fn measure(args: &RunArgs) -> anyhow::Result<Measured> {
    args.validate()?;
    crate::files::raise_nofile_limit();
    let stop = stop_flag();
    stop.store(false, Relaxed);
    let mut notes = check_admin(args)?;
    let threads = (args.threads as u64).min(args.connections as u64) as usize;
    let connect_begin = Instant::now();
    let load = Load::spawn(args, threads, &stop)?;
    let connected = load.connected(threads);
    let connect_s = connect_begin.elapsed().as_secs_f64();
    let connections = connected.figures(args, &mut notes);
    let short = connections.established < connections.requested;
    if stop.load(Relaxed) || connections.established == 0 || (short && !args.allow_partial) {
        load.cancel();
        let failure = connected.why_not(args, &stop);
        return Ok(Measured {
            result: empty_result(args, threads, connections, notes, failure),
            latency: histo::new_hist(),
            by_method: vec![],
            started: SystemTime::now(),
            intervals: vec![],
        });
    }

    // perf attached (and the server's threads read once) before the
    // timeline is set: attaching to thousands of threads takes a while.
    let watch = crate::profile::Watch::start(args.admin, args.target, crate::profile::ProfileArgs::of(args).as_ref());
    // Start every thread at the same instant.
    let drain = args.timeout.min(MAX_DRAIN);
    let begin = crate::records::clock::start_instant(args.start_at, &mut notes);
    let timeline = Timeline::new(begin, args.warmup, args.duration, drain);
    load.go(timeline);
    let (watch_stop, watch_rx) = mpsc::channel();
    let watcher =
        watch.spawn(timeline.warmup_end, timeline.window_end, watch_rx).context("cannot start the profiler")?;
    let (sampler_stop, sampler_rx) = mpsc::channel();
    let sampler = sampler::spawn(args.admin, args.server_cgroup.clone(), timeline, sampler_rx)
        .context("cannot start the STATS sampler")?;
    let buckets = load.follow(args, timeline);
    let reports = load.join()?;
    let _ = sampler_stop.send(());
    let sampled = sampler.join().map_err(|_| anyhow!("the STATS sampler panicked"))?;
    let _ = watch_stop.send(());
    let watched = watcher.join().map_err(|_| anyhow!("the profiler panicked"))?;
    let interrupted = stop.load(Relaxed);
    let mut measured = assemble(Assembly {
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
        unanswered: connected.unanswered,
    });
    watched.finish(&mut measured.result);
    Ok(measured)
}

/// Read STATS once, so that a wrong `--admin` fails before any load; the
/// notes a reader should have about the server's counters.
fn check_admin(args: &RunArgs) -> anyhow::Result<Vec<String>> {
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
    Ok(notes)
}

/// The threads' reports added up ([`Load::connected`]): the connection
/// figures, or why the load cannot start.
impl ConnectReport {
    /// The connections' figures before the load, and a note where fewer
    /// than asked were established.
    fn figures(&self, args: &RunArgs, notes: &mut Vec<String>) -> ConnectionFigures {
        let requested = args.connections as u64;
        let established = self.established;
        if established < requested {
            notes.push(format!(
                "only {established} of {requested} connections established: --target {}: {}",
                args.target,
                self.first_error.as_deref().unwrap_or("unknown error")
            ));
        }
        ConnectionFigures {
            requested,
            established,
            failed: requested - established,
            connect_us: histo::percentiles(&self.connect_us),
            unanswered_first: self.unanswered.len() as u64,
            ..Default::default()
        }
    }

    /// Why the run never started its load: interrupted, or too few connections.
    fn why_not(&self, args: &RunArgs, stop: &AtomicBool) -> String {
        if stop.load(Relaxed) {
            return "interrupted".to_string();
        }
        let (established, requested) = (self.established, args.connections as u64);
        format!(
            "--target {}: {} ({established} of {requested} connections established{})",
            args.target,
            self.first_error.as_deref().unwrap_or("connections failed"),
            if established > 0 { "; --allow-partial to run with fewer" } else { "" }
        )
    }
}

/// The load threads, each with its share of the connections, between
/// their start and the end of the run.
struct Load {
    shared: Arc<Shared>,
    starts: Vec<mpsc::Sender<Option<Timeline>>>,
    handles: Vec<JoinHandle<std::io::Result<Option<WorkerReport>>>>,
    connected: mpsc::Receiver<ConnectReport>,
    buckets: mpsc::Receiver<Bucket>,
}

impl Load {
    /// Start `threads` threads; each opens its connections at once and
    /// then waits for [`Load::go`].
    fn spawn(args: &RunArgs, threads: usize, stop: &Arc<AtomicBool>) -> anyhow::Result<Load> {
        let plan = Arc::new(LoadPlan {
            target: args.target,
            protocol: args.protocol,
            shape: args.requests.shape(),
            workload: {
                let r = &args.requests;
                workload::Workload::new(&r.mix(), r.size, r.delay_us, r.rounds)
            },
            timeout: args.timeout,
            connect_rate: args.connect_rate as f64 / threads as f64,
            connect_timeout: args.connect_timeout,
            connections: args.connections as u64,
        });
        let shared = Arc::new(Shared { stop: stop.clone(), ..Default::default() });
        let (connected_tx, connected) = mpsc::channel::<ConnectReport>();
        let (bucket_tx, buckets) = mpsc::channel();
        let (mut starts, mut handles) = (Vec::new(), Vec::new());
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
        Ok(Load { shared, starts, handles, connected, buckets })
    }

    /// Wait until every thread has opened its connections (or failed to),
    /// and add their reports up.
    fn connected(&self, threads: usize) -> ConnectReport {
        let mut all = ConnectReport::default();
        for report in self.connected.iter().take(threads) {
            all.unanswered.extend(report.unanswered);
            all.established += report.established;
            all.failed += report.failed;
            all.connect_us.add(&report.connect_us).expect("same histogram shape");
            all.first_error = all.first_error.or(report.first_error);
        }
        all
    }

    /// No load after all: let every thread go, unstarted.
    fn cancel(self) {
        for s in &self.starts {
            let _ = s.send(None);
        }
        for h in self.handles {
            let _ = h.join();
        }
    }

    /// Start every thread on the same timeline.
    fn go(&self, timeline: Timeline) {
        for s in &self.starts {
            let _ = s.send(Some(timeline));
        }
    }

    /// Gather the one-second buckets the threads send until they are all
    /// done, showing the progress (unless `--quiet`).
    fn follow(&self, args: &RunArgs, timeline: Timeline) -> Vec<(Hist, u64)> {
        let progress = progress_bar(args, timeline);
        let mut buckets: Vec<(Hist, u64)> = (0..timeline.buckets()).map(|_| (histo::new_hist(), 0)).collect();
        let mut last = (Instant::now(), 0u64);
        loop {
            match self.buckets.recv_timeout(Duration::from_millis(100)) {
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
                let answered = self.shared.answered.load(Relaxed);
                let rps = (answered - last.1) as f64 / last.0.elapsed().as_secs_f64();
                last = (Instant::now(), answered);
                let now = Instant::now();
                progress.set_position((now.saturating_duration_since(timeline.start)).as_millis() as u64);
                progress.set_message(format!(
                    "{}: {rps:.0} req/s, {} connections open",
                    timeline.phase(now),
                    self.shared.open.load(Relaxed)
                ));
            }
        }
        progress.finish_and_clear();
        buckets
    }

    /// Every thread's report; an error if one failed or panicked.
    fn join(self) -> anyhow::Result<Vec<WorkerReport>> {
        let mut reports: Vec<WorkerReport> = Vec::new();
        for h in self.handles {
            match h.join() {
                Ok(Ok(Some(r))) => reports.push(r),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => return Err(anyhow!(e).context("a load thread failed")),
                Err(_) => return Err(anyhow!("a load thread panicked")),
            }
        }
        Ok(reports)
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
