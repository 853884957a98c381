//! A blocking framed client with read timeouts: send frames or raw
//! bytes, read the answers (waiting at most so long, where a test counts
//! what it did not get).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use proto::{Frame, Method, Stats};

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
