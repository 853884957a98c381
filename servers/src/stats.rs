//! The process-wide counters behind `STATS`, and the admin port.
//!
//! The counters are plain relaxed atomics: a model bumps them as it works,
//! and [`snapshot`] adds what the kernel knows about the whole process
//! (`getrusage(RUSAGE_SELF)`, which still counts threads that have exited).

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::thread;
use std::time::Instant;

use proto::{Frame, Request, Stats, Status};

/// What the models count; everything else in [`Stats`] comes from the kernel.
#[derive(Default)]
pub struct Counters {
    pub connections_open: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub requests: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub errors: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    connections_open: AtomicU64::new(0),
    connections_accepted: AtomicU64::new(0),
    requests: AtomicU64::new(0),
    bytes_in: AtomicU64::new(0),
    bytes_out: AtomicU64::new(0),
    errors: AtomicU64::new(0),
};

static IDENTITY: OnceLock<(&'static str, Instant)> = OnceLock::new();

/// Record the model's name and the start time; called once by `launch`.
pub fn init(model: &'static str) {
    let _ = IDENTITY.set((model, Instant::now()));
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
    }
}

/// The counters plus the kernel's view of this process, right now.
pub fn snapshot() -> Stats {
    let (model, started) = IDENTITY.get().copied().unwrap_or(("unknown", Instant::now()));
    // SAFETY: getrusage fills the zeroed struct we pass and nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv_us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    let c = &COUNTERS;
    let counted = crate::syscount::read();
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
        user_us: tv_us(ru.ru_utime),
        sys_us: tv_us(ru.ru_stime),
        voluntary_ctxt_switches: ru.ru_nvcsw as u64,
        involuntary_ctxt_switches: ru.ru_nivcsw as u64,
        rss_bytes: rss_bytes(),
        max_rss_bytes: ru.ru_maxrss as u64 * 1024,
        syscalls: counted.map(|(all, _)| all),
        syscalls_wait: counted.map(|(_, waits)| waits),
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

/// Resident memory now, from /proc/self/statm (in pages).
fn rss_bytes() -> u64 {
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

static ADMIN_ACCEPT: crate::log::RateLimited =
    crate::log::RateLimited::new("admin: accept failed", std::time::Duration::from_secs(1));

/// The `STATS` response to a request with this id.
pub fn stats_frame(id: u64) -> Frame {
    Frame::response(id, proto::Method::Stats as u8, Status::Ok, snapshot().to_json())
}

/// Serve `STATS` on the admin port from threads of its own, so that the
/// counters can be read even while the data path is saturated or starved.
/// Only `STATS` is served here; other methods get `UNKNOWN_METHOD`.
pub fn spawn_admin(listener: TcpListener) -> io::Result<()> {
    thread::Builder::new().name("admin".into()).spawn(move || {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                // Out of descriptors: wait for one to free up rather than
                // spinning on a backlog that accept() cannot drain.
                Err(e) if crate::net::is_resource_exhaustion(&e) => {
                    ADMIN_ACCEPT.log(&e);
                    thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
                Err(_) => continue,
            };
            // One short-lived thread per admin client: admin traffic is a
            // couple of requests per benchmark run, never a hot path.
            let _ = thread::Builder::new()
                .name("admin-conn".into())
                .stack_size(64 * 1024)
                .spawn(move || serve_admin(stream));
        }
    })?;
    Ok(())
}

fn serve_admin(mut stream: std::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        while let Some((req, used)) = proto::decode_with_limit(&buf, 4096).map_err(io::Error::other)? {
            buf.drain(..used);
            let resp = match proto::classify(&req) {
                Ok(Request::Stats) => stats_frame(req.id),
                Ok(_) => {
                    Frame::response(req.id, req.method, Status::UnknownMethod, b"admin port serves STATS only".to_vec())
                }
                Err((status, msg)) => Frame::response(req.id, req.method, status, msg.as_bytes().to_vec()),
            };
            let mut out = Vec::new();
            proto::encode(&resp, &mut out);
            stream.write_all(&out)?;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
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
