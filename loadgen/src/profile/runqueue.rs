//! How long the server's threads waited to run: the sum of `run_delay`
//! (/proc/TID/schedstat, field 2: time runnable but not on a CPU) over every
//! thread of the server, at the window's edges. This is the direct cost of
//! many runnable threads: a thread woken by its request that cannot run at
//! once. Read with the same reader the CPU-budget figures use
//! (`cgroup::Threads`).
//!
//! Reading 5000 threads' files takes a while (it is measured, before the
//! load, and recorded as `read_ms`), so both reads are kept out of the
//! window: the first ends just before the window's start, the second
//! begins just after its end. The wait is then taken over the time between
//! the reads' midpoints, scaled to the window's length.

use std::time::{Duration, Instant};

use crate::cgroup::Threads;

pub use crate::records::profile::RunQueue;

/// The server's threads read at both edges.
pub struct Reader {
    pid: u32,
    /// One read's duration, measured before the load.
    pub cost: Duration,
    start: Option<(Threads, Instant)>,
    end: Option<(Threads, Instant)>,
}

impl Reader {
    /// Read once to learn what a read costs (the server's threads are all
    /// there: every connection is open).
    pub fn new(pid: u32) -> Reader {
        let (_, cost) = read(pid);
        Reader { pid, cost, start: None, end: None }
    }

    /// When the first read must begin to end before `window_start`, with a
    /// margin of half its measured cost.
    pub fn start_read_at(&self, window_start: Instant) -> Instant {
        window_start.checked_sub(self.cost + self.cost / 2).unwrap_or(window_start)
    }

    pub fn read_start(&mut self) {
        self.start = Some(read(self.pid).0);
    }

    pub fn read_end(&mut self) {
        self.end = Some(read(self.pid).0);
    }

    /// The figures, for a window of `window_s` in which the server answered
    /// `requests` with a mean latency of `mean_latency_us`; `None` without
    /// both reads, or where the kernel counted nothing.
    pub fn figures(&self, window_s: f64, requests: u64, mean_latency_us: f64) -> Option<RunQueue> {
        let ((t0, at0), (t1, at1)) = (self.start.as_ref()?, self.end.as_ref()?);
        let (wait_us, _) = t1.waits_since(t0)?;
        let between = at1.saturating_duration_since(*at0).as_secs_f64();
        let wait_us = if between > 0.0 { wait_us as f64 * window_s / between } else { 0.0 };
        let per_req = if requests > 0 { wait_us / requests as f64 } else { 0.0 };
        Some(RunQueue {
            threads: t1.sched.len() as u64,
            wait_us,
            wait_us_per_req: per_req,
            wait_over_latency: if mean_latency_us > 0.0 { per_req / mean_latency_us } else { 0.0 },
            read_ms: self.cost.as_secs_f64() * 1e3,
        })
    }
}

/// Every thread's counters with the read's midpoint, and its duration.
fn read(pid: u32) -> ((Threads, Instant), Duration) {
    let t0 = Instant::now();
    let threads = Threads::of_process(pid);
    let took = t0.elapsed();
    ((threads, t0 + took / 2), took)
}
