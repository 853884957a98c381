//! uring: one thread, one io_uring, every socket: completion-based I/O.
//!
//! How it works: mio-single asks the kernel which sockets are *ready* and
//! then makes the read and write calls itself. This loop *submits* the
//! operations to a ring it shares with the kernel and is told when each is
//! *done*:
//!
//! - one multishot ACCEPT on the listener completes once per connection;
//! - one multishot RECV per connection completes each time data arrives,
//!   into a buffer the kernel takes from a shared buffer ring (provided
//!   buffers, `uring/ring.rs`); the loop parses straight from that buffer
//!   and hands it back;
//! - one SEND per connection at a time carries every answer queued so far
//!   (`sending`), while later answers queue in `output`; a short send is
//!   submitted again from where it stopped;
//! - a DELAY is an IORING_OP_TIMEOUT whose completion queues its answer, so
//!   answers leave **out of order**, as in mio-single; COMPUTE runs inline,
//!   as in mio-single, and stalls every connection while it runs;
//! - shutdown: a READ on an eventfd, which the signal thread writes.
//!
//! The loop makes one system call, `io_uring_enter`: it submits everything
//! the last batch of completions produced and waits for the next batch. It
//! asks for 64 completions but returns with fewer once 20 µs have passed
//! and at least one is there (Linux 6.13's minimum wait; an older kernel
//! returns at the first). The ring is SINGLE_ISSUER and DEFER_TASKRUN
//! (Linux 6.1): the kernel finishes the completions on this thread, inside
//! that wait, so their CPU is this thread's and is batched too. No SQPOLL:
//! one thread means one thread.
//!
//! A connection's life is [`State`]. Flow control as mio-single, with the
//! same output and pending limits (`limits::URING_LIMITS`): past them the recv is
//! cancelled, and armed again once the answers drain below them. TOO_LARGE is sent last, then our FIN,
//! then input is discarded until the peer's FIN or for at most [`LINGER`].
//! A connection is dropped only when its recv and send have completed (a
//! close cancels them), since until then the kernel may write into its
//! buffers; DELAY and linger timers name their connection's generation, so
//! one that fires after a close finds no one.
//!
//! Why provided buffers, not a plain recv into each connection's own buffer
//! (results/ab-checks/uring-recv, 6 interleaved runs each on a shared
//! machine): at 1000 connections the plain recv's server held 19.4 MiB
//! against 8.6, since every connection keeps a 16 KiB buffer under its recv
//! in flight; CPU per request was lower with provided buffers (median 4.61
//! against 5.31 µs), but inside the runs' spread, so memory decides. Why the
//! 20 µs batch wait: results/ab-checks/uring-batch-wait.
//!
//! Trade-off. Wins: one `io_uring_enter` carries a whole batch, so system
//! calls per request fall from about 2 (mio-single's recv and send) to
//! about 0.02 at 1000 busy connections (results/ab-checks/uring-vs-mio-single),
//! and an idle connection holds no buffer. On loopback its CPU per request
//! is not told apart from mio-single's (8 pairs: the ratio's median 0.88,
//! range 0.51 to 1.12), because most of it is the TCP stack, which both pay.
//! Breaks: it needs Linux 6.1 and an io_uring that is allowed (many
//! container seccomp profiles and the io_uring_disabled sysctl forbid it,
//! for its record of kernel bugs): `available` says why not. It uses one
//! core, a long COMPUTE stalls everyone, the batch wait adds up to 20 µs
//! to an answer at light load, and a burst that fills all 1024 receive
//! buffers in one batch ends multishot recvs (ENOBUFS), each armed again.

use std::io;
use std::mem;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use proto::{Frame, Stop};
use slab::Slab;

use crate::dispatch::{self, Reply};
use crate::limits::{self, ACCEPT_PAUSE, LINGER};
use crate::log::RateLimited;
use crate::stall::{Timeouts, Watch};
use crate::stats::{OpenConnection, COUNTERS};
use crate::{net, CommonOptions, Protocol, Shutdown};

mod ring;
pub use ring::available;
use ring::{buf_ring_error, disabled_sysctl, new_ring, setup_error, BufRing, BGID, RING_ENTRIES};

/// Flow control, from the limits table (`limits::URING_LIMITS`, the mio loops' numbers).
const FLOW: limits::FlowControl = match limits::URING_LIMITS.flow {
    Some(flow) => flow,
    None => panic!("uring has flow control"),
};
/// How many times `Sq::push` submits a full queue before it gives up.
const SUBMIT_TRIES: u32 = 8;
/// Each wait asks for BATCH completions, but returns with fewer once
/// BATCH_WAIT_US have passed and at least one is there (IORING_FEAT_MIN_TIMEOUT).
const BATCH: usize = 64;
const BATCH_WAIT_US: u32 = 20;
/// With nothing to do, the loop still wakes this often (seconds).
const IDLE_WAIT_S: u64 = 60;

static ACCEPT_FAILED: RateLimited = RateLimited::new("accept", Duration::from_secs(1));
static RING_FAILED: RateLimited = RateLimited::new("io_uring_enter", Duration::from_secs(1));

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,
}

/// Serve `listener` on this thread until `shutdown` is triggered.
pub fn run(listener: TcpListener, options: &Options, shutdown: Shutdown) -> io::Result<()> {
    let mut lp = Loop::new(listener, &options.common, &shutdown)?;
    // Without a (long) timeout, a wait with a minimum returns after it even with no completion.
    let idle = Timespec::new().sec(IDLE_WAIT_S);
    let (want, batch) = match lp.sq.ring.params().is_feature_min_timeout() {
        true => (BATCH, SubmitArgs::new().min_wait_usec(BATCH_WAIT_US).timespec(&idle)),
        false => {
            eprintln!("uring: no IORING_FEAT_MIN_TIMEOUT (Linux 6.13): each wait ends at the first completion");
            (1, SubmitArgs::new().timespec(&idle))
        }
    };
    let mut cqes = Vec::with_capacity(RING_ENTRIES as usize);
    while !shutdown.is_triggered() {
        // The loop's one system call: submit everything queued, wait for the next batch.
        match lp.sq.ring.submitter().submit_with_args(want, &batch) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ETIME)) => {}
            Err(e) => return Err(e),
        }
        cqes.extend(lp.sq.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        for (data, res, flags) in cqes.drain(..) {
            lp.complete(Op::decode(data), res, flags);
        }
        if let Some(e) = lp.sq.broken.take() {
            return Err(e); // an operation could not be submitted: see `Sq::push`
        }
    }
    Ok(())
}

/// Everything the one thread owns. `sq` (the ring) is declared first, so
/// that it is dropped first, before any buffer it may write into.
struct Loop {
    sq: Sq,
    bufs: BufRing,
    conns: Slab<Conn>,
    ctx: Ctx,
    listener: TcpListener,
    accepting: Accepting,
    /// Shared with the shutdown hook, which may outlive `run`.
    wake: Arc<OwnedFd>,
    wake_buf: Box<u64>,
    next_generation: u64,
    timeouts: Timeouts,
}

/// Whether the multishot accept is armed, or paused after EMFILE and its relatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accepting {
    Armed,
    Paused,
}

impl Loop {
    /// The ring, its buffers, and the two operations that are always armed:
    /// the multishot accept, and a read on the eventfd that shutdown writes.
    fn new(listener: TcpListener, common: &CommonOptions, shutdown: &Shutdown) -> io::Result<Loop> {
        let ring = new_ring().map_err(|e| io::Error::other(setup_error(e.raw_os_error(), disabled_sysctl())))?;
        let bufs = BufRing::new(&ring).map_err(|e| buf_ring_error(&e))?;
        // SAFETY: eventfd(2) returns a new descriptor we own, or -1.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if wake < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `wake` is the descriptor eventfd just returned.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(wake) });
        // Shutdown arrives on the signal thread; a write to the eventfd
        // completes the read the ring holds on it, which ends the wait. The
        // hook holds the descriptor open as long as the Shutdown lives, so
        // a trigger after `run` returned never writes to a closed (or
        // reused) descriptor.
        let hook_fd = wake.clone();
        shutdown.on_trigger(move || {
            // SAFETY: writing 8 bytes from a live u64 to an eventfd the closure keeps open.
            unsafe { libc::write(hook_fd.as_raw_fd(), (&1u64 as *const u64).cast(), 8) };
        });
        let mut lp = Loop {
            sq: Sq { ring, timers: Slab::new(), broken: None },
            bufs,
            conns: Slab::new(),
            ctx: Ctx { protocol: common.protocol, max_frame: common.max_frame },
            accepting: Accepting::Armed,
            wake,
            wake_buf: Box::new(0),
            listener,
            next_generation: 0,
            timeouts: Timeouts::of(common),
        };
        lp.arm_accept();
        lp.sq.timer(lp.timeouts.period(), TimerKind::StallCheck);
        let wake_read = opcode::Read::new(Fd(lp.wake.as_raw_fd()), (&mut *lp.wake_buf as *mut u64).cast(), 8);
        lp.sq.push(wake_read.build(), Op::Wake);
        Ok(lp)
    }

    fn arm_accept(&mut self) {
        let accept = opcode::AcceptMulti::new(Fd(self.listener.as_raw_fd())).flags(libc::SOCK_CLOEXEC);
        self.sq.push(accept.build(), Op::Accept);
        self.accepting = Accepting::Armed;
    }

    fn complete(&mut self, op: Op, res: i32, flags: u32) {
        match op {
            Op::Accept => self.on_accept(res, cqueue::more(flags)),
            Op::Wake | Op::Ignore => {} // shutdown: the `while` condition sees it
            Op::Recv(key) => self.on_recv(key, res, flags),
            Op::Send(key) => {
                self.conns[key].on_send(res, &mut self.sq);
                self.drive(key);
            }
            Op::Timer(t) => self.on_timer(t),
        }
    }

    /// A new connection, or an accept error. Multishot accept stops at an
    /// error: re-arm at once, or after a pause when out of descriptors.
    fn on_accept(&mut self, res: i32, more: bool) {
        if res >= 0 {
            // SAFETY: the kernel just gave us this descriptor.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            // Past --max-connections: dropped, so closed at once.
            if COUNTERS.admit() {
                self.insert(fd);
            }
        } else {
            let e = io::Error::from_raw_os_error(-res);
            if !net::is_per_connection(&e) && e.raw_os_error() != Some(libc::ECANCELED) {
                let what = if net::is_resource_exhaustion(&e) { "out of resources" } else { "unexpected error" };
                ACCEPT_FAILED.log(format_args!("{what}: {e}; pausing accepts for {ACCEPT_PAUSE:?}"));
                self.accepting = Accepting::Paused;
                if more {
                    self.sq.push(opcode::AsyncCancel::new(Op::Accept.encode()).build(), Op::Ignore);
                }
            }
        }
        if !more {
            match self.accepting {
                Accepting::Armed => self.arm_accept(),
                Accepting::Paused => self.sq.timer(ACCEPT_PAUSE, TimerKind::ResumeAccept),
            }
        }
    }

    /// Take over an accepted socket, with TCP_NODELAY as every model sets it.
    fn insert(&mut self, fd: OwnedFd) {
        let open = OpenConnection::accepted();
        let _ = socket2::SockRef::from(&fd).set_tcp_nodelay(true);
        let entry = self.conns.vacant_entry();
        let owner = Owner { key: entry.key(), generation: self.next_generation };
        self.next_generation += 1;
        let (input, sending, output) = (Vec::new(), Vec::new(), Vec::new());
        let (state, recv, sent, pending) = (State::Open, RecvOp::Idle, 0, 0);
        let (reading, writing) = (Watch::default(), Watch::default());
        entry.insert(Conn {
            fd,
            owner,
            state,
            recv,
            input,
            sending,
            sent,
            output,
            pending,
            reading,
            writing,
            _open: open,
        });
        self.drive(owner.key);
    }

    /// A recv completed; its data, if any, is in the buffer ring.
    fn on_recv(&mut self, key: usize, res: i32, flags: u32) {
        let conn = &mut self.conns[key];
        let more = cqueue::more(flags);
        match cqueue::buffer_select(flags) {
            Some(bid) => {
                conn.on_recv(res, more, self.bufs.get(bid, res.max(0) as usize), &mut self.sq, &self.ctx);
                self.bufs.give_back(bid);
            }
            None => conn.on_recv(res, more, &[], &mut self.sq, &self.ctx), // end of stream, or an error
        }
        self.drive(key);
    }

    fn on_timer(&mut self, t: usize) {
        let timer = self.sq.timers.remove(t);
        let owner = match timer.kind {
            TimerKind::ResumeAccept => return self.arm_accept(),
            TimerKind::StallCheck => {
                self.sq.timer(self.timeouts.period(), TimerKind::StallCheck);
                return self.close_stalled();
            }
            TimerKind::Delay(owner, _) | TimerKind::Linger(owner) => owner,
        };
        // Its connection closed first: nobody is waiting for it.
        let Some(conn) = self.conns.get_mut(owner.key).filter(|c| c.owner == owner) else { return };
        match timer.kind {
            TimerKind::Delay(_, frame) => {
                conn.pending -= 1;
                if conn.state != State::Closing {
                    dispatch::queue_reply(&frame, &mut conn.output);
                }
            }
            _ if conn.state == State::Lingering => conn.close(&mut self.sq),
            _ => {}
        }
        self.drive(owner.key);
    }

    /// Close every connection whose partial frame stopped arriving, or
    /// whose answers stopped leaving, for longer than its limit (`stall`).
    fn close_stalled(&mut self) {
        let (partial, write) = (self.timeouts.partial_frame_periods(), self.timeouts.write_periods());
        let mut stalled = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            // Input held back by flow control is whole requests, not a partial frame.
            let frame_started = conn.state == State::Open && !conn.input.is_empty() && !conn.over_limit();
            if conn.writing.stalled(conn.unsent() > 0, write) {
                COUNTERS.write_timeout();
                stalled.push(key);
            } else if conn.reading.stalled(frame_started, partial) {
                COUNTERS.partial_frame_timeout();
                stalled.push(key);
            }
        }
        for key in stalled {
            self.conns[key].close(&mut self.sq);
            self.drive(key);
        }
    }

    /// Let a connection start what it can; drop it once nothing is in flight.
    fn drive(&mut self, key: usize) {
        if !self.conns[key].step(&mut self.sq, &self.ctx) {
            return;
        }
        let conn = self.conns.remove(key);
        if !conn.input.is_empty() {
            COUNTERS.error(); // dropped with a request in it (closed mid-frame)
        }
        // Dropping it closes the socket and counts it closed.
    }
}

/// One client socket.
struct Conn {
    fd: OwnedFd,
    owner: Owner,
    state: State,
    recv: RecvOp,
    /// Bytes received, not yet parsed: a partial frame, or frames held back by flow control.
    input: Vec<u8>,
    /// In flight (`sending[sent..]`) while not empty; answers queue in `output` meanwhile.
    sending: Vec<u8>,
    sent: usize,
    output: Vec<u8>,
    /// DELAY answers promised and not yet queued.
    pending: usize,
    /// Whether bytes arrive and leave, for the stall checks.
    reading: Watch,
    writing: Watch,
    _open: OpenConnection,
}

/// A connection's life. Closing waits for its in-flight recv and send to
/// complete: until then the kernel may still write into its buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading, answering, sending.
    Open,
    /// The peer sent FIN: answer what arrived, then close.
    ReadClosed,
    /// TOO_LARGE is queued: parse nothing more; once it is sent, shut down
    /// our side and linger.
    TooLarge,
    /// Our FIN is sent; read and discard until the peer's FIN, or [`LINGER`].
    /// Closing with unread input would make the kernel send a reset, which
    /// can destroy answers the client has not read yet.
    Lingering,
    /// Cancelling whatever is in flight; dropped once nothing is.
    Closing,
}

/// Where the connection's receive operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecvOp {
    Idle,
    Armed,
    Cancelling,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.sending.len() - self.sent + self.output.len()
    }

    /// Flow control: the connection stops reading and parsing here, and
    /// goes on once under the limits again.
    fn over_limit(&self) -> bool {
        FLOW.stops_reading(self.unsent(), self.pending)
    }

    /// Requests are still parsed: also after the peer's FIN, for what it sent before.
    fn parsing(&self) -> bool {
        matches!(self.state, State::Open | State::ReadClosed)
    }

    /// Bytes received: parse them straight from the buffer they came in
    /// when nothing is held back, and keep what is left.
    fn on_data(&mut self, data: &[u8], sq: &mut Sq, ctx: &Ctx) {
        COUNTERS.read(data.len());
        self.reading.progress();
        match self.state {
            State::Open if self.input.is_empty() && !self.over_limit() => {
                let used = self.parse(data, sq, ctx);
                self.input.extend_from_slice(&data[used..]);
            }
            State::Open => self.input.extend_from_slice(data),
            // Past a TOO_LARGE, or closing: dropped unread.
            _ => {}
        }
    }

    /// Answer the requests at the front of `data` (`proto::answer_frames`,
    /// through [`Answering`]); return the bytes used. Stops at a partial
    /// frame, or when flow control says so.
    fn parse(&mut self, data: &[u8], sq: &mut Sq, ctx: &Ctx) -> usize {
        if ctx.protocol == Protocol::Raw {
            // The plain byte echo: every read is one "request", answered in full.
            return dispatch::echo_raw(data, &mut self.output);
        }
        if !self.parsing() {
            return 0;
        }
        let done = proto::answer_frames(data, ctx.max_frame, &mut Answering { conn: self, sq });
        if let Stop::TooLarge(e) = done.stop {
            // The payload cannot be skipped: answer, drop the rest, close.
            dispatch::queue_reply(&dispatch::too_large_reply(&e), &mut self.output);
            self.state = State::TooLarge;
            return data.len();
        }
        done.used // the rest: a partial frame, or held back by flow control
    }

    /// Start whatever can be started now: parse held input, send, linger,
    /// arm or cancel the recv, close. True once the connection can go.
    fn step(&mut self, sq: &mut Sq, ctx: &Ctx) -> bool {
        if self.parsing() && !self.input.is_empty() && !self.over_limit() {
            let input = mem::take(&mut self.input);
            let used = self.parse(&input, sq, ctx);
            self.input = input;
            self.input.drain(..used);
        }
        self.start_send(sq);
        let drained = self.unsent() == 0 && self.pending == 0;
        if self.state == State::TooLarge && drained {
            // Every answer is out, TOO_LARGE last: our FIN, then discard until theirs.
            // SAFETY: shutdown(2) on the socket we own.
            unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
            self.state = State::Lingering;
            sq.timer(LINGER, TimerKind::Linger(self.owner));
        }
        if self.state == State::ReadClosed && drained {
            self.close(sq); // a trailing partial frame is dropped, as PROTOCOL.md says
        }
        let want = matches!(self.state, State::Open | State::Lingering) && !self.over_limit();
        match (self.recv, want) {
            (RecvOp::Idle, true) => {
                // Multishot: one recv that completes every time data arrives, each
                // time into a buffer the kernel takes from the buffer ring.
                sq.push(opcode::RecvMulti::new(Fd(self.fd.as_raw_fd()), BGID).build(), Op::Recv(self.owner.key));
                self.recv = RecvOp::Armed;
            }
            (RecvOp::Armed, false) if self.state != State::Closing => self.cancel_recv(sq),
            _ => {}
        }
        self.state == State::Closing && self.recv == RecvOp::Idle && self.sending.is_empty()
    }

    fn cancel_recv(&mut self, sq: &mut Sq) {
        sq.push(opcode::AsyncCancel::new(Op::Recv(self.owner.key).encode()).build(), Op::Ignore);
        self.recv = RecvOp::Cancelling;
    }

    /// One send in flight at a time, of everything queued so far.
    fn start_send(&mut self, sq: &mut Sq) {
        if !self.sending.is_empty() || self.output.is_empty() || self.state == State::Closing {
            return;
        }
        mem::swap(&mut self.sending, &mut self.output);
        self.sent = 0;
        self.push_send(sq);
    }

    fn push_send(&mut self, sq: &mut Sq) {
        let rest = &self.sending[self.sent..];
        let send = opcode::Send::new(Fd(self.fd.as_raw_fd()), rest.as_ptr(), rest.len() as u32);
        sq.push(send.flags(libc::MSG_NOSIGNAL).build(), Op::Send(self.owner.key));
    }

    /// A recv completed: `data` holds what it read (empty at end of stream).
    fn on_recv(&mut self, res: i32, more: bool, data: &[u8], sq: &mut Sq, ctx: &Ctx) {
        if !more {
            self.recv = RecvOp::Idle;
        }
        match res {
            1.. => self.on_data(data, sq, ctx),
            0 => match self.state {
                State::Open | State::TooLarge => self.state = State::ReadClosed,
                State::Lingering => self.close(sq),
                _ => {}
            },
            // Cancelled by us, or out of buffers: `step` re-arms if wanted.
            _ if res == -libc::ECANCELED || res == -libc::ENOBUFS => {}
            _ => self.close(sq), // a reset or any other error ends this connection only
        }
    }

    /// A send completed: go on with a short one, or close on an error.
    fn on_send(&mut self, res: i32, sq: &mut Sq) {
        if res > 0 {
            COUNTERS.wrote(res as usize);
            self.writing.progress();
            self.sent += res as usize;
        }
        if res > 0 && self.sent < self.sending.len() && self.state != State::Closing {
            return self.push_send(sq); // a short send: the rest, from where it stopped
        }
        self.sending.clear();
        self.sent = 0;
        limits::shrink_if_idle(&mut self.sending);
        if res <= 0 {
            self.close(sq);
        }
    }

    /// Stop everything in flight; `step` says when the connection can go.
    fn close(&mut self, sq: &mut Sq) {
        if self.state == State::Closing {
            return;
        }
        self.state = State::Closing;
        if self.recv == RecvOp::Armed {
            self.cancel_recv(sq);
        }
        if !self.sending.is_empty() {
            sq.push(opcode::AsyncCancel::new(Op::Send(self.owner.key).encode()).build(), Op::Ignore);
        }
    }
}

/// What uring does with each request `proto::answer_frames` decodes: as
/// mio-single, but a DELAY is a TIMEOUT in the ring.
struct Answering<'a> {
    conn: &'a mut Conn,
    sq: &'a mut Sq,
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
                self.sq.timer(delay, TimerKind::Delay(conn.owner, frame));
                conn.pending += 1;
            }
            // Inline, as mio-single: every other connection waits.
            Reply::Compute { id, rounds } => {
                dispatch::queue_reply(&dispatch::compute_reply(id, rounds), &mut conn.output)
            }
        }
    }
}

/// What parsing needs to know about the loop.
struct Ctx {
    protocol: Protocol,
    max_frame: u32,
}

/// A connection, told from a later one in the same slab slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    key: usize,
    generation: u64,
}

/// A timeout in the ring, and what to do when it fires.
struct Timer {
    /// Read by the kernel when the timeout is submitted: boxed, so it stays put.
    at: Timespec,
    kind: TimerKind,
}

enum TimerKind {
    /// A DELAY's answer is due.
    Delay(Owner, Frame),
    /// A lingering connection has waited long enough for the peer's FIN.
    Linger(Owner),
    /// Accepting paused long enough.
    ResumeAccept,
    /// Time to look for stalled frames and writes (`stall`), every `Timeouts::period`.
    StallCheck,
}

/// The submission side: the ring, and the timers it has been told about.
struct Sq {
    ring: IoUring,
    timers: Slab<Box<Timer>>,
    /// Set when an operation could not be submitted; `run` returns it.
    broken: Option<io::Error>,
}

impl Sq {
    /// Queue `entry`; submitted with the next `io_uring_enter`, or now if
    /// the queue is full. If the kernel keeps refusing to take a full
    /// queue ([`SUBMIT_TRIES`] times), the entry is dropped and the error
    /// kept in `broken`: the loop's state no longer matches the ring's, so
    /// `run` ends with that error rather than spin or serve wrongly.
    fn push(&mut self, entry: squeue::Entry, op: Op) {
        let entry = entry.user_data(op.encode());
        let mut tries = 0;
        // SAFETY: every buffer an entry points at outlives the operation: a
        // connection is dropped only once its recv and send have completed,
        // a timer's Timespec is boxed and kept until its completion.
        while self.broken.is_none() && unsafe { self.ring.submission().push(&entry) }.is_err() {
            if let Err(e) = self.ring.submit() {
                tries += 1;
                RING_FAILED.log(format_args!("submitting a full queue (try {tries} of {SUBMIT_TRIES}): {e}"));
                if tries == SUBMIT_TRIES {
                    self.broken = Some(e);
                }
                std::thread::yield_now();
            }
        }
    }

    fn timer(&mut self, after: Duration, kind: TimerKind) {
        let timer = Box::new(Timer { at: after.into(), kind });
        let at: *const Timespec = &timer.at;
        let t = self.timers.insert(timer);
        self.push(opcode::Timeout::new(at).build(), Op::Timer(t));
    }
}

/// What a completion is about, packed in its `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Accept,
    Wake,
    /// A cancellation's own completion: nothing to do.
    Ignore,
    Recv(usize),
    Send(usize),
    Timer(usize),
}

impl Op {
    fn encode(self) -> u64 {
        let (kind, key) = match self {
            Op::Accept => (0, 0),
            Op::Wake => (2, 0),
            Op::Ignore => (3, 0),
            Op::Recv(k) => (4, k),
            Op::Send(k) => (5, k),
            Op::Timer(k) => (6, k),
        };
        (key as u64) << 3 | kind
    }

    fn decode(data: u64) -> Op {
        let key = (data >> 3) as usize;
        match data & 7 {
            0 => Op::Accept,
            2 => Op::Wake,
            4 => Op::Recv(key),
            5 => Op::Send(key),
            6 => Op::Timer(key),
            _ => Op::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue the kernel keeps refusing to take ends in an error, not
    /// a spin. The ring is made on another thread, so as SINGLE_ISSUER it
    /// refuses every submit from this one (EEXIST).
    #[test]
    fn a_queue_the_kernel_keeps_refusing_is_an_error_not_a_spin() {
        if let Err(why) = available() {
            eprintln!("skipped: uring is unavailable here: {why}");
            return;
        }
        let ring = std::thread::spawn(new_ring).join().unwrap().unwrap();
        let mut sq = Sq { ring, timers: Slab::new(), broken: None };
        for _ in 0..=RING_ENTRIES {
            sq.push(opcode::Nop::new().build(), Op::Ignore);
        }
        let e = sq.broken.expect("the refused submits are an error");
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");
    }

    #[test]
    fn user_data_round_trips() {
        for op in [Op::Accept, Op::Wake, Op::Ignore, Op::Recv(0), Op::Send(7), Op::Timer(1 << 40)] {
            assert_eq!(Op::decode(op.encode()), op);
        }
    }
}
