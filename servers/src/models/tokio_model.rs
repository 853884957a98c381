//! tokio: the reference peer. tokio's multi-thread runtime, one task per
//! connection, the way most Rust network services are written today.
//!
//! The runtime runs `--workers` threads (by default one per CPU this process
//! may run on; `available_parallelism` follows CPU affinity), each with an
//! epoll-driven scheduler, and steals tasks between them. A connection is a
//! task that `select!`s over three things at once:
//!
//! ```text
//!   read more requests   (only while under the flow-control limits)
//!   write queued answers (only while some are queued)
//!   answers that finish later: DELAY timers, long COMPUTEs
//! ```
//!
//! - DELAY is a `tokio::time::sleep` in a task of the connection's
//!   `JoinSet`: the connection keeps reading and answering meanwhile, so a
//!   DELAY then an ECHO are answered ECHO first (out of order, by id).
//! - COMPUTE runs inline up to [`INLINE_ROUNDS`] rounds (tens of
//!   microseconds), and on `spawn_blocking` beyond. Inline is what most
//!   tokio code does and costs nothing extra, but a long compute blocks the
//!   worker thread and every task queued on it (tokio's guidance is at most
//!   10-100 us between awaits). `spawn_blocking` keeps the workers free but
//!   costs a hand-off to another thread and a wake-up back, which on this
//!   machine costs more than a short compute itself. So: short inline, long
//!   on the blocking pool, the long answers arriving out of order.
//! - Flow control (`limits::TOKIO_LIMITS`): a connection stops reading while its
//!   output limit of answer bytes waits for the client to read them, or its
//!   pending limit of answers is still being delayed or computed, and reads
//!   again once under them. The limits are checked per
//!   frame, as mio-single does, not per read: one read can hold 65k STATS
//!   requests (1 MiB after a large ECHO grew the buffer), whose answers are
//!   45 MB; past a limit the rest wait, unparsed, in `buf`.
//! - Time limits (`stall`): a tick every `Timeouts::period`, polled only
//!   while a frame is partial or answers are unsent, closes a connection
//!   whose bytes stopped for longer than `--partial-frame-timeout-ms` or
//!   `--write-timeout-ms`.
//!
//! Answer order: **out of order** for DELAY and long COMPUTEs (they finish
//! in the connection's `JoinSet` while later requests are answered); ECHO
//! and short COMPUTEs are answered as they are read.
//!
//! Where it wins: many connections on few threads, with code that still reads
//! top to bottom. Where it costs: a task wake-up, work stealing and cross-CPU
//! wakes per request that a hand-written event loop (mio-single) avoids.

use std::io;
use std::mem;
use std::sync::Arc;
use std::time::Duration;

use proto::{Frame, Stop};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::dispatch::{self, compute_reply, queue_reply, too_large_reply, Reply};
use crate::limits::{self, FlowControl, ACCEPT_PAUSE, LINGER, TOKIO_LIMITS};
use crate::log::RateLimited;
use crate::stall::{Timeouts, Watch};
use crate::stats::{OpenConnection, COUNTERS};
use crate::{net, CommonOptions, Protocol, Shutdown};

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,

    /// Runtime worker threads [default: the CPUs this process may run on].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: Option<u32>,
}

/// COMPUTEs up to this many rounds (~20-50 us here) run on the worker.
pub const INLINE_ROUNDS: u32 = 20_000;
/// Flow control, from the limits table.
const FLOW: FlowControl = match TOKIO_LIMITS.flow {
    Some(flow) => flow,
    None => panic!("the tokio model needs flow control"),
};
/// Read at least this much at a time (more when a large frame is partial).
const READ_ROOM: usize = TOKIO_LIMITS.read_room.bytes();

static ACCEPT_EXHAUSTED: RateLimited = RateLimited::new("accept", Duration::from_secs(1));

pub fn run(listener: std::net::TcpListener, options: &Options, shutdown: Shutdown) -> io::Result<()> {
    let workers = match options.workers {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("tokio-worker")
        .enable_all()
        .build()?;
    // notify_one keeps a permit if nobody waits yet, so no trigger is lost.
    let stop = Arc::new(Notify::new());
    let notify = stop.clone();
    shutdown.on_trigger(move || notify.notify_one());

    listener.set_nonblocking(true)?;
    let common = options.common.clone();
    let result = runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        loop {
            tokio::select! {
                _ = stop.notified() => return Ok(()),
                accepted = listener.accept() => match accepted {
                    // Past --max-connections: dropped, so closed at once.
                    Ok((stream, _)) if !COUNTERS.admit() => drop(stream),
                    Ok((stream, _)) => {
                        let conn = Connection::new(&stream, &common);
                        tokio::spawn(conn.serve(stream));
                    }
                    Err(e) if net::is_resource_exhaustion(&e) => {
                        // The listener stays readable while connections wait,
                        // so retrying at once would spin.
                        ACCEPT_EXHAUSTED.log(format_args!("{e}; retrying in {ACCEPT_PAUSE:?}"));
                        tokio::time::sleep(ACCEPT_PAUSE).await;
                    }
                    Err(e) if net::is_per_connection(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    });
    // Connection tasks are dropped at their next await; don't wait for them.
    runtime.shutdown_background();
    result
}

/// What a connection does with its input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Decode and answer requests.
    Requests,
    /// After TOO_LARGE: the next frame cannot be found, so read and drop.
    Discard,
    /// The client sent its FIN.
    Closed,
}

/// One connection's state; the socket itself is split and owned by `serve`.
struct Connection {
    protocol: Protocol,
    max_frame: u32,
    /// Bytes read but not yet decoded.
    buf: Vec<u8>,
    /// Encoded answers not yet written.
    out: Vec<u8>,
    /// Answers that finish later: DELAY timers and long COMPUTEs.
    later: JoinSet<Frame>,
    /// `buf` holds whole requests that flow control kept from parsing.
    held: bool,
    timeouts: Timeouts,
    /// Whether bytes arrive and leave, for the stall checks.
    reading: Watch,
    writing: Watch,
    _open: OpenConnection,
}

impl Connection {
    fn new(stream: &TcpStream, common: &CommonOptions) -> Connection {
        let _ = stream.set_nodelay(true);
        Connection {
            protocol: common.protocol,
            max_frame: common.max_frame,
            buf: Vec::new(),
            out: Vec::new(),
            later: JoinSet::new(),
            held: false,
            timeouts: Timeouts::of(common),
            reading: Watch::default(),
            writing: Watch::default(),
            _open: OpenConnection::accepted(),
        }
    }

    /// The connection's task. I/O errors end this connection only.
    async fn serve(mut self, stream: TcpStream) {
        let _ = match self.protocol {
            Protocol::Framed => self.handle_framed(stream).await,
            Protocol::Raw => self.handle_raw(stream).await,
        };
    }

    async fn handle_framed(&mut self, stream: TcpStream) -> io::Result<()> {
        let (mut rd, mut wr) = stream.into_split();
        let mut input = Input::Requests;
        // The stall checks' tick; its first completes at once, which only
        // resets the watches.
        let mut stall_check = tokio::time::interval(self.timeouts.period());
        stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if input != Input::Requests && self.later.is_empty() && self.out.is_empty() && !self.held {
                wr.shutdown().await?;
                if input == Input::Discard {
                    self.linger(&mut rd).await;
                }
                return Ok(());
            }
            // Flow control: no reading or parsing at the limits.
            let under_limits = !FLOW.stops_reading(self.out.len(), self.later.len());
            if under_limits && self.held {
                // Under the limits again: answer the requests held back
                // first (also after the client's FIN: they arrived before it).
                if !self.handle_frames() {
                    input = Input::Discard;
                    self.buf.clear();
                }
                continue;
            }
            let can_read = match input {
                Input::Requests => under_limits,
                Input::Discard => true,
                Input::Closed => false,
            };
            if can_read {
                self.reserve_read_room();
            }
            let frame_started = can_read && input == Input::Requests && !self.buf.is_empty();
            let watching = frame_started || !self.out.is_empty();
            tokio::select! {
                read = rd.read_buf(&mut self.buf), if can_read => {
                    let n = read?;
                    COUNTERS.read(n);
                    self.reading.progress();
                    if n == 0 {
                        if input == Input::Requests && !self.buf.is_empty() {
                            COUNTERS.error(); // closed mid-frame: dropped without an answer
                        }
                        input = Input::Closed;
                    } else if input == Input::Discard || !self.handle_frames() {
                        input = Input::Discard;
                        self.buf.clear();
                    }
                }
                wrote = wr.write(&self.out), if !self.out.is_empty() => {
                    let n = wrote?;
                    COUNTERS.wrote(n);
                    self.writing.progress();
                    self.out.drain(..n);
                    limits::shrink_if_idle(&mut self.out);
                }
                Some(done) = self.later.join_next(), if !self.later.is_empty() => {
                    queue_reply(&done.map_err(io::Error::other)?, &mut self.out);
                }
                _ = stall_check.tick(), if watching => {
                    if self.writing.stalled(!self.out.is_empty(), self.timeouts.write_periods()) {
                        COUNTERS.write_timeout();
                        return Ok(());
                    }
                    if self.reading.stalled(frame_started, self.timeouts.partial_frame_periods()) {
                        COUNTERS.partial_frame_timeout();
                        return Ok(());
                    }
                }
            }
        }
    }

    /// After TOO_LARGE and our FIN: read and discard until the client closes
    /// too, for at most [`LINGER`]. Closing with unread input would make the
    /// kernel send a reset and throw away answers the client has not yet
    /// received (the lingering close of HTTP servers).
    async fn linger(&mut self, rd: &mut OwnedReadHalf) {
        let drain = async {
            loop {
                self.buf.clear();
                self.buf.reserve(READ_ROOM);
                if !matches!(rd.read_buf(&mut self.buf).await, Ok(n) if n > 0) {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }

    /// Answer or start every whole frame in `buf` (`proto::answer_frames`),
    /// until flow control says stop (then the rest is `held`). Returns
    /// false after TOO_LARGE: that answer is the connection's last.
    fn handle_frames(&mut self) -> bool {
        let buf = mem::take(&mut self.buf);
        let done = proto::answer_frames(&buf, self.max_frame, self);
        self.buf = buf;
        self.buf.drain(..done.used);
        limits::shrink_if_idle(&mut self.buf);
        self.held = done.stop == Stop::Full;
        match done.stop {
            Stop::TooLarge(e) => {
                queue_reply(&too_large_reply(&e), &mut self.out);
                false
            }
            Stop::Partial { .. } | Stop::Full => true,
        }
    }
}

/// What tokio does with each request `proto::answer_frames` decodes: a
/// DELAY or a long COMPUTE becomes a task of the connection's `JoinSet`.
impl proto::Answer for Connection {
    fn full(&self) -> bool {
        FLOW.stops_reading(self.out.len(), self.later.len())
    }

    fn answer(&mut self, req: Frame) {
        match dispatch::handle_request(req) {
            Reply::Now(frame) => queue_reply(&frame, &mut self.out),
            Reply::After { delay, frame } => {
                self.later.spawn(async move {
                    tokio::time::sleep(delay).await;
                    frame
                });
            }
            Reply::Compute { id, rounds } if rounds <= INLINE_ROUNDS => {
                queue_reply(&compute_reply(id, rounds), &mut self.out)
            }
            Reply::Compute { id, rounds } => {
                self.later.spawn_blocking(move || compute_reply(id, rounds));
            }
        }
    }
}

impl Connection {
    /// Make room for the next read: the rest of a partial frame whose header
    /// has arrived, or at least READ_ROOM.
    fn reserve_read_room(&mut self) {
        let frame_rest = proto::frame_len(&self.buf, self.max_frame).saturating_sub(self.buf.len());
        self.buf.reserve(frame_rest.max(READ_ROOM));
    }

    /// Raw mode: write back whatever arrives, one answer per read. Writing
    /// before reading again is the flow control.
    async fn handle_raw(&mut self, mut stream: TcpStream) -> io::Result<()> {
        let mut chunk = vec![0u8; READ_ROOM];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            COUNTERS.read(n);
            stream.write_all(&chunk[..n]).await?;
            COUNTERS.wrote(n);
            COUNTERS.answered(1);
            dispatch::debug_slowdown();
        }
    }
}
