//! The event-loop machinery both mio models share.
//!
//! - [`Connection`]: one socket's buffers and state, and [`Connection::drive`],
//!   which does everything that can be done on it without waiting.
//! - [`Connections`]: the connections one loop owns, keyed by `Token`, plus
//!   the loop's read buffer and its [`Timers`] (where DELAY answers wait).
//! - [`Acceptor`]: accept until `WouldBlock`, and back off on EMFILE.
//! - [`Compute`]: the one thing the mio models disagree about per request,
//!   where COMPUTE runs (inline on the loop, or on a worker pool).
//!
//! So `models::mio_single` and `models::mio_multi` keep only their thread
//! and loop structure. The rules everything here follows come from mio
//! registering sockets edge-triggered (epoll's `EPOLLET`): an event says
//! "something changed" once, and does not repeat while data sits unread.
//!
//! - Read until `WouldBlock`; write until everything is out or `WouldBlock`.
//!   A connection remembers whether it may still be readable or writable
//!   (`may_read`, `may_write`), since no new edge will come for old data.
//!   One shortcut: a TCP read that returns fewer bytes than the buffer
//!   drained the socket, so the read that would only say `WouldBlock` is
//!   skipped (see [`Connection::drive`] for why that is safe, and when not).
//! - Interest: READABLE while we want input, WRITABLE only while output
//!   waits. `reregister` replaces the whole set and costs a syscall, so it
//!   is called only when the wanted set changes.
//! - Flow control (PROTOCOL.md): past [`OUTPUT_LIMIT`] unsent bytes or
//!   [`PENDING_LIMIT`] unanswered DELAY/COMPUTE requests, a connection stops
//!   parsing and reading. Input it already holds is parsed when it resumes,
//!   and it reads again even without a new edge.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, ErrorKind, Read, Write};
use std::mem;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use proto::Frame;
use slab::Slab;

use crate::dispatch::{self, Reply};
use crate::log::RateLimited;
use crate::stats::COUNTERS;
use crate::{net, Protocol};

/// Stop reading a connection while this many response bytes wait unsent...
pub const OUTPUT_LIMIT: usize = 256 * 1024;
/// ...or while this many DELAY and COMPUTE answers are still to come.
pub const PENDING_LIMIT: usize = 1024;
/// The loop's one read buffer. Large, so that a burst of pipelined requests
/// takes few read calls; shared by all connections, so that an idle
/// connection holds no buffer at all.
const READ_BUF: usize = 64 * 1024;
/// A buffer that grew past this (for a 1 MiB echo) is freed once empty.
const KEEP_CAPACITY: usize = 64 * 1024;
/// How long accepting pauses after EMFILE and its relatives.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

static ACCEPT_FAILED: RateLimited = RateLimited::new("accept", Duration::from_secs(1));
static REGISTER_FAILED: RateLimited = RateLimited::new("register", Duration::from_secs(1));

/// Whose answer a late DELAY or COMPUTE result is. Slab slots are reused
/// after a close, so the generation tells a connection from its successor:
/// a result for a closed connection is dropped, never sent to a stranger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub token: Token,
    pub generation: u64,
}

/// Where COMPUTE runs: the model's choice.
pub trait Compute {
    /// Answer now with `Some`, or return `None` and deliver the answer later
    /// through [`Connections::deliver`] on the owner's loop.
    fn compute(&mut self, owner: Owner, id: u64, rounds: u32) -> Option<Frame>;
}

/// One client socket and everything the loop knows about it.
pub struct Connection {
    stream: TcpStream,
    owner: Owner,
    /// Bytes read but not yet parsed: a partial frame, or whole frames held
    /// back by flow control. Usually empty (see [`Connection::drive`]).
    input: Vec<u8>,
    /// `input` may hold whole frames that flow control kept us from parsing.
    held: bool,
    /// Encoded responses; `output[written..]` is not yet sent.
    output: Vec<u8>,
    written: usize,
    /// DELAY and COMPUTE answers promised and not yet queued.
    pending: usize,
    /// The socket may hold unread data / have room: no `WouldBlock` since the last event.
    may_read: bool,
    may_write: bool,
    /// Reading stopped for flow control; on resuming, read without waiting for an edge.
    paused: bool,
    /// Read until `WouldBlock` or end of stream: no short-read shortcut,
    /// because a FIN may be queued whose edge was already spent.
    drain_fully: bool,
    /// The peer sent FIN: answer what arrived, then close.
    read_closed: bool,
    /// TOO_LARGE was queued: parse nothing more, close once the output is out.
    closing: bool,
    /// After TOO_LARGE: our FIN is sent and unread input is discarded until
    /// the peer's FIN. Closing with unread input would make the kernel send
    /// a reset, which can destroy answers the client has not read yet.
    lingering: bool,
    /// The interest registered with the poll now (`None`: not registered).
    interest: Option<Interest>,
    /// Listed in `Connections::dirty`, to be driven after a late answer.
    dirty: bool,
}

impl Connection {
    fn new(stream: TcpStream, owner: Owner) -> Connection {
        Connection {
            stream,
            owner,
            input: Vec::new(),
            held: false,
            output: Vec::new(),
            written: 0,
            pending: 0,
            // A socket already holding data when registered is reported at
            // once by epoll_ctl(ADD), so no read is tried before an event.
            may_read: false,
            may_write: true,
            paused: false,
            drain_fully: false,
            read_closed: false,
            closing: false,
            lingering: false,
            interest: None,
            dirty: false,
        }
    }

    fn unsent(&self) -> usize {
        self.output.len() - self.written
    }

    fn over_limit(&self) -> bool {
        self.unsent() >= OUTPUT_LIMIT || self.pending >= PENDING_LIMIT
    }

    fn wants_read(&self) -> bool {
        !self.read_closed && (!self.closing || self.lingering) && !self.over_limit()
    }

    /// Nothing more will arrive or leave: every request received is answered
    /// (a trailing partial frame is dropped, as PROTOCOL.md says).
    fn finished(&self) -> bool {
        self.read_closed && !self.held && self.pending == 0 && self.unsent() == 0
    }

    /// Do everything that can be done without waiting: parse held-back
    /// input, write, read until `WouldBlock`, parse, write... Responses to
    /// one read are written with one write call. A read happens only once
    /// every whole frame already read has been parsed, so `input` never
    /// holds more than one partial frame plus one read's worth.
    fn drive(&mut self, scratch: &mut [u8], ctx: &mut Ctx<impl Compute>) -> io::Result<()> {
        loop {
            if self.held && !self.over_limit() {
                self.parse_input(ctx);
            }
            self.flush()?;
            if self.held && !self.over_limit() {
                continue; // the write lifted flow control: parse what we hold first
            }
            if self.closing && !self.lingering && self.unsent() == 0 && self.pending == 0 {
                // Every answer is out, TOO_LARGE last: send our FIN, then
                // read and discard until the client's.
                self.stream.shutdown(std::net::Shutdown::Write)?;
                self.lingering = true;
                self.may_read = true;
                self.drain_fully = true;
            }
            if !self.wants_read() {
                self.paused = true;
                return Ok(());
            }
            if mem::take(&mut self.paused) {
                // Data may have arrived while we were not reading, with no
                // edge to say so; so may a FIN, whose edge was not watched.
                self.may_read = true;
                self.drain_fully = true;
            }
            if !self.may_read {
                return Ok(());
            }
            match self.stream.read(scratch) {
                Ok(0) => self.read_closed = true,
                Ok(n) => {
                    COUNTERS.read(n);
                    // The short-read shortcut, one syscall per request. On
                    // Linux a TCP read that returns fewer bytes than asked
                    // took everything in the receive queue at that moment,
                    // and with edge-triggered epoll any data arriving after
                    // it raises a new event. So the next read would only
                    // say WouldBlock: skip it, and wait for the next edge.
                    // Not safe when a FIN may already be queued behind the
                    // data with its edge spent (the event said read-closed,
                    // or we resumed reading without an event): then read on
                    // until WouldBlock or end of stream (`drain_fully`).
                    if n < scratch.len() && !self.drain_fully {
                        self.may_read = false;
                    }
                    let data = &scratch[..n];
                    if self.lingering {
                        // The rest of a payload we refused: dropped unread.
                    } else if self.input.is_empty() {
                        // The common case: parse straight from the loop's
                        // buffer, and copy only what is left (a partial frame).
                        let used = self.parse(data, ctx);
                        self.input.extend_from_slice(&data[used..]);
                    } else {
                        // Completes the partial frame we hold.
                        self.input.extend_from_slice(data);
                        self.parse_input(ctx);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.may_read = false;
                    self.drain_fully = false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Answer the requests at the front of `data`; return the bytes used.
    /// Stops early at a partial frame, or when flow control says so (`held`).
    fn parse(&mut self, data: &[u8], ctx: &mut Ctx<impl Compute>) -> usize {
        self.held = false;
        if ctx.protocol == Protocol::Raw {
            // The seed's echo: every read is one "request", answered in full.
            self.output.extend_from_slice(data);
            COUNTERS.answered(1);
            dispatch::debug_slowdown();
            return data.len();
        }
        let mut used = 0;
        while !self.closing {
            if self.over_limit() {
                self.held = used < data.len();
                break;
            }
            match proto::decode_with_limit(&data[used..], ctx.max_frame) {
                Ok(Some((frame, n))) => {
                    used += n;
                    self.answer(dispatch::handle_request(frame), ctx);
                }
                Ok(None) => break,
                Err(e) => {
                    // The payload cannot be skipped: answer, drop the rest, close.
                    dispatch::queue_reply(&dispatch::too_large_reply(&e), &mut self.output);
                    self.closing = true;
                    return data.len();
                }
            }
        }
        used
    }

    fn answer(&mut self, reply: Reply, ctx: &mut Ctx<impl Compute>) {
        match reply {
            Reply::Now(frame) => dispatch::queue_reply(&frame, &mut self.output),
            Reply::After { delay, frame } => {
                ctx.timers.push(Instant::now() + delay, self.owner, frame);
                self.pending += 1;
            }
            Reply::Compute { id, rounds } => match ctx.compute.compute(self.owner, id, rounds) {
                Some(frame) => dispatch::queue_reply(&frame, &mut self.output),
                None => self.pending += 1,
            },
        }
    }

    /// [`Self::parse`] what `input` holds, keeping the rest, and the
    /// allocation unless it grew large.
    fn parse_input(&mut self, ctx: &mut Ctx<impl Compute>) {
        let mut input = mem::take(&mut self.input);
        let used = self.parse(&input, ctx);
        input.drain(..used);
        if input.is_empty() && input.capacity() > KEEP_CAPACITY {
            input = Vec::new();
        }
        self.input = input;
    }

    /// Write until the output is all sent or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.may_write && self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    COUNTERS.wrote(n);
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
            if self.output.capacity() > KEEP_CAPACITY {
                self.output = Vec::new();
            }
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

/// What parsing needs besides the connection itself.
struct Ctx<'a, C> {
    timers: &'a mut Timers,
    compute: &'a mut C,
    protocol: Protocol,
    max_frame: u32,
}

/// The connections of one event loop, keyed by `Token(slab key)`. A model
/// must give its own tokens (listener, waker) values no slab key reaches,
/// such as `usize::MAX - 1`.
pub struct Connections {
    slab: Slab<Connection>,
    timers: Timers,
    scratch: Box<[u8]>,
    protocol: Protocol,
    max_frame: u32,
    next_generation: u64,
    /// Connections that got late answers since they were last driven.
    dirty: Vec<usize>,
}

impl Connections {
    pub fn new(protocol: Protocol, max_frame: u32) -> Connections {
        Connections {
            slab: Slab::new(),
            timers: Timers::default(),
            scratch: vec![0; READ_BUF].into_boxed_slice(),
            protocol,
            max_frame,
            next_generation: 0,
            dirty: Vec::new(),
        }
    }

    /// Take over an accepted socket (already counted by [`Acceptor`]).
    pub fn insert(&mut self, registry: &Registry, stream: TcpStream) {
        let entry = self.slab.vacant_entry();
        let owner = Owner { token: Token(entry.key()), generation: self.next_generation };
        self.next_generation += 1;
        let mut conn = Connection::new(stream, owner);
        match conn.settle_interest(registry) {
            Ok(()) => {
                entry.insert(conn);
            }
            Err(e) => {
                REGISTER_FAILED.log(format_args!("dropping a new connection: {e}"));
                COUNTERS.closed();
            }
        }
    }

    /// A readiness event for one of our connections.
    pub fn handle_event(&mut self, registry: &Registry, event: &Event, compute: &mut impl Compute) {
        let key = event.token().0;
        // Gone already (closed earlier in this batch of events). If its slot
        // was reused meanwhile, the new connection just tries a read in vain.
        let Some(conn) = self.slab.get_mut(key) else { return };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            conn.may_read = true;
        }
        if event.is_read_closed() || event.is_error() {
            conn.drain_fully = true; // see the short-read shortcut in `drive`
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            conn.may_write = true;
        }
        self.drive(registry, key, compute);
    }

    /// A late DELAY or COMPUTE answer. Queued now; written by [`Self::drive_dirty`],
    /// so that many answers for one connection leave in one write.
    pub fn deliver(&mut self, owner: Owner, frame: Frame) {
        let Some(conn) = self.slab.get_mut(owner.token.0).filter(|c| c.owner == owner) else {
            return; // Its connection closed first: nobody is waiting for it.
        };
        conn.pending -= 1;
        dispatch::queue_reply(&frame, &mut conn.output);
        if !mem::replace(&mut conn.dirty, true) {
            self.dirty.push(owner.token.0);
        }
    }

    /// Drive every connection that got late answers.
    pub fn drive_dirty(&mut self, registry: &Registry, compute: &mut impl Compute) {
        let mut dirty = mem::take(&mut self.dirty);
        for &key in &dirty {
            // Skip a connection closed since (by an event in the same batch);
            // a newcomer in its slot is not dirty.
            if self.slab.get_mut(key).is_some_and(|c| mem::take(&mut c.dirty)) {
                self.drive(registry, key, compute);
            }
        }
        dirty.clear();
        self.dirty = dirty;
    }

    /// Send the DELAY answers that are due.
    pub fn fire_timers(&mut self, registry: &Registry, compute: &mut impl Compute) {
        if self.timers.heap.is_empty() {
            return; // No clock read at all when nothing waits.
        }
        let now = Instant::now();
        while let Some((owner, frame)) = self.timers.pop_due(now) {
            self.deliver(owner, frame);
        }
        self.drive_dirty(registry, compute);
    }

    /// The poll timeout: until the earliest DELAY is due, or `None`.
    pub fn timeout(&self) -> Option<Duration> {
        self.timers.heap.peek().map(|Reverse(t)| t.deadline.saturating_duration_since(Instant::now()))
    }

    fn drive(&mut self, registry: &Registry, key: usize, compute: &mut impl Compute) {
        let conn = &mut self.slab[key];
        let mut ctx = Ctx { timers: &mut self.timers, compute, protocol: self.protocol, max_frame: self.max_frame };
        let result = conn.drive(&mut self.scratch, &mut ctx);
        let result = match result {
            Ok(()) if conn.finished() => Err(None),
            Ok(()) => conn.settle_interest(registry).map_err(Some),
            Err(e) => Err(Some(e)),
        };
        if result.is_err() {
            // A reset or any other error ends this connection only.
            let conn = self.slab.remove(key);
            if !conn.input.is_empty() {
                COUNTERS.error(); // dropped with a request in it (closed mid-frame)
            }
            COUNTERS.closed();
            // Dropping the socket closes it, which also takes it out of epoll.
        }
    }
}

/// DELAY answers waiting for their time, earliest first.
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

struct Timer {
    deadline: Instant,
    /// Ties go first-in first-out, and `Frame` need not be ordered.
    seq: u64,
    owner: Owner,
    frame: Frame,
}

impl Timers {
    fn push(&mut self, deadline: Instant, owner: Owner, frame: Frame) {
        self.seq += 1;
        self.heap.push(Reverse(Timer { deadline, seq: self.seq, owner, frame }));
    }

    fn pop_due(&mut self, now: Instant) -> Option<(Owner, Frame)> {
        if self.heap.peek()?.0.deadline > now {
            return None;
        }
        self.heap.pop().map(|Reverse(t)| (t.owner, t.frame))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timer {}

/// The listening socket, accepting until `WouldBlock`, and pausing when
/// accept fails for lack of descriptors instead of spinning on it.
pub struct Acceptor {
    pub listener: TcpListener,
    paused_until: Option<Instant>,
}

impl Acceptor {
    pub fn new(listener: std::net::TcpListener) -> io::Result<Acceptor> {
        listener.set_nonblocking(true)?; // mio's from_std leaves that to us
        Ok(Acceptor { listener: TcpListener::from_std(listener), paused_until: None })
    }

    /// Accept every waiting connection and hand each to `on_conn`, counted
    /// and with TCP_NODELAY set (responses are small; Nagle would hold them).
    pub fn accept_all(&mut self, mut on_conn: impl FnMut(TcpStream)) {
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.paused_until = None;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    COUNTERS.accepted();
                    on_conn(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if net::is_per_connection(&e) => {}
                Err(e) => {
                    // EMFILE and the like: the connection stays in the backlog
                    // and accepting again now fails again now. Back off; the
                    // poll timeout brings us back (see `resume_if_due`).
                    let what = if net::is_resource_exhaustion(&e) { "out of resources" } else { "unexpected error" };
                    ACCEPT_FAILED.log(format_args!("{what}: {e}; pausing accepts for {ACCEPT_PAUSE:?}"));
                    self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// The poll timeout while accepting is paused.
    pub fn timeout(&self) -> Option<Duration> {
        self.paused_until.map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// Call after every poll: once a pause is over, accept again, since the
    /// connections already waiting in the backlog bring no new edge.
    pub fn resume_if_due(&mut self, on_conn: impl FnMut(TcpStream)) {
        if self.paused_until.is_some_and(|t| Instant::now() >= t) {
            self.accept_all(on_conn);
        }
    }
}

/// The earlier of two optional poll timeouts.
pub fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    a.into_iter().chain(b).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(n: usize) -> Owner {
        Owner { token: Token(n), generation: n as u64 }
    }

    #[test]
    fn timers_pop_in_deadline_order_then_fifo() {
        let mut t = Timers::default();
        let now = Instant::now();
        let ms = Duration::from_millis;
        t.push(now + ms(30), owner(1), Frame::default());
        t.push(now + ms(10), owner(2), Frame::default());
        t.push(now + ms(10), owner(3), Frame::default());
        t.push(now + ms(20), owner(4), Frame::default());
        assert!(t.pop_due(now).is_none(), "nothing is due yet");
        let due: Vec<_> = std::iter::from_fn(|| t.pop_due(now + ms(20))).map(|(o, _)| o.token.0).collect();
        assert_eq!(due, [2, 3, 4]);
        assert_eq!(t.pop_due(now + ms(30)).map(|(o, _)| o.token.0), Some(1));
        assert!(t.pop_due(now + ms(1000)).is_none());
    }

    struct Inline;
    impl Compute for Inline {
        fn compute(&mut self, _: Owner, id: u64, rounds: u32) -> Option<Frame> {
            Some(dispatch::compute_reply(id, rounds))
        }
    }

    /// Flow control holds input back (STATS answers are 25 times their
    /// requests; DELAYs fill the pending limit), the client half-closes, and
    /// still every request is answered, exactly once, before the close.
    #[test]
    fn held_back_input_is_answered_before_a_half_close() {
        use proto::Method;
        use std::net::Shutdown;
        const STATS: u64 = 20_000;
        const TOTAL: u64 = STATS + 3 * PENDING_LIMIT as u64;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut out = Vec::new();
            for id in 0..TOTAL {
                let f = match id < STATS {
                    true => Frame::request(id, Method::Stats, vec![]),
                    false => Frame::request(id, Method::Delay, 0u32.to_be_bytes().to_vec()),
                };
                proto::encode(&f, &mut out);
            }
            let mut writer = stream.try_clone().unwrap();
            let w = std::thread::spawn(move || {
                writer.write_all(&out).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let (mut buf, mut seen) = (Vec::new(), vec![false; TOTAL as usize]);
            let mut chunk = vec![0u8; 65536];
            loop {
                while let Some((f, used)) = proto::decode_with_limit(&buf, u32::MAX).unwrap() {
                    buf.drain(..used);
                    assert!(!std::mem::replace(&mut seen[f.id as usize], true), "id {} twice", f.id);
                }
                match stream.read(&mut chunk).unwrap() {
                    0 => break,
                    n => buf.extend_from_slice(&chunk[..n]),
                }
            }
            w.join().unwrap();
            seen.iter().filter(|&&s| s).count() as u64
        });

        let mut poll = mio::Poll::new().unwrap();
        let mut acceptor = Acceptor::new(listener).unwrap();
        poll.registry().register(&mut acceptor.listener, Token(usize::MAX - 1), Interest::READABLE).unwrap();
        let mut conns = Connections::new(Protocol::Framed, proto::DEFAULT_MAX_FRAME);
        let mut events = mio::Events::with_capacity(64);
        let (deadline, mut accepted) = (Instant::now() + Duration::from_secs(60), false);
        while !(accepted && conns.slab.is_empty()) {
            assert!(Instant::now() < deadline, "the connection never finished");
            let timeout = earliest(conns.timeout(), Some(Duration::from_millis(100)));
            poll.poll(&mut events, timeout).unwrap();
            for event in events.iter() {
                match event.token() {
                    Token(t) if t == usize::MAX - 1 => acceptor.accept_all(|s| {
                        accepted = true;
                        conns.insert(poll.registry(), s)
                    }),
                    _ => conns.handle_event(poll.registry(), event, &mut Inline),
                }
            }
            conns.fire_timers(poll.registry(), &mut Inline);
        }
        assert_eq!(client.join().unwrap(), TOTAL, "every request answered before the close");
    }

    #[test]
    fn earliest_ignores_missing_timeouts() {
        let s = Duration::from_secs;
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(s(2)), None), Some(s(2)));
        assert_eq!(earliest(None, Some(s(1))), Some(s(1)));
        assert_eq!(earliest(Some(s(2)), Some(s(1))), Some(s(1)));
    }
}
