//! The server's counters (STATS on its admin port), the load generator's
//! own (`getrusage`), every CPU's (/proc/stat) and, under a CPU budget, the
//! server's cgroup's throttling (`cpu.stat`), read from a thread of their own.
//!
//! The sampler takes a snapshot of all three at the start and the end of the
//! measured window, whose differences give the cost per request, and reads
//! STATS once a second for the time series. It uses a blocking socket with a
//! short timeout and never touches the mio threads, so a slow or dead admin
//! port costs the measurement nothing but a missing figure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proto::{Method, Stats, Status};

use super::schedule::Timeline;
use crate::cgroup::{CpuStat, Threads};
use crate::procstat::{self, ProcStat};

/// How long one STATS exchange may take.
pub const STATS_TIMEOUT: Duration = Duration::from_millis(1000);

/// A blocking STATS client that keeps its connection between calls.
pub struct StatsClient {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl StatsClient {
    pub fn new(addr: SocketAddr) -> StatsClient {
        StatsClient { addr, stream: None, buf: Vec::with_capacity(1024) }
    }

    /// One STATS exchange. The error names `--admin` and says what was wrong.
    pub fn fetch(&mut self) -> Result<Stats, String> {
        let result = self.exchange();
        if result.is_err() {
            self.stream = None;
        }
        result.map_err(|e| format!("--admin {}: {e}", self.addr))
    }

    fn exchange(&mut self) -> Result<Stats, String> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, STATS_TIMEOUT).map_err(|e| describe_io(&e))?;
            s.set_read_timeout(Some(STATS_TIMEOUT)).map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(STATS_TIMEOUT)).map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().expect("connected above");
        let mut req = Vec::with_capacity(proto::HEADER_LEN);
        proto::encode_parts(u64::MAX, Method::Stats as u8, 0, &[], &mut req);
        stream.write_all(&req).map_err(|e| describe_io(&e))?;
        self.buf.clear();
        let deadline = Instant::now() + STATS_TIMEOUT;
        let frame = loop {
            match proto::decode(&self.buf) {
                Ok(Some((f, _))) => break f,
                Ok(None) => {}
                Err(e) => return Err(format!("the answer is not a STATS frame ({e})")),
            }
            if Instant::now() > deadline {
                return Err(format!("no STATS answer within {STATS_TIMEOUT:?}"));
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return Err("closed the connection without answering STATS".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(describe_io(&e)),
            }
        };
        if frame.id != u64::MAX || frame.method != Method::Stats as u8 {
            return Err(format!(
                "the answer is not a STATS answer (id {}, method {}): is this the data port?",
                frame.id, frame.method
            ));
        }
        if frame.status != Status::Ok as u8 {
            return Err(format!("STATS answered with status {}", frame.status));
        }
        Stats::from_json(&frame.payload).map_err(|e| format!("the STATS payload is not the expected JSON ({e})"))
    }
}

/// An I/O error in words a user recognises ("connection refused").
pub fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        TimedOut | WouldBlock => "timed out".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

/// The load generator's own resource use, from `getrusage(RUSAGE_SELF)`
/// and /proc/self/status.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rusage {
    pub user_us: u64,
    pub sys_us: u64,
    /// Its own peak resident memory: `VmHWM`, not `ru_maxrss` (which a
    /// process inherits from its parent across fork and exec: a sweep's
    /// `loadgen run` would report the sweep's peak).
    pub max_rss_bytes: u64,
    /// Resident memory now (from /proc/self/statm).
    pub rss_bytes: u64,
}

pub fn rusage() -> Rusage {
    // SAFETY: getrusage fills the zeroed struct we pass and nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Rusage {
        user_us: us(ru.ru_utime),
        sys_us: us(ru.ru_stime),
        max_rss_bytes: peak_rss_bytes(),
        rss_bytes: rss_bytes(),
    }
}

/// This process's own peak resident memory (`VmHWM`), 0 where unreadable.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|s| proto::peak_rss_from_status(&s)).unwrap_or(0)
}

/// Resident memory of this process now, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Both sides' counters, and the machine's, at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: Instant,
    pub loadgen: Rusage,
    /// Read right after `loadgen`, before the STATS round trip.
    pub proc_stat: Result<ProcStat, String>,
    pub server: Option<Result<Stats, String>>,
    /// The server's cgroup's `cpu.stat` (with `--server-cgroup`).
    pub cgroup: Option<Result<CpuStat, String>>,
    /// Its threads' scheduling counters (with `--server-cgroup`), read
    /// inside the window: after the counters at its start, before them at
    /// its end, so that reading one /proc file per server thread (about
    /// 0.16 s for 5000) never moves the window's edges.
    pub threads: Option<Threads>,
    /// When the threads were read (half-way through the reading).
    pub threads_at: Option<Instant>,
    /// The load generator's own CPU spent reading them (this thread's
    /// `getrusage(RUSAGE_THREAD)` across the reads), which falls inside the
    /// window and is taken out of the load generator's figures.
    pub reader: Rusage,
}

/// Which edge of the window a snapshot is taken at.
#[derive(Clone, Copy, PartialEq)]
enum Edge {
    Start,
    End,
}

/// The server's threads, read by this thread: what it read, when, and what
/// reading cost this thread.
fn read_threads(cgroup: &Path) -> (Threads, Instant, Rusage) {
    let (cpu0, t0) = (thread_rusage(), Instant::now());
    let threads = Threads::read(cgroup);
    let (cpu1, t1) = (thread_rusage(), Instant::now());
    let cost = Rusage {
        user_us: cpu1.user_us.saturating_sub(cpu0.user_us),
        sys_us: cpu1.sys_us.saturating_sub(cpu0.sys_us),
        ..Rusage::default()
    };
    (threads, t0 + (t1 - t0) / 2, cost)
}

/// The calling thread's CPU time (`getrusage(RUSAGE_THREAD)`).
fn thread_rusage() -> Rusage {
    // SAFETY: getrusage fills the zeroed struct we pass and nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru
    };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Rusage { user_us: us(ru.ru_utime), sys_us: us(ru.ru_stime), ..Rusage::default() }
}

fn snapshot(client: &mut Option<StatsClient>, cgroup: Option<&Path>, edge: Edge) -> Snapshot {
    let before = cgroup.filter(|_| edge == Edge::End).map(read_threads);
    let loadgen = rusage();
    let proc_stat = procstat::read().map_err(|e| e.to_string());
    let stat = cgroup.map(|dir| CpuStat::read(dir).map_err(|e| e.to_string()));
    let at = Instant::now();
    let server = client.as_mut().map(|c| c.fetch());
    let read = before.or_else(|| cgroup.map(read_threads));
    let (threads, threads_at, reader) = match read {
        Some((t, when, cost)) => (Some(t), Some(when), cost),
        None => (None, None, Rusage::default()),
    };
    Snapshot { at, loadgen, proc_stat, server, cgroup: stat, threads, threads_at, reader }
}

/// What the sampler saw.
#[derive(Debug, Default)]
pub struct SamplerReport {
    pub window_start: Option<Snapshot>,
    pub window_end: Option<Snapshot>,
    /// Entry k: STATS read at the end of one-second bucket k (see `Timeline`).
    pub seconds: Vec<Option<Stats>>,
}

/// Start the sampler; it ends at the window's end, or as soon as `stop`
/// receives a message or is dropped (taking the end snapshot then).
pub fn spawn(
    admin: Option<SocketAddr>,
    cgroup: Option<PathBuf>,
    timeline: Timeline,
    stop: Receiver<()>,
) -> std::io::Result<JoinHandle<SamplerReport>> {
    std::thread::Builder::new().name("stats-sampler".into()).spawn(move || {
        let mut client = admin.map(StatsClient::new);
        let mut report = SamplerReport::default();
        enum Event {
            WindowStart,
            Second(usize),
            WindowEnd,
        }
        let mut events: Vec<(Instant, u8, Event)> = vec![(timeline.warmup_end, 0, Event::WindowStart)];
        for k in 0..timeline.buckets() {
            events.push((timeline.bucket_span(k).1, 1, Event::Second(k)));
        }
        events.push((timeline.window_end, 2, Event::WindowEnd));
        events.sort_by_key(|(at, order, _)| (*at, *order));
        for (at, _, event) in events {
            let wait = at.saturating_duration_since(Instant::now());
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => {
                    if report.window_start.is_some() {
                        report.window_end = Some(snapshot(&mut client, cgroup.as_deref(), Edge::End));
                    }
                    return report;
                }
            }
            match event {
                Event::WindowStart => report.window_start = Some(snapshot(&mut client, cgroup.as_deref(), Edge::Start)),
                Event::WindowEnd => report.window_end = Some(snapshot(&mut client, cgroup.as_deref(), Edge::End)),
                Event::Second(k) => {
                    let stats = client.as_mut().and_then(|c| c.fetch().ok());
                    report.seconds.resize(k + 1, None);
                    report.seconds[k] = stats;
                }
            }
        }
        report
    })
}
