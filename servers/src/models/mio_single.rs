//! mio-single: one thread, one `mio::Poll`, every socket.
//!
//! How it works: the only thread waits in `epoll_wait` for any socket to
//! become ready, then does all it can on each ready socket without blocking
//! (accept until `WouldBlock`; read, answer, write), and waits again. A
//! DELAY blocks nothing: its answer goes on a timer heap, and the poll
//! timeout is the time left until the earliest deadline. COMPUTE runs
//! inline, on the loop: that is this model's lesson, since for as long as a
//! long COMPUTE runs *no* connection is read or written.
//!
//! Answer order: **out of order** for DELAY; ECHO and COMPUTE are answered
//! as they are read.
//!
//! Trade-off. Wins: one thread serves thousands of connections, idle or
//! slow ones cost a few hundred bytes each, there are no locks and no
//! context switches between connections, and pipelined requests are read,
//! answered and written in batches. Breaks: it uses one core, and any
//! CPU-heavy request stalls everybody.
//!
//! ## Reading this file
//!
//! Top-down, as mio's `examples/tcp_server.rs`: [`run`] (the loop, which
//! accepts through `accept::Acceptor`), [`ConnTable`] (events to connections), then
//! [`Connection`], whose [`Connection::drive`] does all that can be done on
//! one socket without waiting. `mio_multi` runs this same connection code
//! on several loops, with COMPUTE on workers ([`ComputeOn`]), so that the two differ in
//! how threads and loops are arranged alone.
//!
//! One ECHO: epoll reports the socket readable; [`ConnTable::handle_event`]
//! notes it ([`Unread::Data`]) and drives the connection: one `read` into
//! the loop's 64 KiB buffer returns the 80 bytes, fewer than asked, so no
//! second read is made just to hear `WouldBlock` ([`Connection::read`]);
//! `proto::answer_frames` decodes the frame and [`Answering`] encodes the
//! answer onto `output`; [`Connection::flush`] writes it; the interest is
//! still READABLE, so [`Connection::settle_interest`] makes no syscall. One
//! ECHO costs one `read`, one `write`, and a share of an `epoll_wait`.
//!
//! ## The rules of edge-triggered readiness
//!
//! mio registers sockets edge-triggered (`EPOLLET`): an event says
//! "something changed" once, and does not repeat while data sits unread.
//!
//! - Read until `WouldBlock`; write until everything is out or `WouldBlock`.
//!   A connection remembers what the socket may still hold ([`Unread`]) and
//!   whether it may take more (`may_write`): no new edge comes for old data.
//! - Interest: READABLE while we want input, WRITABLE only while output
//!   waits; `reregister` costs a syscall, so only when the set changes.
//! - Flow control (`limits::MIO_LIMITS`): past the output limit of unsent
//!   bytes, or the limit of answers still to come, a connection stops
//!   parsing and reading ([`Phase::Paused`]). Under them again, it answers
//!   the input it holds, and reads again without waiting for an edge.

use std::io::{self, ErrorKind, Read, Write};
use std::mem;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use proto::{Frame, Stop};
use slab::Slab;

use crate::accept::Acceptor;
use crate::dispatch::{self, Reply};
use crate::limits::{self, FlowControl, LINGER, MIO_LIMITS};
use crate::log::RateLimited;
use crate::stall::{Timeouts, Watch};
use crate::stats::{OpenConnection, COUNTERS};
use crate::timers::{earliest, Timers};
use crate::{CommonOptions, Protocol, Shutdown};

// Connections use `Token(slab key)`; these two sit where no key reaches.
// Both mio models' loops use them.
pub const LISTENER: Token = Token(usize::MAX - 1);
pub const WAKER: Token = Token(usize::MAX - 2);

/// Flow control, from the limits table (`limits::MIO_LIMITS`).
const FLOW: FlowControl = match MIO_LIMITS.flow {
    Some(flow) => flow,
    None => panic!("the mio models need flow control"),
};

static REGISTER_FAILED: RateLimited = RateLimited::new("register", Duration::from_secs(1));

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,
}

/// Serve `listener` on this thread until `shutdown` is triggered.
pub fn run(listener: TcpListener, options: &Options, shutdown: Shutdown) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut acceptor = Acceptor::new(listener)?;
    poll.registry().register(&mut acceptor.listener, LISTENER, Interest::READABLE)?;
    // Shutdown arrives on the signal thread; the Waker knocks epoll_wait awake.
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    shutdown.on_trigger(move || {
        let _ = waker.wake();
    });

    let mut conns = ConnTable::new(&options.common, ComputeOn::Loop);
    let mut events = Events::with_capacity(1024);
    while !shutdown.is_triggered() {
        // Sleep until a socket is ready, a timer is due, or a paused
        // accept may be retried, whichever comes first.
        let timeout = earliest(conns.timeout(), acceptor.timeout());
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue; // a signal landed on this thread
            }
            return Err(e);
        }
        let registry = poll.registry();
        for event in events.iter() {
            match event.token() {
                LISTENER => acceptor.accept_all(|stream| conns.insert(registry, stream)),
                WAKER => {} // shutdown: the `while` condition sees it
                _ => conns.handle_event(registry, event),
            }
        }
        conns.fire_timers(registry);
        if acceptor.resume_due() {
            acceptor.accept_all(|stream| conns.insert(registry, stream));
        }
    }
    Ok(())
}

/// Where COMPUTE runs, the one thing the two mio models do differently.
pub enum ComputeOn {
    /// mio-single: on the loop's own thread, while every other connection waits.
    Loop,
    /// mio-multi: handed to a worker (`owner`, `id`, `rounds`), whose
    /// answer comes back to this loop's [`ConnTable::deliver`].
    HandOff(Box<dyn FnMut(Owner, u64, u32) + Send>),
}

/// Whose answer a late DELAY or COMPUTE result is. Slab slots are reused
/// after a close, so the generation tells a connection from its successor:
/// a result for a closed connection is dropped, never sent to a stranger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub token: Token,
    pub generation: u64,
}

/// What waits on a loop's timer heap.
enum Due {
    /// A DELAY's answer.
    Answer(Owner, Frame),
    /// The end of a connection's lingering close.
    LingerOver(Owner),
    /// Time to look for stalled frames and writes (`stall`).
    StallCheck,
}

/// The connections of one event loop, keyed by `Token(slab key)`, and
/// what they share ([`Shared`]).
pub struct ConnTable {
    slab: Slab<Connection>,
    /// The loop's one read buffer, so that an idle connection holds none.
    scratch: Box<[u8]>,
    /// Connections that got late answers since they were last driven.
    late: Vec<Owner>,
    next_generation: u64,
    shared: Shared,
}

/// What a connection's steps need of its loop besides its socket.
struct Shared {
    timers: Timers<Due>,
    compute: ComputeOn,
    protocol: Protocol,
    max_frame: u32,
    timeouts: Timeouts,
}

impl ConnTable {
    pub fn new(common: &CommonOptions, compute: ComputeOn) -> ConnTable {
        let timeouts = Timeouts::of(common);
        let mut timers = Timers::new();
        timers.push(Instant::now() + timeouts.period(), Due::StallCheck);
        ConnTable {
            slab: Slab::new(),
            scratch: vec![0; MIO_LIMITS.read_room.bytes()].into_boxed_slice(),
            late: Vec::new(),
            next_generation: 0,
            shared: Shared { timers, compute, protocol: common.protocol, max_frame: common.max_frame, timeouts },
        }
    }

    /// Take over an accepted socket.
    pub fn insert(&mut self, registry: &Registry, stream: TcpStream) {
        let entry = self.slab.vacant_entry();
        let owner = Owner { token: Token(entry.key()), generation: self.next_generation };
        self.next_generation += 1;
        let mut conn = Connection::new(stream, owner);
        if let Err(e) = conn.settle_interest(registry) {
            REGISTER_FAILED.log(format_args!("dropping a new connection: {e}"));
            return; // dropped: closed, and counted closed
        }
        entry.insert(conn);
    }

    /// A readiness event for one of our connections: note what it says the
    /// socket can do, then do all that can be done.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event) {
        let key = event.token().0;
        // Gone already (closed earlier in this batch of events). If its slot
        // was reused meanwhile, the new connection just tries a read in vain.
        let Some(conn) = self.slab.get_mut(key) else { return };
        if event.is_read_closed() || event.is_error() {
            conn.unread = Unread::UpToEnd; // see `Connection::read`
        } else if event.is_readable() && conn.unread == Unread::Nothing {
            conn.unread = Unread::Data;
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            conn.may_write = true;
        }
        self.drive(registry, key);
    }

    /// A late DELAY or COMPUTE answer, queued now and written by
    /// [`Self::drive_late`], so that many answers for one connection leave
    /// in one write.
    pub fn deliver(&mut self, owner: Owner, frame: Frame) {
        let Some(conn) = self.get(owner) else {
            return; // Its connection closed first: nobody is waiting for it.
        };
        conn.pending -= 1;
        dispatch::queue_reply(&frame, &mut conn.output);
        self.late.push(owner);
    }

    /// Drive, once each, the connections that got late answers.
    pub fn drive_late(&mut self, registry: &Registry) {
        let mut late = mem::take(&mut self.late);
        late.sort_unstable();
        late.dedup();
        for owner in late.drain(..) {
            // Skip a connection closed since, and a newcomer in its slot.
            if self.get(owner).is_some() {
                self.drive(registry, owner.token.0);
            }
        }
        self.late = late;
    }

    /// Send the DELAY answers that are due; end the lingering that is over;
    /// close the connections that stalled (every `Timeouts::period`).
    pub fn fire_timers(&mut self, registry: &Registry) {
        if self.shared.timers.is_empty() {
            return; // No clock read at all when nothing waits.
        }
        let now = Instant::now();
        while let Some(due) = self.shared.timers.pop_due(now) {
            match due {
                Due::Answer(owner, frame) => self.deliver(owner, frame),
                Due::LingerOver(owner) => {
                    if self.get(owner).is_some_and(|c| c.phase == Phase::Lingering) {
                        self.close(owner.token.0);
                    }
                }
                Due::StallCheck => {
                    self.close_stalled();
                    self.shared.timers.push(now + self.shared.timeouts.period(), Due::StallCheck);
                }
            }
        }
        self.drive_late(registry);
    }

    /// Close every connection whose partial frame stopped arriving, or
    /// whose answers stopped leaving, for longer than its limit (`stall`).
    fn close_stalled(&mut self) {
        let timeouts = &self.shared.timeouts;
        let (partial, write) = (timeouts.partial_frame_periods(), timeouts.write_periods());
        let mut stalled = Vec::new();
        for (key, conn) in self.slab.iter_mut() {
            // Only a frame being read: a paused connection's input is whole
            // requests, held back while it waits for its client to read.
            let frame_started = conn.phase == Phase::Open && !conn.input.is_empty();
            if conn.writing.stalled(conn.unsent() > 0, write) {
                COUNTERS.write_timeout();
                stalled.push(key);
            } else if conn.reading.stalled(frame_started, partial) {
                COUNTERS.partial_frame_timeout();
                stalled.push(key);
            }
        }
        stalled.into_iter().for_each(|key| self.close(key));
    }

    /// The poll timeout: until the earliest timer is due, or `None`.
    pub fn timeout(&self) -> Option<Duration> {
        self.shared.timers.timeout()
    }

    fn get(&mut self, owner: Owner) -> Option<&mut Connection> {
        self.slab.get_mut(owner.token.0).filter(|c| c.owner == owner)
    }

    /// Drive one connection, then close it if it is finished or broken, or
    /// else make its registered interest match what it now wants.
    fn drive(&mut self, registry: &Registry, key: usize) {
        let conn = &mut self.slab[key];
        let keep = match conn.drive(&mut self.scratch, &mut self.shared) {
            Ok(()) if conn.finished() => false,
            Ok(()) => conn.settle_interest(registry).is_ok(),
            Err(_) => false, // a reset or any other error ends this connection only
        };
        if !keep {
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        let conn = self.slab.remove(key);
        if !conn.input.is_empty() {
            COUNTERS.error(); // dropped with a request in it (closed mid-frame)
        }
        // Dropping it closes the socket, which also takes it out of epoll,
        // and counts it closed.
    }
}

/// Where a connection is in its life. What the socket can do right now
/// (readiness) is kept apart: [`Unread`] and `may_write`.
///
/// ```text
///  Open ──over a limit──▶ Paused ──under again──▶ Open
///  Open ──peer's FIN────▶ ReadClosed ──all answered──▶ closed
///  Open ──TOO_LARGE─────▶ Closing ──all sent, our FIN──▶ Lingering ──peer's FIN or LINGER──▶ closed
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading and answering. `input` holds at most the start of a frame.
    Open,
    /// Over a flow-control limit: nothing is read or parsed; `input` may
    /// hold whole requests, answered first when under the limits again.
    Paused,
    /// The peer sent FIN: answer what arrived (a trailing partial frame is
    /// dropped, as PROTOCOL.md says), then close.
    ReadClosed,
    /// TOO_LARGE is queued: nothing more is parsed. Once every answer is
    /// out, send our FIN and linger.
    Closing,
    /// Our FIN is out: read and discard until the peer's FIN, for at most
    /// `LINGER`. Closing with unread input would make the kernel send a
    /// reset, which can destroy answers the client has not read yet.
    Lingering,
}

/// What the socket's receive queue may hold, as far as we know: an
/// edge-triggered event says "data arrived" once, so this is remembered
/// until a read shows the queue empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unread {
    /// Nothing: a read said `WouldBlock`, or came up short. Wait for an edge.
    Nothing,
    /// Data, says an edge.
    Data,
    /// Data, and perhaps a FIN behind it whose edge was already spent (the
    /// event said read-closed, or we read again without an event): read
    /// until `WouldBlock` or end of stream.
    UpToEnd,
}

/// One client socket and everything the loop knows about it.
struct Connection {
    stream: TcpStream,
    owner: Owner,
    phase: Phase,
    unread: Unread,
    /// The socket may take more bytes: no `WouldBlock` on write since the last event.
    may_write: bool,
    /// Bytes read but not yet parsed: a partial frame, or (while
    /// [`Phase::Paused`]) whole frames held back. Usually empty.
    input: Vec<u8>,
    /// Encoded responses; `output[written..]` is not yet sent.
    output: Vec<u8>,
    written: usize,
    /// DELAY and COMPUTE answers promised and not yet queued.
    pending: usize,
    /// The interest registered with the poll now (`None`: not registered).
    interest: Option<Interest>,
    /// Whether bytes arrive and leave, for the stall checks.
    reading: Watch,
    writing: Watch,
    _open: OpenConnection,
}

impl Connection {
    fn new(stream: TcpStream, owner: Owner) -> Connection {
        Connection {
            stream,
            owner,
            phase: Phase::Open,
            // A socket already holding data when registered is reported at
            // once by epoll_ctl(ADD), so no read is tried before an event.
            unread: Unread::Nothing,
            may_write: true,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            pending: 0,
            interest: None,
            reading: Watch::default(),
            writing: Watch::default(),
            _open: OpenConnection::accepted(),
        }
    }

    fn unsent(&self) -> usize {
        self.output.len() - self.written
    }

    /// Flow control's one check: over the limits, a connection stops
    /// reading and parsing, and it goes on once under them again.
    fn over_limit(&self) -> bool {
        FLOW.stops_reading(self.unsent(), self.pending)
    }

    fn wants_read(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Lingering) && !self.over_limit()
    }

    /// Nothing more will arrive or leave: every request received is answered.
    fn finished(&self) -> bool {
        self.phase == Phase::ReadClosed && self.pending == 0 && self.unsent() == 0
    }

    /// Do everything that can be done without waiting: write, answer
    /// held-back input, read until `WouldBlock`, answer, write... The
    /// answers to one read leave in one write. A read happens only once
    /// every whole frame already read is answered, so `input` never holds
    /// more than one partial frame plus one read's worth.
    fn drive(&mut self, scratch: &mut [u8], shared: &mut Shared) -> io::Result<()> {
        loop {
            self.flush()?;
            if self.phase == Phase::Paused && !self.over_limit() {
                self.resume(shared);
                continue; // write what that answered first
            }
            if self.phase == Phase::Closing && self.unsent() == 0 && self.pending == 0 {
                self.start_lingering(shared)?;
            }
            if !self.wants_read() {
                if self.phase == Phase::Open {
                    self.phase = Phase::Paused; // over a limit
                }
                return Ok(());
            }
            if self.unread == Unread::Nothing {
                return Ok(()); // wait for the next edge
            }
            self.read(scratch, shared)?;
        }
    }

    /// Under the limits again: answer the whole requests held in `input`,
    /// and unless that fills the limits again, read without waiting for an
    /// edge: data, or a FIN, may have arrived while we were not reading.
    fn resume(&mut self, shared: &mut Shared) {
        self.phase = Phase::Open;
        if !self.input.is_empty() {
            self.parse_input(shared);
        }
        if self.phase == Phase::Open {
            self.unread = Unread::UpToEnd;
        }
    }

    /// Every answer is out, TOO_LARGE last: send our FIN, then read and
    /// discard until the client's, or until `LINGER` has passed.
    fn start_lingering(&mut self, shared: &mut Shared) -> io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Write)?;
        self.phase = Phase::Lingering;
        self.unread = Unread::UpToEnd;
        shared.timers.push(Instant::now() + LINGER, Due::LingerOver(self.owner));
        Ok(())
    }

    /// One read, and whatever it completes.
    fn read(&mut self, scratch: &mut [u8], shared: &mut Shared) -> io::Result<()> {
        match self.stream.read(scratch) {
            Ok(0) => self.phase = Phase::ReadClosed,
            Ok(n) => {
                COUNTERS.read(n);
                self.reading.progress();
                self.skip_the_read_that_would_block(n, scratch.len());
                self.take_input(&scratch[..n], shared);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.unread = Unread::Nothing,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The short-read fast path: one read per request, not two. On Linux a
    /// TCP read that returns fewer bytes than asked took everything in the
    /// receive queue at that moment, and with edge-triggered epoll any data
    /// arriving after it raises a new event. So the next read would only
    /// say `WouldBlock`: skip it, and wait for the next edge. Not after an
    /// event that said read-closed, or a read without an event (`UpToEnd`):
    /// a FIN may be queued behind the data with its edge spent.
    ///
    /// Measured (`results/ab-checks/short-read/`: this file with and
    /// without the step, 5 interleaved pairs, echo-saturate at 1000
    /// connections): system calls per request, waits excluded, 3.00 -> 2.00
    /// in every pair for mio-single and mio-multi. Server CPU per request
    /// moved -0% (mio-single, interval -11% to +17%) and -15% (mio-multi,
    /// -33% to +20%): a system call saved, a CPU gain too small for five
    /// pairs to tell from noise.
    fn skip_the_read_that_would_block(&mut self, read: usize, asked: usize) {
        if read < asked && self.unread == Unread::Data {
            self.unread = Unread::Nothing;
        }
    }

    /// Bytes just read: answer them, and keep what is not a whole frame.
    fn take_input(&mut self, data: &[u8], shared: &mut Shared) {
        if self.phase == Phase::Lingering {
            // The rest of a payload we refused: dropped unread.
        } else if self.input.is_empty() {
            // The common case: parse straight from the loop's buffer, and
            // copy only what is left (a partial frame).
            let used = self.parse(data, shared);
            self.input.extend_from_slice(&data[used..]);
        } else {
            // Completes the partial frame we hold.
            self.input.extend_from_slice(data);
            self.parse_input(shared);
        }
    }

    /// Answer the requests at the front of `data` (`proto::answer_frames`,
    /// through [`Answering`]); return the bytes used. Stops early at a
    /// partial frame, or when flow control says so.
    fn parse(&mut self, data: &[u8], shared: &mut Shared) -> usize {
        if shared.protocol == Protocol::Raw {
            // The plain byte echo: every read is one "request", answered in full.
            return dispatch::echo_raw(data, &mut self.output);
        }
        if self.phase != Phase::Open {
            return 0;
        }
        let max_frame = shared.max_frame;
        let done = proto::answer_frames(data, max_frame, &mut Answering { conn: self, shared });
        match done.stop {
            Stop::Partial { .. } => {} // a later read completes it
            Stop::Full => self.phase = Phase::Paused,
            Stop::TooLarge(e) => {
                // The payload cannot be skipped: answer, drop the rest, close.
                dispatch::queue_reply(&dispatch::too_large_reply(&e), &mut self.output);
                self.phase = Phase::Closing;
                return data.len();
            }
        }
        done.used
    }

    /// [`Self::parse`] what `input` holds, keeping the rest.
    fn parse_input(&mut self, shared: &mut Shared) {
        let mut input = mem::take(&mut self.input);
        let used = self.parse(&input, shared);
        input.drain(..used);
        limits::shrink_if_idle(&mut input);
        self.input = input;
    }

    /// Write until the output is all sent or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.may_write && self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    COUNTERS.wrote(n);
                    self.writing.progress();
                    self.written += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.may_write = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
            limits::shrink_if_idle(&mut self.output);
        } else if self.written > self.output.len() / 2 {
            // Move the unsent tail to the front now and then (amortised: at
            // most once per half buffer sent), so the buffer does not creep.
            self.output.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }

    /// Make the registered interest match what the connection wants now.
    /// Most calls change nothing and make no syscall.
    fn settle_interest(&mut self, registry: &Registry) -> io::Result<()> {
        let want = match (self.wants_read(), self.unsent() > 0) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            // Waiting only for DELAY/COMPUTE answers: mio cannot register an
            // empty set, and any socket event now would just be ignored.
            (false, false) => None,
        };
        if want == self.interest {
            return Ok(());
        }
        let token = self.owner.token;
        match (self.interest, want) {
            (None, Some(i)) => registry.register(&mut self.stream, token, i)?,
            (Some(_), Some(i)) => registry.reregister(&mut self.stream, token, i)?,
            (Some(_), None) => registry.deregister(&mut self.stream)?,
            (None, None) => {}
        }
        self.interest = want;
        Ok(())
    }
}

/// What the mio models do with each request `proto::answer_frames`
/// decodes: answer now, put a DELAY's answer on the timer heap, run
/// COMPUTE where the loop's [`ComputeOn`] says.
struct Answering<'a> {
    conn: &'a mut Connection,
    shared: &'a mut Shared,
}

impl proto::Answer for Answering<'_> {
    fn full(&self) -> bool {
        self.conn.over_limit()
    }

    fn answer(&mut self, request: Frame) {
        let conn = &mut *self.conn;
        match dispatch::handle_request(request) {
            Reply::Now(frame) => dispatch::queue_reply(&frame, &mut conn.output),
            Reply::After { delay, frame } => {
                self.shared.timers.push(Instant::now() + delay, Due::Answer(conn.owner, frame));
                conn.pending += 1;
            }
            Reply::Compute { id, rounds } => match &mut self.shared.compute {
                ComputeOn::Loop => dispatch::queue_reply(&dispatch::compute_reply(id, rounds), &mut conn.output),
                ComputeOn::HandOff(hand_off) => {
                    hand_off(conn.owner, id, rounds);
                    conn.pending += 1;
                }
            },
        }
    }
}
