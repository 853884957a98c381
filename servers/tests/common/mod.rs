//! Test harness: start a real `servers` binary on 127.0.0.1:0, talk to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::{Frame, Method, Stats};

/// Every model the binary was built with, by subcommand name.
pub fn models() -> Vec<&'static str> {
    let mut m = vec!["thread-per-conn", "pool", "mio-single", "mio-multi", "tokio"];
    if cfg!(feature = "libevent") {
        m.push("libevent");
    }
    m
}

/// The event-loop models, which may answer out of order.
pub fn is_event_loop(model: &str) -> bool {
    matches!(model, "mio-single" | "mio-multi" | "tokio" | "libevent")
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_servers"));
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
