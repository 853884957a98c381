//! A real `servers` process on 127.0.0.1:0, started from the binary the
//! test run built, and waited for until it prints its ready line.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use proto::Stats;

use crate::Client;

/// The `servers` binary of this build: beside the test binary's directory
/// (`target/<profile>/deps/..`), or in `$CARGO_TARGET_DIR/debug` or
/// `../target/debug`.
pub fn servers_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let beside = exe.parent().and_then(Path::parent).map(|dir| dir.join("servers"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let candidates: Vec<PathBuf> = beside.into_iter().chain([target.join("debug/servers")]).collect();
        candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
            panic!(
                "the servers binary is missing (looked at {candidates:?}): run `cargo build -p servers` first \
                 (or `cargo build --workspace --bins && cargo test --workspace`)"
            )
        })
    })
    .clone()
}

/// A running server process; SIGKILLed on drop if still running. Its
/// stderr is kept ([`Server::log`]) and printed if the test fails.
pub struct Server {
    pub child: Child,
    pub model: String,
    pub data: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub ready_line: String,
    /// What the server wrote to stderr so far.
    pub log: StderrLog,
}

impl Server {
    /// `servers MODEL --addr 127.0.0.1:0 EXTRA...`, waiting for the ready line.
    pub fn start(model: &str, extra: &[&str]) -> Server {
        Server::start_with(model, extra, |_| {})
    }

    /// As [`Server::start`], letting the caller adjust the command first
    /// (resource limits through `pre_exec`, say).
    pub fn start_with(model: &str, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        Server::start_program(&servers_bin(), model, extra, adjust)
    }

    /// As [`Server::start`], pinned to `cpus` as the sweep pins it.
    pub fn start_pinned(model: &str, extra: &[&str], cpus: &[usize]) -> Server {
        Server::start_with(model, extra, |cmd| loadgen::cpus::confine(cmd, cpus, libc::SIGKILL))
    }

    /// As [`Server::start_with`], from a copy of the binary at `program`.
    pub fn start_program(program: &Path, model: &str, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = Command::new(program);
        cmd.arg(model).args(["--addr", "127.0.0.1:0"]).args(extra);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn servers binary");
        let log = StderrLog::default();
        if let Some(stderr) = child.stderr.take() {
            log.follow(stderr);
        }
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read ready line");
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in ready line {line:?}; stderr: {}", log.text()))
                .to_string()
        };
        assert!(line.starts_with("listening "), "ready line: {line:?}; stderr: {}", log.text());
        let data = field("data=").parse().unwrap();
        let admin = field("admin=").parse().ok();
        Server { child, model: model.to_string(), data, admin, ready_line: line.trim().to_string(), log }
    }

    /// As [`Server::start_with`], also handing back the server's stderr
    /// so that a test can check what the server logged.
    pub fn start_logged(model: &str, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> (Server, StderrLog) {
        Server::start_program_logged(&servers_bin(), model, extra, adjust)
    }

    /// As [`Server::start_logged`], from the binary at `program`.
    pub fn start_program_logged(
        program: &Path,
        model: &str,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> (Server, StderrLog) {
        let server = Server::start_program(program, model, extra, adjust);
        let log = server.log.clone();
        (server, log)
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.data)
    }

    /// STATS through the admin port.
    pub fn stats(&self) -> Stats {
        let mut c = Client::connect(self.admin.expect("server has no admin port"));
        c.stats()
    }

    /// Poll STATS until `done` holds or `within` passes: whether it held,
    /// and the last snapshot.
    pub fn stats_within(&self, within: Duration, done: impl Fn(&Stats) -> bool) -> (bool, Stats) {
        let deadline = Instant::now() + within;
        loop {
            let s = self.stats();
            if done(&s) || Instant::now() >= deadline {
                return (done(&s), s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Poll STATS until `done` holds (at most 10 s, then panic naming
    /// `what`); the last snapshot.
    pub fn stats_until(&self, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
        let (ok, s) = self.stats_within(Duration::from_secs(10), done);
        assert!(ok, "{}: still not {what} after 10 s: {s:?}", self.model);
        s
    }

    /// SIGTERM, then the exit status (waiting at most `limit`).
    pub fn terminate(mut self, limit: Duration) -> Option<ExitStatus> {
        // SAFETY: a signal to a child process this test started.
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

    /// SIGKILL, and wait for the process to end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Still running (not exited, not killed by a signal)?
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How the process ended, if it did.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.log.text();
            if !text.is_empty() {
                eprintln!("--- {} (pid {}) stderr:\n{}", self.model, self.child.id(), text.trim_end());
            }
        }
    }
}

/// A server's stderr, collected by a thread as it is written.
#[derive(Clone, Default)]
pub struct StderrLog(Arc<Mutex<String>>);

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

    /// Append whatever `stderr` yields, from a thread, until it closes.
    fn follow(&self, mut stderr: impl Read + Send + 'static) {
        let sink = self.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.0.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
    }
}
