//! The admin port: one thread that answers `STATS` however busy the
//! server's other threads are (at real-time priority when asked, with
//! `--admin-realtime`), whose own cost is left out of what it reports, and
//! which no admin client can monopolise.
//!
//! Why. Under thread-per-conn at 5000 connections, 5000 runnable threads
//! share the server's CPU. An ordinary thread woken by a STATS request waits
//! its turn among them, and a thread *created* for each admin connection
//! (as this port once did) is queued behind all of them: the load
//! generator's STATS timed out (after 1 s) in most such runs, and those runs
//! had no server figures, in the very cells the argument is about.
//!
//! How:
//!
//! - One thread does the whole path, accept, read, snapshot and write,
//!   with one mio poll over the listener and the admin connections. No step
//!   waits for another thread, so no step can starve behind one.
//! - Asked with `--admin-realtime` (the sweep asks), it takes `SCHED_FIFO`
//!   priority 1, the lowest real-time priority: once runnable, it runs
//!   before any normal thread, at once. It is runnable only while it
//!   answers (tens of µs per STATS), and the kernel's real-time throttling
//!   (`sched_rt_runtime_us`) caps it anyway. Not asked, it runs at normal
//!   priority: a deployed server whose admin port anyone can reach must not
//!   let them keep a CPU busy at real-time priority.
//! - Where real-time is asked but not permitted (neither root nor
//!   CAP_SYS_NICE, an RLIMIT_RTPRIO of 0, a cgroup without a real-time
//!   budget), it runs at normal priority: `launch` logs why, once, and every
//!   STATS says so (`admin.realtime`, `admin.priority`).
//! - Its clients are bounded, from `limits.rs`: at most
//!   [`ADMIN_MAX_CLIENTS`] at once (the next is accepted and closed at
//!   once), each closed after its idle timeout (`--admin-idle-timeout`),
//!   and each slowed to [`ADMIN_BURST`] requests, then one per
//!   [`ADMIN_REQUEST_INTERVAL`]: past that, the thread stops reading from it
//!   until its next request is due. STATS counts all three
//!   (`admin.clients_refused`, `admin.clients_idle_closed`,
//!   `admin.requests_delayed`).
//! - With each snapshot it reads its own CPU time, context switches and
//!   system calls, which `stats::snapshot_with` subtracts (see `stats.rs`
//!   for what is and is not left out).
//!
//! Only STATS is served here; other methods get UNKNOWN_METHOD.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use proto::{AdminThread, Frame, Request, Status};
use slab::Slab;

use crate::limits::{ACCEPT_PAUSE, ADMIN_BURST, ADMIN_MAX_CLIENTS, ADMIN_REQUEST_INTERVAL};
use crate::log::RateLimited;
use crate::stats::{self, Usage};
use crate::syscount::ThreadCounters;

/// The listener's token; admin connections use their slab key.
const LISTENER: Token = Token(usize::MAX);
/// The largest request payload read on this port (STATS has none).
const MAX_REQUEST: u32 = 4096;
/// A client that lets this many answer bytes pile up unread is dropped.
const OUTPUT_LIMIT: usize = 256 * 1024;
/// The real-time priority asked for: the lowest, above every normal thread.
const FIFO_PRIORITY: i32 = 1;

static ADMIN_ACCEPT: RateLimited = RateLimited::new("admin: accept failed", Duration::from_secs(1));

/// How the admin port is run: the typed form of its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// Ask for real-time priority (`--admin-realtime`).
    pub realtime: bool,
    /// Close a client that neither sends nor takes a byte for this long
    /// (`--admin-idle-timeout`).
    pub idle_timeout: Duration,
}

/// How the admin thread is scheduled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Priority {
    /// `SCHED_FIFO` at [`FIFO_PRIORITY`].
    RealTime,
    /// The normal policy, and why it is not real-time.
    Normal { why: String },
}

impl Priority {
    pub fn is_realtime(&self) -> bool {
        matches!(self, Priority::RealTime)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Priority::RealTime => write!(f, "SCHED_FIFO {FIFO_PRIORITY}"),
            Priority::Normal { why } => write!(f, "SCHED_OTHER: {why}"),
        }
    }
}

/// Start the admin thread on `listener`; returns once it runs, with the
/// priority it got.
pub fn spawn(listener: std::net::TcpListener, config: AdminConfig) -> io::Result<Priority> {
    listener.set_nonblocking(true)?; // mio's from_std leaves that to us
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let (started, priority) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new().name("admin".into()).stack_size(256 * 1024).spawn(move || {
        let admin = Admin::on_this_thread(poll, listener, config);
        let _ = started.send(admin.own.priority.clone());
        if let Err(e) = admin.run() {
            eprintln!("admin: stopped, STATS will go unanswered: {e}");
        }
    })?;
    priority.recv().map_err(|_| io::Error::other("the admin thread ended before it started"))
}

/// The calling thread's priority: real-time if `asked` and permitted.
fn choose_priority(asked: bool) -> Priority {
    if asked {
        raise_priority()
    } else {
        Priority::Normal { why: "real-time not asked (--admin-realtime)".into() }
    }
}

/// Ask for real-time priority for the calling thread.
fn raise_priority() -> Priority {
    let param = libc::sched_param { sched_priority: FIFO_PRIORITY };
    // SAFETY: pthread_self() is this live thread; `param` is a valid sched_param.
    let err = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    match err {
        0 => Priority::RealTime,
        e => {
            Priority::Normal { why: format!("pthread_setschedparam(SCHED_FIFO): {}", io::Error::from_raw_os_error(e)) }
        }
    }
}

/// The admin thread's state.
struct Admin {
    poll: Poll,
    listener: TcpListener,
    clients: Slab<Client>,
    accept_paused_until: Option<Instant>,
    idle_timeout: Duration,
    own: Own,
}

/// What the admin thread knows of itself, to report and to subtract.
struct Own {
    priority: Priority,
    /// This thread's own system calls, where the process's are counted.
    calls: Option<ThreadCounters>,
    /// What it did to keep its clients within bounds.
    bounds: Bounds,
}

/// The admin port's limits at work, as STATS reports them.
#[derive(Clone, Copy, Debug, Default)]
struct Bounds {
    clients_refused: u64,
    clients_idle_closed: u64,
    requests_delayed: u64,
}

impl Own {
    /// This thread's use so far, as STATS reports it.
    fn usage(&self) -> AdminThread {
        let usage = Usage::this_thread(self.calls.as_ref());
        AdminThread {
            realtime: self.priority.is_realtime(),
            priority: self.priority.to_string(),
            user_us: usage.user_us,
            sys_us: usage.sys_us,
            voluntary_ctxt_switches: usage.voluntary,
            involuntary_ctxt_switches: usage.involuntary,
            syscalls: usage.syscalls.map(|(all, _)| all),
            syscalls_wait: usage.syscalls.map(|(_, waits)| waits),
            clients_refused: self.bounds.clients_refused,
            clients_idle_closed: self.bounds.clients_idle_closed,
            requests_delayed: self.bounds.requests_delayed,
        }
    }

    /// STATS now: the process's use less this thread's, read right after
    /// it (in this order, so that the calls between the two reads are the
    /// same in every snapshot and cancel in a difference).
    fn snapshot(&self) -> proto::Stats {
        let process = Usage::process();
        let own = self.usage();
        stats::publish_admin(own.clone());
        stats::snapshot_with(process, Some(own))
    }
}

impl Admin {
    /// Set up on the admin thread itself: the priority and the system-call
    /// counters are the calling thread's.
    fn on_this_thread(poll: Poll, listener: TcpListener, config: AdminConfig) -> Admin {
        let own = Own {
            priority: choose_priority(config.realtime),
            calls: ThreadCounters::open_for_this_thread(),
            bounds: Bounds::default(),
        };
        // Snapshots taken on other threads subtract this from the start.
        stats::publish_admin(own.usage());
        Admin {
            poll,
            listener,
            clients: Slab::new(),
            accept_paused_until: None,
            idle_timeout: config.idle_timeout,
            own,
        }
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            let timeout = self.next_deadline().map(|t| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    Token(key) => self.serve(key),
                }
            }
            let now = Instant::now();
            if self.accept_paused_until.is_some_and(|t| now >= t) {
                // The connections waiting in the backlog bring no new edge.
                self.accept_all();
            }
            self.wake_due_clients(now);
        }
    }

    /// The earliest moment something is due without an event: accepting
    /// again, a slowed client's next request, an idle client's close.
    fn next_deadline(&self) -> Option<Instant> {
        let clients = self.clients.iter().map(|(_, c)| c.deadline(self.idle_timeout));
        clients.chain(self.accept_paused_until).min()
    }

    /// Serve the slowed clients whose next request is due (edge-triggered:
    /// their unread bytes bring no new event), and close the idle ones.
    fn wake_due_clients(&mut self, now: Instant) {
        let due: Vec<(usize, bool)> = self
            .clients
            .iter()
            .filter_map(|(key, c)| match c.throttled_until {
                Some(t) => (now >= t).then_some((key, false)),
                None => (now >= c.last_active + self.idle_timeout).then_some((key, true)),
            })
            .collect();
        for (key, idle) in due {
            if idle {
                self.own.bounds.clients_idle_closed += 1;
                self.close(key);
            } else {
                self.serve(key);
            }
        }
    }

    /// Accept every waiting connection; on EMFILE and the like, log and
    /// pause (the connection stays in the backlog, and accepting again at
    /// once would fail again at once).
    fn accept_all(&mut self) {
        self.accept_paused_until = None;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.add(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if crate::net::is_per_connection(&e) => {}
                Err(e) => {
                    ADMIN_ACCEPT.log(format_args!("{e}; pausing for {ACCEPT_PAUSE:?}"));
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Take `stream` on as a client, or close it at once (dropped) when the
    /// port has its most clients already.
    fn add(&mut self, mut stream: TcpStream) {
        if self.clients.len() >= ADMIN_MAX_CLIENTS {
            self.own.bounds.clients_refused += 1;
            return;
        }
        let _ = stream.set_nodelay(true);
        let entry = self.clients.vacant_entry();
        // Both directions once, for good: edge-triggered, so an idle
        // client costs no wake-ups, and a writable edge comes only after a
        // write that did not fit.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self.poll.registry().register(&mut stream, Token(entry.key()), interest).is_ok() {
            entry.insert(Client::new(stream, Instant::now()));
        }
    }

    /// Do everything that can be done for one client now; close it when it
    /// is finished or broken.
    fn serve(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else { return };
        let own = &self.own;
        let mut delayed = 0;
        let outcome = client.read_and_answer(|id| stats::frame(id, &own.snapshot()), &mut delayed);
        self.own.bounds.requests_delayed += delayed;
        let done = outcome.and_then(|()| client.flush()).map_or(true, |()| client.is_finished());
        if done {
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        let mut client = self.clients.remove(key);
        let _ = self.poll.registry().deregister(&mut client.stream);
    }
}

/// Where an admin connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading requests and answering them.
    Serving,
    /// Nothing more will be read (the peer closed its side, or sent what is
    /// not a request frame): send what is queued, then close.
    Finishing,
}

struct Client {
    stream: TcpStream,
    /// Bytes read and not yet a whole frame, or a whole request held back
    /// by the rate limit.
    input: Vec<u8>,
    /// Encoded answers not yet written.
    output: Vec<u8>,
    phase: Phase,
    /// The client's request budget ([`ADMIN_BURST`] at once, one more per
    /// [`ADMIN_REQUEST_INTERVAL`]).
    budget: Budget,
    /// Set while a request waits for the budget: nothing more is read from
    /// this client until then.
    throttled_until: Option<Instant>,
    /// The last time a byte went either way.
    last_active: Instant,
}

impl Client {
    fn new(stream: TcpStream, now: Instant) -> Client {
        Client {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            phase: Phase::Serving,
            budget: Budget::new(now),
            throttled_until: None,
            last_active: now,
        }
    }

    /// When this client needs the thread without an event: its next
    /// request's turn, or else its idle timeout.
    fn deadline(&self, idle_timeout: Duration) -> Instant {
        self.throttled_until.unwrap_or(self.last_active + idle_timeout)
    }

    /// Answer the whole requests already read, then read until the socket
    /// is drained, answering each whole request with `stats_answer(id)`
    /// (STATS) or an error status as it arrives; stop reading while a
    /// request waits for the budget (adding one to `delayed` when it begins
    /// to wait). `Err`: the connection is broken and must be closed.
    fn read_and_answer(&mut self, mut stats_answer: impl FnMut(u64) -> Frame, delayed: &mut u64) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        self.answer_whole_requests(&mut stats_answer, delayed);
        while self.phase == Phase::Serving && self.throttled_until.is_none() {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.phase = Phase::Finishing,
                Ok(n) => {
                    self.last_active = Instant::now();
                    self.input.extend_from_slice(&chunk[..n]);
                    self.answer_whole_requests(&mut stats_answer, delayed);
                    if self.output.len() > OUTPUT_LIMIT {
                        return Err(io::Error::other("admin client does not read its answers"));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn answer_whole_requests(&mut self, stats_answer: &mut impl FnMut(u64) -> Frame, delayed: &mut u64) {
        loop {
            match proto::decode_with_limit(&self.input, MAX_REQUEST) {
                Ok(Some((req, used))) => {
                    if let Err(due) = self.budget.take(Instant::now()) {
                        // Held, whole, in `input` until it is due; counted
                        // once, however often the client wakes us meanwhile.
                        if self.throttled_until.replace(due).is_none() {
                            *delayed += 1;
                        }
                        return;
                    }
                    self.throttled_until = None;
                    self.input.drain(..used);
                    proto::encode(&answer(req, stats_answer), &mut self.output);
                }
                Ok(None) => return,
                Err(_) => {
                    // Not a frame we can skip: stop reading, answer nothing more.
                    self.phase = Phase::Finishing;
                    return;
                }
            }
        }
    }

    /// Write what is queued until it is out or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.output.drain(..n);
                    self.last_active = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.phase == Phase::Finishing && self.output.is_empty()
    }
}

/// A client's request budget, kept as the time its budget is next full
/// (a token bucket of [`ADMIN_BURST`] tokens, one back per
/// [`ADMIN_REQUEST_INTERVAL`], in one number).
struct Budget {
    full_at: Instant,
}

impl Budget {
    fn new(now: Instant) -> Budget {
        Budget { full_at: now }
    }

    /// Spend one request's worth now, or `Err(when)` one is next available.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let full_at = self.full_at.max(now) + ADMIN_REQUEST_INTERVAL;
        let burst = ADMIN_REQUEST_INTERVAL * ADMIN_BURST;
        match full_at.checked_sub(burst) {
            Some(available_at) if available_at > now => Err(available_at),
            _ => {
                self.full_at = full_at;
                Ok(())
            }
        }
    }
}

/// The answer to one request on the admin port.
fn answer(req: Frame, stats_answer: &mut impl FnMut(u64) -> Frame) -> Frame {
    match proto::classify(&req) {
        Ok(Request::Stats) => stats_answer(req.id),
        Ok(_) => Frame::response(req.id, req.method, Status::UnknownMethod, b"admin port serves STATS only".to_vec()),
        Err((status, msg)) => Frame::response(req.id, req.method, status, msg.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst at once, then one per interval; after a quiet spell, a
    /// whole burst again.
    #[test]
    fn a_budget_allows_a_burst_then_one_per_interval() {
        let t0 = Instant::now();
        let mut budget = Budget::new(t0);
        for i in 0..ADMIN_BURST {
            assert_eq!(budget.take(t0), Ok(()), "request {i} of the burst");
        }
        let due = budget.take(t0).unwrap_err();
        assert_eq!(due, t0 + ADMIN_REQUEST_INTERVAL);
        assert_eq!(budget.take(due), Ok(()));
        assert_eq!(budget.take(due), Err(due + ADMIN_REQUEST_INTERVAL));
        let later = due + ADMIN_REQUEST_INTERVAL * ADMIN_BURST;
        for i in 0..ADMIN_BURST {
            assert_eq!(budget.take(later), Ok(()), "request {i} of the burst after a quiet spell");
        }
        assert!(budget.take(later).is_err());
    }
}
