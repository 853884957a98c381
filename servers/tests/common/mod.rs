//! Test harness: start a real `servers` binary on 127.0.0.1:0, talk to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proto::{Frame, Method, Stats};

/// Every model the servers binary offers, by subcommand name, in reading
/// order: the first field of each line of `servers models`. Read from the
/// binary itself, so that a model added to it and to no test shows up
/// (`every_model_is_in_the_suite`, `every_model_is_hardened`).
pub fn models() -> Vec<&'static str> {
    static MODELS: OnceLock<Vec<String>> = OnceLock::new();
    let models = MODELS.get_or_init(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_servers")).arg("models").output().expect("run servers models");
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "servers models failed: {}", String::from_utf8_lossy(&out.stderr));
        let models: Vec<String> = list.lines().filter_map(|l| l.split('\t').next()).map(String::from).collect();
        assert!(!models.is_empty(), "`servers models` lists no model");
        models
    });
    models.iter().map(String::as_str).collect()
}

/// The subcommands a clap help text lists: the first word of each entry
/// of its `Commands:` section (indented two spaces; a wrapped description
/// is indented further), without `help`.
pub fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// The name a model's tests go by in a test path (`thread_per_conn`).
pub fn test_name(model: &str) -> String {
    model.replace('-', "_")
}

/// Every test of the running test binary (`module::test`), ignored ones
/// included: what the binary itself prints for `--list`.
pub fn listed_tests() -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(&exe).arg("--list").output().expect("run the test binary with --list");
    assert!(out.status.success(), "{} --list failed", exe.display());
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.strip_suffix(": test")).map(String::from).collect()
}

/// The event-loop models, which may answer out of order.
pub fn is_event_loop(model: &str) -> bool {
    matches!(model, "mio-single" | "mio-multi" | "tokio" | "uring" | "libevent")
}

/// A running server process; SIGKILLed on drop if still running.
pub struct Server {
    pub child: Child,
    pub model: String,
    pub data: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub ready_line: String,
}

impl Server {
    /// `servers MODEL --addr 127.0.0.1:0 EXTRA...`, waiting for the ready line.
    pub fn start(model: &str, extra: &[&str]) -> Server {
        Server::start_with(model, extra, |_| {})
    }

    /// As [`Server::start`], letting the caller adjust the command first
    /// (resource limits through `pre_exec`, say).
    pub fn start_with(model: &str, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        Server::start_program(Path::new(env!("CARGO_BIN_EXE_servers")), model, extra, adjust)
    }

    /// As [`Server::start_with`], from a copy of the binary at `program`.
    pub fn start_program(program: &Path, model: &str, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = Command::new(program);
        cmd.arg(model).args(["--addr", "127.0.0.1:0"]).args(extra);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn servers binary");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read ready line");
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in ready line {line:?}"))
                .to_string()
        };
        assert!(line.starts_with("listening "), "ready line: {line:?}");
        let data = field("data=").parse().unwrap();
        let admin = field("admin=").parse().ok();
        Server { child, model: model.to_string(), data, admin, ready_line: line.trim().to_string() }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.data)
    }

    /// STATS through the admin port.
    pub fn stats(&self) -> Stats {
        let mut c = Client::connect(self.admin.expect("server has no admin port"));
        c.stats()
    }

    /// SIGTERM, then the exit status (waiting at most `limit`).
    pub fn terminate(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking framed client with a read timeout, for tests.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, buf: Vec::new() }
    }

    pub fn send(&mut self, f: &Frame) {
        let mut out = Vec::new();
        proto::encode(f, &mut out);
        self.stream.write_all(&out).expect("write frame");
    }

    pub fn send_bytes(&mut self, b: &[u8]) {
        self.stream.write_all(b).expect("write bytes");
    }

    /// The next response, or `None` if the server closed the connection.
    pub fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((f, used)) = proto::decode_with_limit(&self.buf, u32::MAX).expect("decode response") {
                self.buf.drain(..used);
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read response: {e}"),
            }
        }
    }

    pub fn call(&mut self, f: &Frame) -> Frame {
        self.send(f);
        self.recv().expect("server closed the connection instead of answering")
    }

    pub fn stats(&mut self) -> Stats {
        let r = self.call(&Frame::request(u64::MAX, Method::Stats, vec![]));
        assert_eq!(r.status, 0, "STATS status");
        Stats::from_json(&r.payload).expect("STATS payload is JSON")
    }
}

pub fn echo(id: u64, payload: &[u8]) -> Frame {
    Frame::request(id, Method::Echo, payload.to_vec())
}
pub fn delay(id: u64, micros: u32) -> Frame {
    Frame::request(id, Method::Delay, micros.to_be_bytes().to_vec())
}
pub fn compute(id: u64, rounds: u32) -> Frame {
    Frame::request(id, Method::Compute, rounds.to_be_bytes().to_vec())
}

// ------------------------------------------------------------------
// Additions for the hardening tests (servers/tests/hardening.rs).

/// What a bounded wait for the next response saw.
#[derive(Debug)]
pub enum Got {
    Frame(Frame),
    /// The server closed (FIN or RST).
    Closed,
    /// Nothing within the time given.
    Nothing,
}

impl Client {
    /// Wrap a connected stream (for connects that may fail, or raw sockets
    /// set up first), with the same timeouts as [`Client::connect`].
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = stream.set_nodelay(true);
        Client { stream, buf: Vec::new() }
    }

    /// The next response, waiting at most `within` (zero: only what has
    /// already arrived). Never panics on a timeout or a reset, so that a
    /// test can count what it did not get.
    pub fn try_recv(&mut self, within: Duration) -> Got {
        let deadline = Instant::now() + within;
        let mut tried = false;
        let got = loop {
            if let Ok(Some((f, used))) = proto::decode_with_limit(&self.buf, u32::MAX) {
                self.buf.drain(..used);
                break Got::Frame(f);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() && tried {
                break Got::Nothing;
            }
            tried = true;
            if left.is_zero() {
                self.stream.set_nonblocking(true).unwrap();
            } else {
                self.stream.set_read_timeout(Some(left)).unwrap();
            }
            let mut chunk = [0u8; 65536];
            let read = self.stream.read(&mut chunk);
            if left.is_zero() {
                self.stream.set_nonblocking(false).unwrap();
            }
            match read {
                Ok(0) => break Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break Got::Closed,
            }
        };
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(20)));
        got
    }
}

/// The server's stderr, collected by a thread as it is written.
#[derive(Clone, Default)]
pub struct StderrLog(std::sync::Arc<std::sync::Mutex<String>>);

impl StderrLog {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lines that contain any of `needles` (case-insensitive).
    pub fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                needles.iter().any(|n| l.contains(&n.to_ascii_lowercase()))
            })
            .map(str::to_string)
            .collect()
    }
}

impl Server {
    /// As [`Server::start_with`], with the server's stderr captured rather
    /// than inherited, so that a test can check what the server logged.
    pub fn start_logged(model: &str, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> (Server, StderrLog) {
        Server::start_program_logged(Path::new(env!("CARGO_BIN_EXE_servers")), model, extra, adjust)
    }

    /// As [`Server::start_logged`], from the binary at `program`.
    pub fn start_program_logged(
        program: &Path,
        model: &str,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> (Server, StderrLog) {
        let mut server = Server::start_program(program, model, extra, |cmd| {
            cmd.stderr(Stdio::piped());
            adjust(cmd);
        });
        let log = StderrLog::default();
        let mut stderr = server.child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.0.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        (server, log)
    }

    /// Still running (not exited, not killed by a signal)?
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How the process ended, if it did.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Open file descriptors of process `pid` (entries of /proc/PID/fd).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Threads of process `pid` now (the `Threads:` line of /proc/PID/status).
pub fn thread_count(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// utime + stime of process `pid`, in microseconds (from /proc/PID/stat).
pub fn cpu_micros(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000 / hz.max(1)
}

/// The exact command that reruns one hardening test, with the features
/// and profile this test binary was built with.
pub fn hardening_command(case: &str, model: &str) -> String {
    let mut cmd = String::from("cargo test -p servers");
    if !cfg!(debug_assertions) {
        cmd.push_str(" --release");
    }
    if cfg!(feature = "libevent") {
        cmd.push_str(" --features libevent");
    }
    format!("{cmd} --test hardening -- --include-ignored --exact {case}::{}", model.replace('-', "_"))
}

/// With IOMODELS_RELIABILITY_DIR set, write one (case, model) outcome as
/// `DIR/CASE__MODEL.json`, the record `loadgen reliability DIR` renders.
/// Without it, do nothing. Never panics: a test records before asserting,
/// and a failure to record must not hide the test's own outcome.
pub fn record_reliability(case: &str, model: &str, survived: bool, answers_lost: u64, detail: &str, command: &str) {
    let Some(dir) = std::env::var_os("IOMODELS_RELIABILITY_DIR") else { return };
    let dir = std::path::PathBuf::from(dir);
    let record = serde_json::json!({
        "case": case,
        "model": model,
        "survived": survived,
        "answers_lost": answers_lost,
        "detail": detail,
        "command": command,
    });
    let path = dir.join(format!("{case}__{model}.json"));
    let tmp = dir.join(format!(".{case}__{model}.json.tmp"));
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&tmp, serde_json::to_vec_pretty(&record).unwrap()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        eprintln!("cannot record the outcome in {}: {e}", path.display());
    }
}
