//! Where the time goes (issue 21): CPU profiles of the measured window, a
//! per-request cost breakdown by category, and the server threads'
//! run-queue wait.
//!
//! `loadgen run --profile DIR` runs `perf record` (on-CPU stacks, the
//! `cpu-clock` software event, kernel included, every CPU) over the window
//! only ([`capture`]), picks out the server's samples (and with
//! `--profile-loadgen` the load generator's), folds the stacks and draws a
//! flame graph per side ([`fold`]), and splits each side's measured CPU per
//! request by the one category table ([`categories`], [`breakdown`]). The
//! run JSON gets a `profile` section. Profiling costs CPU, so profiled runs are kept apart
//! from the runs whose figures are reported. Where perf is missing or
//! refused, the run says so once and goes on without profiles.
//!
//! Every run on loopback with `--admin` also gets `run_queue`
//! ([`runqueue`]): how long the server's threads waited to run.

pub mod breakdown;
pub mod capture;
pub mod categories;
pub mod fold;
pub mod runqueue;

use std::path::{Path, PathBuf};
use std::time::Instant;

use breakdown::{Counts, NAMED_SHARE_FLOOR};
use capture::Recorder;

/// Sampling frequency when `--profile-hz` is not given.
pub use crate::records::config::DEFAULT_PROFILE_HZ as DEFAULT_HZ;
pub use crate::records::profile::{ProfileRecord, SideProfile};

/// What to profile (the flags `--profile`, `--profile-hz`, `--profile-loadgen`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileArgs {
    pub dir: PathBuf,
    pub hz: u32,
    pub loadgen: bool,
}

impl ProfileArgs {
    /// What a run's `--profile` asks for, if anything.
    pub fn of(args: &crate::records::config::RunArgs) -> Option<ProfileArgs> {
        let dir = args.profile.clone()?;
        Some(ProfileArgs { dir, hz: args.profile_hz, loadgen: args.profile_loadgen })
    }
}

/// Which process a profile is of.
pub use crate::procstat::Side;

/// One perf recording every CPU, between the start of the run and the end
/// of its window, and the processes whose samples make the profiles.
pub struct Session {
    hz: u32,
    dir: PathBuf,
    recorder: Option<Recorder>,
    sides: Vec<(Side, u32)>,
    enabled_at: Option<Instant>,
    window_s: f64,
    /// What went wrong, once, for the run's notes.
    pub notes: Vec<String>,
}

impl Session {
    /// Start perf, events off, for the server (`server_pid`, where known)
    /// and, if asked, this process. A refusal leaves a note and no
    /// recorder; the run goes on.
    pub fn start(args: &ProfileArgs, server_pid: Option<u32>) -> Session {
        let mut s = Session {
            hz: args.hz,
            dir: args.dir.clone(),
            recorder: None,
            sides: vec![],
            enabled_at: None,
            window_s: 0.0,
            notes: vec![],
        };
        match server_pid {
            Some(pid) => s.sides.push((Side::Server, pid)),
            None => {
                s.notes.push("--profile: the server's pid is unknown (needs --admin, on loopback): not profiled".into())
            }
        }
        if args.loadgen {
            s.sides.push((Side::Loadgen, std::process::id()));
        }
        if s.sides.is_empty() {
            return s;
        }
        if let Err(e) = std::fs::create_dir_all(&args.dir) {
            s.notes.push(format!("--profile {}: {e}: no profiles", args.dir.display()));
            return s;
        }
        match Recorder::start(args.hz, &args.dir) {
            Ok(r) => s.recorder = Some(r),
            Err(e) => s.notes.push(format!("--profile: {e}")),
        }
        s
    }

    /// Sampling on: the window starts.
    pub fn enable(&mut self) {
        let Some(r) = &mut self.recorder else { return };
        match r.enable() {
            Ok(t) => self.enabled_at = Some(t),
            Err(e) => self.notes.push(format!("--profile: {e}")),
        }
    }

    /// Sampling off: the window ended.
    pub fn disable(&mut self) {
        let Some(r) = &mut self.recorder else { return };
        match r.disable() {
            Ok(t) => self.window_s = self.enabled_at.map_or(0.0, |on| t.saturating_duration_since(on).as_secs_f64()),
            Err(e) => self.notes.push(format!("--profile: {e}")),
        }
    }

    /// Stop perf, then fold, draw and break each side down, scaled to its
    /// CPU per request (`cpu_us_per_req(side)`); `None` with nothing recorded.
    pub fn finish(mut self, cpu_us_per_req: impl Fn(Side) -> f64) -> (Option<ProfileRecord>, Vec<String>) {
        let Some(recorder) = self.recorder.take() else { return (None, self.notes) };
        let data = match recorder.finish() {
            Ok(d) => d,
            Err(e) => {
                self.notes.push(format!("--profile: {e}"));
                return (None, self.notes);
            }
        };
        let mut record = ProfileRecord { hz: self.hz, window_s: self.window_s, server: None, loadgen: None };
        for &(side, pid) in &self.sides {
            match side_profile(&self.dir, &data, side, pid, cpu_us_per_req(side)) {
                Ok(p) => {
                    if p.named_below_floor {
                        self.notes.push(format!(
                            "--profile: the {} profile's named share is {:.0}%, below {:.0}%: read its breakdown with care",
                            side.name(),
                            p.named_share * 100.0,
                            NAMED_SHARE_FLOOR * 100.0
                        ));
                    }
                    match side {
                        Side::Server => record.server = Some(p),
                        Side::Loadgen => record.loadgen = Some(p),
                    }
                }
                Err(e) => self.notes.push(format!("--profile: {}: {e:#}", side.name())),
            }
        }
        (Some(record), self.notes)
    }
}

/// One side's samples, picked out of the recording by process, folded,
/// drawn and broken down.
fn side_profile(dir: &Path, data: &Path, side: Side, pid: u32, cpu_us_per_req: f64) -> anyhow::Result<SideProfile> {
    use anyhow::Context;
    let script = capture::script(data, pid)?;
    let folded = fold::collapse(&script).context("folding perf script's output")?;
    let (folded_path, svg_path) =
        (dir.join(format!("{}.folded", side.name())), dir.join(format!("{}.svg", side.name())));
    std::fs::write(&folded_path, &folded).with_context(|| format!("cannot write {}", folded_path.display()))?;
    let counts = Counts::of_folded(&folded);
    let samples = capture::samples(&script);
    if counts.total > 0 {
        let title = format!("{}: on-CPU stacks over the measured window", side.name());
        fold::flamegraph(&folded, &title, &svg_path).with_context(|| format!("cannot write {}", svg_path.display()))?;
    }
    let named_share = counts.named_share();
    Ok(SideProfile {
        samples,
        cpu_us_per_req,
        categories: counts.per_request(cpu_us_per_req),
        named_share,
        named_below_floor: named_share < NAMED_SHARE_FLOOR,
        folded: folded_path.display().to_string(),
        svg: svg_path.display().to_string(),
    })
}

/// What the run watches besides its own figures: the profiles (with
/// `--profile`) and the run-queue wait (whenever the server's pid is
/// known), from before the load to the end of the window.
pub struct Watch {
    session: Option<Session>,
    run_queue: Option<runqueue::Reader>,
}

impl Watch {
    /// Before the load, every connection open: find the server's pid (its
    /// STATS, for a server on loopback), attach perf and time one read of
    /// its threads.
    pub fn start(
        admin: Option<std::net::SocketAddr>,
        target: std::net::SocketAddr,
        profile: Option<&ProfileArgs>,
    ) -> Watch {
        let server_pid = admin
            .filter(|_| target.ip().is_loopback())
            .and_then(|a| crate::run::sampler::StatsClient::new(a).fetch().ok())
            .map(|s| s.pid)
            .filter(|&pid| pid > 0 && Path::new(&format!("/proc/{pid}")).exists());
        Watch {
            session: profile.map(|p| Session::start(p, server_pid)),
            run_queue: server_pid.map(runqueue::Reader::new),
        }
    }

    /// Follow the window on a thread of its own: read the threads just
    /// before it, switch perf on at its start and off at its end (or when
    /// `stop` fires), read the threads again.
    pub fn spawn(
        mut self,
        window_start: Instant,
        window_end: Instant,
        stop: std::sync::mpsc::Receiver<()>,
    ) -> std::io::Result<std::thread::JoinHandle<Watch>> {
        std::thread::Builder::new().name("profile-window".into()).spawn(move || {
            let wait_until = |at: Instant| {
                let waited = stop.recv_timeout(at.saturating_duration_since(Instant::now()));
                matches!(waited, Err(std::sync::mpsc::RecvTimeoutError::Timeout))
            };
            let read_at = self.run_queue.as_ref().map_or(window_start, |r| r.start_read_at(window_start));
            if !wait_until(read_at) {
                return self;
            }
            if let Some(r) = &mut self.run_queue {
                r.read_start();
            }
            if !wait_until(window_start) {
                return self;
            }
            if let Some(s) = &mut self.session {
                s.enable();
            }
            wait_until(window_end);
            if let Some(s) = &mut self.session {
                s.disable();
            }
            if let Some(r) = &mut self.run_queue {
                r.read_end();
            }
            self
        })
    }

    /// Fill the result's `profile` and `run_queue`, and add the notes.
    pub fn finish(self, result: &mut crate::records::run::RunResult) {
        let server = result.server.as_ref().map(|s| (s.cpu_us_per_req, s.requests));
        if let Some(r) = &self.run_queue {
            result.run_queue = r.figures(result.window_s, server.map_or(0, |s| s.1), result.latency.mean);
        }
        if let Some(s) = self.session {
            let loadgen_cpu = result.loadgen.cpu_us_per_req;
            let (record, notes) = s.finish(|side| match side {
                Side::Server => server.map_or(0.0, |s| s.0),
                Side::Loadgen => loadgen_cpu,
            });
            result.profile = record;
            result.notes.extend(notes);
        }
    }
}

/// The run summary's lines for `run_queue` and `profile`:
/// `run queue    1003 threads waited 520.3 µs per request to run, summed over them (1.3% of the mean latency; reading them took 12.5 ms)`
/// and per profiled side its µs per request by category.
pub fn summary_lines(r: &crate::records::run::RunResult) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if let Some(q) = &r.run_queue {
        let _ = writeln!(
            s,
            "run queue    {} threads waited {:.1} µs per request to run, summed over them ({:.1}% of the mean latency; \
             reading them took {:.1} ms, outside the window)",
            q.threads,
            q.wait_us_per_req,
            q.wait_over_latency * 100.0,
            q.read_ms
        );
    }
    let Some(p) = &r.profile else { return s };
    for (side, prof) in [("server", &p.server), ("loadgen", &p.loadgen)] {
        let Some(prof) = prof else { continue };
        let parts: Vec<String> = categories::Category::ALL
            .iter()
            .map(|c| format!("{} {:.2}", c.name(), prof.categories.get(c.name()).copied().unwrap_or(0.0)))
            .collect();
        let _ = writeln!(
            s,
            "profile      {side}: µs per request {} ({} samples at {} Hz, {:.0}% named; {})",
            parts.join(", "),
            prof.samples,
            p.hz,
            prof.named_share * 100.0,
            prof.svg
        );
    }
    s
}
