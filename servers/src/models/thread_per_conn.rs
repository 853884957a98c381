//! thread-per-conn: one OS thread per connection, blocking reads and writes.
//!
//! The oldest server shape there is, and the easiest to read: the accept loop
//! spawns a thread for each connection, and that thread runs a plain
//! read-decode-answer-write loop until the client goes away. Every wait is a
//! blocking system call, so the kernel's scheduler is the event loop:
//!
//! ```text
//!   accept() ──spawn──> [conn thread] read() -> decode -> dispatch -> write()
//!            ──spawn──> [conn thread] read() -> ... DELAY = thread::sleep ...
//! ```
//!
//! - DELAY is `thread::sleep`: it blocks this connection only, so answers on
//!   one connection always go out in request order.
//! - COMPUTE runs inline, on the connection's own thread.
//! - Flow control comes for free: if the client stops reading, `write` blocks,
//!   so the thread stops reading too and memory stays bounded.
//!
//! Answer order: **in request order**. A connection's thread does one
//! request at a time, so an ECHO sent after a DELAY on the same connection
//! waits for the DELAY (head-of-line blocking; `loadgen sweep --scenario
//! multiplex` measures it).
//!
//! Where it wins: few connections that are each busy (no readiness step, one
//! read and one write per batch of requests). Where it breaks: thousands of
//! mostly idle connections cost thousands of stacks and a context switch per
//! request, and the process's thread limit (RLIMIT_NPROC, a cgroup's pids.max)
//! caps the connection count: a connection we cannot spawn a thread for is
//! refused. Stacks are kept small (`--stack-kib`, 64 by default) so that 5000
//! connections fit in tens of MB of RSS, stacks and buffers included.
//!
//! [`Connection`] and [`accept_loop`] are shared with `models::pool`, which
//! differs only in who runs a connection's loop.

use std::io::{self, Read, Write};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use proto::{Frame, Stop};

use crate::dispatch::{self, compute_reply, queue_reply, too_large_reply, Reply};
use crate::limits::{self, ACCEPT_PAUSE, BLOCKING_LIMITS, LINGER};
use crate::log::RateLimited;
use crate::stats::{OpenConnection, COUNTERS};
use crate::{net, CommonOptions, Protocol, Shutdown};

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,

    /// Stack size of each connection's thread, in KiB. Small stacks let
    /// thousands of threads fit; the serving loop needs little.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..))]
    pub stack_kib: u32,
}

/// Read at least this much at a time (more when a large frame is partial);
/// `limits::BLOCKING_LIMITS` says why it is small.
const READ_ROOM: usize = BLOCKING_LIMITS.read_room.bytes();

static ACCEPT_EXHAUSTED: RateLimited = RateLimited::new("accept", Duration::from_secs(1));
static SPAWN_FAILED: RateLimited = RateLimited::new("thread-per-conn: refusing a connection", Duration::from_secs(1));

pub fn run(listener: TcpListener, options: &Options, shutdown: Shutdown) -> io::Result<()> {
    let stack = options.stack_kib as usize * 1024;
    accept_loop(&listener, &shutdown, |stream| {
        let conn = Connection::new(stream, &options.common);
        // On failure the closure, and with it the connection, is dropped:
        // the client sees a close, the counters see it closed.
        let spawned = thread::Builder::new().name("conn".into()).stack_size(stack).spawn(move || conn.serve());
        if let Err(e) = spawned {
            COUNTERS.error();
            SPAWN_FAILED.log(format_args!("cannot spawn a thread: {e}"));
        }
    })
}

/// Accept connections until `shutdown`, handing each to `handle`.
///
/// Out of descriptors (EMFILE/ENFILE), every accept fails at once until a
/// connection closes, so we sleep instead of spinning. Errors that concern
/// one connection only are skipped. Shutdown wakes the blocked `accept` by
/// connecting to our own address.
pub fn accept_loop(listener: &TcpListener, shutdown: &Shutdown, mut handle: impl FnMut(TcpStream)) -> io::Result<()> {
    let wake = loopback_of(listener.local_addr()?);
    shutdown.on_trigger(move || {
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    });
    loop {
        let accepted = listener.accept();
        if shutdown.is_triggered() {
            return Ok(());
        }
        match accepted {
            // Past --max-connections: dropped, so closed at once.
            Ok((stream, _)) if !COUNTERS.admit() => drop(stream),
            Ok((stream, _)) => handle(stream),
            Err(e) if net::is_resource_exhaustion(&e) => {
                ACCEPT_EXHAUSTED.log(format_args!("{e}; retrying in {ACCEPT_PAUSE:?}"));
                thread::sleep(ACCEPT_PAUSE);
            }
            Err(e) if net::is_per_connection(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Where to connect to reach a listener bound to `addr` (0.0.0.0 -> 127.0.0.1).
fn loopback_of(mut addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    addr
}

/// One client connection served with blocking calls.
///
/// The time limits are the kernel's: SO_SNDTIMEO (`--write-timeout-ms`)
/// ends a `write` that moves no byte for that long, so a client that never
/// reads cannot pin the thread; SO_RCVTIMEO (`--partial-frame-timeout-ms`)
/// is set only while a frame is partial, so an idle connection waits for
/// its next frame as long as it likes.
pub struct Connection {
    stream: TcpStream,
    protocol: Protocol,
    max_frame: u32,
    partial_frame_timeout: Duration,
    /// SO_RCVTIMEO is set now (a frame is partial).
    read_timeout_set: bool,
    /// Bytes read but not yet decoded (a partial frame, between reads).
    buf: Vec<u8>,
    /// Encoded responses not yet written.
    out: Vec<u8>,
    /// A write that failed while answering (before a DELAY's sleep).
    failed: Option<io::Error>,
    _open: OpenConnection,
}

impl Connection {
    /// Wrap an accepted stream; counts the connection as accepted.
    pub fn new(stream: TcpStream, common: &CommonOptions) -> Connection {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(common.write_timeout()));
        Connection {
            stream,
            protocol: common.protocol,
            max_frame: common.max_frame,
            partial_frame_timeout: common.partial_frame_timeout(),
            read_timeout_set: false,
            buf: Vec::new(),
            out: Vec::new(),
            failed: None,
            _open: OpenConnection::accepted(),
        }
    }

    /// Serve the connection until the client closes it or an error ends it.
    /// I/O errors (a reset, say) only end this connection, so they are not
    /// reported anywhere.
    pub fn serve(mut self) {
        let result = match self.protocol {
            Protocol::Framed => self.handle_framed(),
            Protocol::Raw => self.handle_raw(),
        };
        // SO_SNDTIMEO and SO_RCVTIMEO end a call with EAGAIN; the only read
        // that has a timeout is one of a partial frame (`read_more`).
        if let Err(e) = result {
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                match e.get_ref().is_some_and(|inner| inner.is::<PartialFrameStalled>()) {
                    true => COUNTERS.partial_frame_timeout(),
                    false => COUNTERS.write_timeout(),
                }
            }
        }
    }

    /// Read, answer every whole frame the read completed, write the answers
    /// in one go, repeat. TOO_LARGE is answered, then the connection closed.
    fn handle_framed(&mut self) -> io::Result<()> {
        loop {
            let n = self.read_more()?;
            if n == 0 {
                if !self.buf.is_empty() {
                    COUNTERS.error(); // closed mid-frame: dropped without an answer
                }
                return Ok(());
            }
            let buf = mem::take(&mut self.buf);
            let done = proto::answer_frames(&buf, self.max_frame, self);
            self.buf = buf;
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if let Stop::TooLarge(e) = done.stop {
                queue_reply(&too_large_reply(&e), &mut self.out);
                self.flush()?;
                return self.linger_close();
            }
            self.buf.drain(..done.used);
            limits::shrink_if_idle(&mut self.buf);
            self.flush()?;
        }
    }

    /// Raw mode: write back whatever arrives, one answer per read.
    fn handle_raw(&mut self) -> io::Result<()> {
        self.buf.resize(READ_ROOM, 0);
        loop {
            let n = read_retrying(&mut self.stream, &mut self.buf)?;
            if n == 0 {
                return Ok(());
            }
            COUNTERS.read(n);
            self.stream.write_all(&self.buf[..n])?;
            COUNTERS.wrote(n);
            COUNTERS.answered(1);
            dispatch::debug_slowdown();
        }
    }

    /// Append one read to `buf`. While a large frame is partial the read
    /// has more room than [`READ_ROOM`], so a 1 MiB echo takes a dozen
    /// reads, not hundreds; but never more than has already arrived.
    /// `resize` zero-fills the room, which makes it resident, so room sized
    /// to the header's announcement would let a client that announces
    /// 1 MiB and sends one byte pin 1 MiB: this way the buffer at most
    /// doubles per read, and memory follows the bytes received.
    fn read_more(&mut self) -> io::Result<usize> {
        let have = self.buf.len();
        if self.read_timeout_set != (have > 0) {
            self.read_timeout_set = have > 0;
            self.stream.set_read_timeout(self.read_timeout_set.then_some(self.partial_frame_timeout))?;
        }
        let frame_rest = proto::frame_len(&self.buf, self.max_frame).saturating_sub(have);
        self.buf.resize(have + frame_rest.min(have).max(READ_ROOM), 0);
        let read = read_retrying(&mut self.stream, &mut self.buf[have..]);
        self.buf.truncate(have + *read.as_ref().unwrap_or(&0));
        COUNTERS.read(*read.as_ref().unwrap_or(&0));
        read.map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, PartialFrameStalled)
            }
            _ => e,
        })
    }

    /// Write every queued response; blocks while the client is not reading.
    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.out)?;
        COUNTERS.wrote(self.out.len());
        self.out.clear();
        limits::shrink_if_idle(&mut self.out);
        Ok(())
    }

    /// Close after TOO_LARGE without losing the answers. Closing a socket
    /// with unread input makes the kernel send a reset and throw away what
    /// the client has not received yet, answers included. So: send our FIN
    /// after the answers, then read and discard until the client closes
    /// too, for at most [`LINGER`] (as HTTP servers' lingering close).
    fn linger_close(&mut self) -> io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Write)?;
        let deadline = Instant::now() + LINGER;
        self.buf.resize(READ_ROOM, 0);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.stream.set_read_timeout(Some(left))?;
            match read_retrying(&mut self.stream, &mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                // LINGER is over: a plain close, not a stall.
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// What thread-per-conn does with each request `proto::answer_frames`
/// decodes: everything on this thread, in order; a DELAY sleeps.
impl proto::Answer for Connection {
    /// Only a failed write stops the batch (the error ends the connection).
    fn full(&self) -> bool {
        self.failed.is_some()
    }

    fn answer(&mut self, req: Frame) {
        match dispatch::handle_request(req) {
            Reply::Now(frame) => queue_reply(&frame, &mut self.out),
            Reply::After { delay, frame } => {
                // Send what is ready before we block, then wait in line.
                if let Err(e) = self.flush() {
                    self.failed = Some(e);
                    return;
                }
                thread::sleep(delay);
                queue_reply(&frame, &mut self.out);
            }
            Reply::Compute { id, rounds } => queue_reply(&compute_reply(id, rounds), &mut self.out),
        }
    }
}

/// A read of a partial frame timed out (`--partial-frame-timeout-ms`): the
/// error `read_more` returns, so that `serve` counts it apart from a write.
#[derive(Debug, thiserror::Error)]
#[error("a partial frame stopped arriving")]
struct PartialFrameStalled;

fn read_retrying(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
