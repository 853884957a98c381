//! The process-wide counters behind `STATS`, and the snapshot that reads them.
//!
//! The counters are plain relaxed atomics: a model bumps them as it works,
//! and [`snapshot`] adds what the kernel knows about the whole process
//! (`getrusage(RUSAGE_SELF)`, which still counts threads that have exited).
//! The admin port that serves it is `admin.rs`.
//!
//! ## The instrument's own cost can be left out
//!
//! The load generator reads STATS once a second. Each read wakes the admin
//! thread, which answers and then blocks again: one voluntary context
//! switch, some CPU and a dozen system calls per read, which a server that
//! is otherwise idle or event-driven would show as its own (28 event-loop
//! runs once showed exactly 6 voluntary switches per window: the window's
//! 6 reads). STATS keeps PROTOCOL.md's fields as the whole process's, and
//! reports the admin thread's own use apart in `admin` (proto's
//! `AdminThread`), so that a client takes it out (`Stats::less_admin`, as
//! the load generator does):
//!
//! - CPU (user, sys) and context switches (voluntary, involuntary): the
//!   admin thread's own `getrusage(RUSAGE_THREAD)`, read by the admin
//!   thread right after the process's `getrusage(RUSAGE_SELF)`, so that
//!   both are totals up to the same instant.
//! - System calls: the admin thread's own counters
//!   (`syscount::ThreadCounters`). The few calls made between the two reads
//!   are the same in every snapshot, so they cancel in a difference.
//!
//! What is *not* left out that way:
//!
//! - A thread the admin thread preempts (when it runs at real-time priority,
//!   as the sweep asks with `--admin-realtime`, see
//!   `admin.rs`) takes an involuntary switch: at most one per STATS read.
//! - User and system time apart: the kernel splits run time between them
//!   by sampled ticks, separately for the process and for the thread, so
//!   the admin thread's CPU time is taken out of the process's in the
//!   proportion of the process's own split. Their sum, the CPU time, is
//!   exact (to the µs); each part is as good as the kernel's split.
//! - On loopback the sender's side runs the receiver's TCP path: the STATS
//!   request's delivery is charged to the client, the answer's to the admin
//!   thread (so left out); nothing of it to the server's other threads.
//! - Memory and `threads` are the whole process's (the admin thread is one
//!   thread with a small stack).
//! - A STATS sent on a *data* port (`dispatch.rs`) is answered by a data
//!   thread, which pays for it like for any request; it subtracts the admin
//!   thread's use as of that thread's last answer (published after each),
//!   which misses at most the admin thread's latest wake-up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use proto::{AdminThread, Frame, Stats, Status};

/// What the models count; everything else in [`Stats`] comes from the kernel.
#[derive(Default)]
pub struct Counters {
    pub connections_open: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub requests: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub errors: AtomicU64,
    /// Connections accepted and closed at once: `--max-connections` were open.
    pub connections_refused: AtomicU64,
    /// Connections closed because a frame stopped arriving (`--partial-frame-timeout-ms`).
    pub partial_frame_timeouts: AtomicU64,
    /// Connections closed because their answers could not be written (`--write-timeout-ms`).
    pub write_timeouts: AtomicU64,
    /// `--max-connections`, set once by `launch` (until then: no limit).
    max_connections: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    connections_open: AtomicU64::new(0),
    connections_accepted: AtomicU64::new(0),
    requests: AtomicU64::new(0),
    bytes_in: AtomicU64::new(0),
    bytes_out: AtomicU64::new(0),
    errors: AtomicU64::new(0),
    connections_refused: AtomicU64::new(0),
    partial_frame_timeouts: AtomicU64::new(0),
    write_timeouts: AtomicU64::new(0),
    max_connections: AtomicU64::new(u64::MAX),
};

#[cfg(test)]
thread_local! {
    /// Errors counted by this thread: what a unit test asserts on, since
    /// the tests that run in parallel bump the process-wide count too.
    pub static ERRORS_ON_THIS_THREAD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

static IDENTITY: OnceLock<(&'static str, Instant)> = OnceLock::new();

/// Record the model's name and the start time; called once by `launch`.
pub fn init(model: &'static str) {
    let _ = IDENTITY.set((model, Instant::now()));
}

/// One connection, counted open (`connections_accepted` and
/// `connections_open`) for as long as this lives. Every Rust model's
/// connection holds one, so the count is right however the connection
/// ends: EOF, an error, a panic, a failed spawn. (libevent's C loop counts
/// through its open and close callbacks instead.)
#[must_use]
pub struct OpenConnection(());

impl OpenConnection {
    pub fn accepted() -> OpenConnection {
        COUNTERS.accepted();
        OpenConnection(())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        COUNTERS.closed();
    }
}

impl Counters {
    pub fn accepted(&self) {
        self.connections_accepted.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }
    pub fn closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }
    pub fn read(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }
    pub fn wrote(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }
    pub fn answered(&self, n: u64) {
        self.requests.fetch_add(n, Relaxed);
    }
    pub fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
        #[cfg(test)]
        ERRORS_ON_THIS_THREAD.with(|n| n.set(n.get() + 1));
    }
    pub fn partial_frame_timeout(&self) {
        self.partial_frame_timeouts.fetch_add(1, Relaxed);
    }
    pub fn write_timeout(&self) {
        self.write_timeouts.fetch_add(1, Relaxed);
    }

    /// Set `--max-connections` (`launch` does, once).
    pub fn set_max_connections(&self, max: u64) {
        self.max_connections.store(max, Relaxed);
    }

    /// Whether a connection just accepted may stay: false, and counted as
    /// refused, while `--max-connections` are open. Every model asks this
    /// right after accept and, on false, closes the socket at once (before
    /// counting it accepted), so the server keeps serving the others and
    /// the client sees a plain close.
    pub fn admit(&self) -> bool {
        if self.connections_open.load(Relaxed) < self.max_connections.load(Relaxed) {
            return true;
        }
        self.connections_refused.fetch_add(1, Relaxed);
        false
    }
}

/// CPU time, context switches and system calls: of the whole process, or
/// of one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub user_us: u64,
    pub sys_us: u64,
    pub voluntary: u64,
    pub involuntary: u64,
    /// (every call, waiting calls), where they are counted.
    pub syscalls: Option<(u64, u64)>,
}

impl Usage {
    /// The whole process's, threads that have exited included.
    pub fn process() -> Usage {
        let rusage = rusage(libc::RUSAGE_SELF);
        Usage { syscalls: crate::syscount::read(), ..rusage }
    }

    /// The calling thread's own, with its system calls if it counts them.
    pub fn this_thread(counters: Option<&crate::syscount::ThreadCounters>) -> Usage {
        let rusage = rusage(libc::RUSAGE_THREAD);
        Usage { syscalls: counters.and_then(|c| c.read()), ..rusage }
    }
}

/// getrusage(2) for `who` (RUSAGE_SELF or RUSAGE_THREAD).
fn rusage(who: libc::c_int) -> Usage {
    // SAFETY: getrusage fills the zeroed struct we pass and nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let tv_us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Usage {
        user_us: tv_us(ru.ru_utime),
        sys_us: tv_us(ru.ru_stime),
        voluntary: ru.ru_nvcsw as u64,
        involuntary: ru.ru_nivcsw as u64,
        syscalls: None,
    }
}

/// The admin thread's use as of its last answer, for snapshots taken on
/// other threads.
static ADMIN_PUBLISHED: Mutex<Option<AdminThread>> = Mutex::new(None);

/// Called by the admin thread after each answer.
pub fn publish_admin(admin: AdminThread) {
    *ADMIN_PUBLISHED.lock().unwrap_or_else(|e| e.into_inner()) = Some(admin);
}

/// The counters plus the kernel's view of this process, right now, and the
/// admin thread's use as of its last answer. Any thread may call it; the
/// admin thread itself uses [`snapshot_with`], which is exact.
pub fn snapshot() -> Stats {
    let process = Usage::process();
    let admin = ADMIN_PUBLISHED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    snapshot_with(process, admin)
}

/// The counters, `process` (read just now) and `admin`'s own use.
pub fn snapshot_with(process: Usage, admin: Option<AdminThread>) -> Stats {
    let (model, started) = IDENTITY.get().copied().unwrap_or(("unknown", Instant::now()));
    let server = process;
    let c = &COUNTERS;
    Stats {
        model: model.to_string(),
        pid: std::process::id(),
        uptime_us: started.elapsed().as_micros() as u64,
        threads: thread_count(),
        connections_open: c.connections_open.load(Relaxed),
        connections_accepted: c.connections_accepted.load(Relaxed),
        requests: c.requests.load(Relaxed),
        bytes_in: c.bytes_in.load(Relaxed),
        bytes_out: c.bytes_out.load(Relaxed),
        errors: c.errors.load(Relaxed),
        user_us: server.user_us,
        sys_us: server.sys_us,
        voluntary_ctxt_switches: server.voluntary,
        involuntary_ctxt_switches: server.involuntary,
        rss_bytes: rss_bytes(),
        max_rss_bytes: peak_rss_bytes(),
        revision: Some(crate::REVISION.to_string()),
        syscalls: server.syscalls.map(|(all, _)| all),
        syscalls_wait: server.syscalls.map(|(_, waits)| waits),
        connections_refused: Some(c.connections_refused.load(Relaxed)),
        partial_frame_timeouts: Some(c.partial_frame_timeouts.load(Relaxed)),
        write_timeouts: Some(c.write_timeouts.load(Relaxed)),
        syscalls_not_counted: server.syscalls.is_none().then(crate::syscount::why_not),
        admin,
    }
}

/// Threads alive now: the `Threads:` line of /proc/self/status is for the
/// whole process (unlike the per-thread counters in that file).
fn thread_count() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// This process's peak resident memory, `VmHWM` of /proc/self/status.
/// Not `ru_maxrss`: the kernel carries that over from the parent across
/// fork and exec, so a server started by a large process would report the
/// parent's peak as its own.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|s| proto::peak_rss_from_status(&s)).unwrap_or(0)
}

/// Resident memory now, from /proc/self/statm (in pages).
fn rss_bytes() -> u64 {
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// A `STATS` response carrying `stats`.
pub fn frame(id: u64, stats: &Stats) -> Frame {
    Frame::response(id, proto::Method::Stats as u8, Status::Ok, stats.to_json())
}

/// The `STATS` response to a request with this id, from any thread.
pub fn stats_frame(id: u64) -> Frame {
    frame(id, &snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_the_kernel() {
        init("test");
        COUNTERS.answered(3);
        let s = snapshot();
        assert_eq!(s.pid, std::process::id());
        assert!(s.threads >= 1);
        assert!(s.rss_bytes > 0 && s.max_rss_bytes > 0);
        assert!(s.requests >= 3);
    }
}
