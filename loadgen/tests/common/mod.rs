//! Test harness for `loadgen run`: start a real `servers` model
//! (`testkit::Server`) or a fake server written here on 127.0.0.1:0, run
//! the real `loadgen` binary at it and read back its JSON.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use loadgen::cpus;
use loadgen::records::run::RunResult;
pub use testkit::Scratch;

/// The sweep's split of this machine's CPUs: server and load generator on
/// disjoint sets (CPU 0 and CPU 1 on 2 cores), shared where there is one.
pub fn sweep_pinning() -> cpus::Pinning {
    let available = cpus::available().expect("sched_getaffinity");
    cpus::split(&available, None, None).expect("the default split of the available CPUs")
}

/// `loadgen run ARGS... --json TMP --quiet`; the output and the parsed
/// result (if the file was written).
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> (Output, Option<RunResult>) {
    run_with(args, |_| {})
}

/// As [`run`], pinned to `cpus` as the sweep pins it.
pub fn run_pinned<S: AsRef<OsStr>>(args: &[S], cpus: &[usize]) -> (Output, Option<RunResult>) {
    run_with(args, |cmd| cpus::confine(cmd, cpus, libc::SIGKILL))
}

fn run_with<S: AsRef<OsStr>>(args: &[S], adjust: impl FnOnce(&mut Command)) -> (Output, Option<RunResult>) {
    let dir = tempdir();
    let json = dir.join("run.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.arg("run").args(args).arg("--json").arg(&json).arg("--quiet").stdin(Stdio::null());
    adjust(&mut cmd);
    let out = cmd.output().expect("run loadgen");
    let result = std::fs::read(&json).ok().map(|b| serde_json::from_slice(&b).expect("--json parses as RunResult"));
    (out, result)
}

/// The words of a command line: `words("-c 4 --warmup 0")`. A value that
/// may hold a space (a path) goes in apart.
pub fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

/// `FLAG PATH`, to extend a command line of [`words`] with.
pub fn flag_path(flag: &str, path: &Path) -> [String; 2] {
    [flag.to_string(), path.display().to_string()]
}

/// A fresh, empty directory, removed when the guard is dropped
/// ([`testkit::scratch`]).
pub fn tempdir() -> Scratch {
    testkit::scratch("loadgen-test")
}

/// How many times a check that fails on elapsed time alone is tried.
///
/// A bound on elapsed time is about a hang or a stall, which repeats; a
/// loaded machine's slow moment (four engineers compiling on two cores)
/// does not. So such a check is tried again rather than loosened.
pub const TRIES: usize = 3;

/// Run `attempt` until it takes at most `bound`, at most [`TRIES`] times;
/// the last attempt's value and how long each took. The caller asserts on
/// the times, so that a run slow every time still fails.
pub fn within<T>(bound: Duration, mut attempt: impl FnMut() -> T) -> (T, Vec<Duration>) {
    let mut took = Vec::new();
    loop {
        let started = std::time::Instant::now();
        let value = attempt();
        took.push(started.elapsed());
        if took.last() <= Some(&bound) || took.len() == TRIES {
            return (value, took);
        }
    }
}

/// Exit status, stdout and stderr of a finished command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A framed echo server, one thread per connection, that corrupts one
/// ECHO payload in `every` (flipping its first byte), or none if 0.
/// Stops accepting when dropped.
pub struct FakeEcho {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
}

impl FakeEcho {
    pub fn start(every: u64) -> FakeEcho {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU64::new(0));
        let s = stop.clone();
        let answers = counter.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let counter = answers.clone();
                std::thread::spawn(move || echo_conn(conn, every, &counter));
            }
        });
        FakeEcho { addr, stop, counter }
    }

    /// Requests received (and answered) so far, on every connection.
    pub fn answered(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }
}

impl Drop for FakeEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn echo_conn(s: TcpStream, every: u64, counter: &AtomicU64) {
    serve_frames(s, |mut f, _| {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if every > 0 && n.is_multiple_of(every) && !f.payload.is_empty() {
            f.payload[0] ^= 0xFF;
        }
        f
    });
}

/// One connection of a framed server written here: read, answer every
/// whole frame with `answer(frame, when it was read)`, write the answers
/// in one write; until the client closes or an error.
fn serve_frames(mut s: TcpStream, mut answer: impl FnMut(proto::Frame, std::time::Instant) -> proto::Frame) {
    let _ = s.set_nodelay(true);
    let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 65536]);
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = std::time::Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        while let Ok(Some((f, used))) = proto::decode(&buf) {
            buf.drain(..used);
            proto::encode(&answer(f, now), &mut out);
        }
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// A server that answers every connection with `reply` bytes, then reads
/// and discards whatever comes.
pub fn fake_replying(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut chunk = [0u8; 4096];
                // Wait for the first request, then answer with garbage.
                if matches!(conn.read(&mut chunk), Ok(n) if n > 0) {
                    let _ = conn.write_all(reply);
                }
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                while matches!(conn.read(&mut chunk), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// An address where nothing listens (a port just freed).
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// How a [`FakeFramed`] server misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Fake {
    /// Answers every request on a connection with that connection's first
    /// ECHO payload (right id, stale bytes).
    StaleEcho,
    /// Answers every request with status BUSY.
    Busy,
    /// Serves connection k only from `k × step` after the first accept
    /// (a server slow to get going, like a fork per connection).
    SlowStart { step: Duration },
}

/// A framed server written here, one thread per connection, that misbehaves
/// in one way (see [`Fake`]). Its threads end with the test process.
pub fn fake_framed(how: Fake) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let began = std::time::Instant::now();
        for (k, conn) in listener.incoming().flatten().enumerate() {
            let serve_from = match how {
                Fake::SlowStart { step } => began + step * k as u32,
                _ => began,
            };
            std::thread::spawn(move || {
                std::thread::sleep(serve_from.saturating_duration_since(std::time::Instant::now()));
                serve_fake(conn, how);
            });
        }
    });
    addr
}

fn serve_fake(s: TcpStream, how: Fake) {
    let mut first_payload: Option<Vec<u8>> = None;
    serve_frames(s, |f, _| match how {
        Fake::StaleEcho => {
            let stale = first_payload.get_or_insert_with(|| f.payload.clone()).clone();
            proto::Frame::response(f.id, f.method, proto::Status::Ok, stale)
        }
        Fake::Busy => proto::Frame::response(f.id, f.method, proto::Status::Busy, vec![]),
        Fake::SlowStart { .. } => proto::Frame::response(f.id, f.method, proto::Status::Ok, f.payload),
    });
}

/// Stop a process (SIGSTOP) for `d`, then let it go on (SIGCONT).
pub fn freeze(pid: u32, d: Duration) {
    // SAFETY: signals to a child process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    std::thread::sleep(d);
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
}

/// When each request arrived, per connection (in accept order).
pub type Arrivals = Arc<std::sync::Mutex<Vec<Vec<std::time::Instant>>>>;

/// A framed echo server, one thread per connection, that notes the time
/// every request frame arrives. Its threads end with the test process.
pub fn stamping_echo() -> (SocketAddr, Arrivals) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals: Arrivals = Arc::default();
    let all = arrivals.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let k = {
                let mut a = all.lock().unwrap();
                a.push(Vec::new());
                a.len() - 1
            };
            let all = all.clone();
            std::thread::spawn(move || stamp_conn(conn, k, &all));
        }
    });
    (addr, arrivals)
}

fn stamp_conn(s: TcpStream, k: usize, arrivals: &Arrivals) {
    serve_frames(s, |f, now| {
        arrivals.lock().unwrap()[k].push(now);
        proto::Frame::response(f.id, f.method, proto::Status::Ok, f.payload)
    });
}
