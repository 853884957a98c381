//! One load-generating thread: a mio `Poll` over its share of the
//! connections, in the shape of mio's `examples/tcp_server.rs`.
//!
//! A thread first opens its connections ([`super::connect`]), paced in batches every 50 ms so the
//! server's listen backlog never overflows. Then it sends one request on
//! each and waits until every one is answered (at most `--connect-timeout`),
//! so that no connection gets its first answer inside the measured window,
//! and reports how both went. Then it waits for the start signal (the same
//! instant for every thread) and runs the load until the window ends and
//! its answers are in, or the drain runs out, or the run is stopped.
//!
//! Open loop, nothing the schedule owes the window may vanish: a connection
//! keeps one request in flight, so one whose answer never comes sends
//! nothing more; at the end every request it still owed the window is
//! counted as unsent and charged from its intended time (see
//! [`WorkerReport`]).
//!
//! Per poll wake-up it reads each ready connection until WouldBlock,
//! settles the answers, queues the next requests and writes them in one
//! write. The clock is read once per ready connection. Timers (the open
//! loop's intended send times, `--think-us`, under which the connections'
//! first requests are spread evenly over one think time) sit in a binary heap, and a
//! `timerfd` wakes the poll for the earliest one with microsecond precision
//! (epoll's own timeout has only milliseconds, which would add up to 1 ms to
//! every open-loop latency). Timeouts are checked every `--timeout`/20
//! (10 to 100 ms), never per event.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::conn::{Closed, Conn, Ctx, State, Tally};
use super::connect::{connect_all, ConnectReport};
use super::histo::{self, Hist};
use super::plan::{LoadPlan, Shared, HOUSEKEEPING};
use super::sampler::describe_io;
use super::schedule::{OpenSchedule, Timeline};
use crate::records::config::Shape;

const TIMER: Token = Token(usize::MAX);

/// What a connection needs from its thread, on this timeline.
fn ctx<'p>(plan: &'p LoadPlan, timeline: Timeline, on_bucket: &'p mut dyn FnMut(usize, Hist, u64)) -> Ctx<'p> {
    Ctx {
        workload: &plan.workload,
        protocol: plan.protocol,
        timeline,
        target: plan.target,
        open_loop: matches!(plan.shape, Shape::Open { .. }),
        on_bucket,
    }
}

/// A full one-second bucket: (bucket, latency histogram, OK answers).
pub type Bucket = (usize, Hist, u64);

pub struct WorkerReport {
    pub tally: Tally,
    pub in_flight_end: u64,
    /// Answered (OK or error) in the window, per established connection.
    pub answered_per_conn: Vec<u64>,
    pub first_answer_us: Hist,
    /// The connections never served, by index.
    pub never_served_conns: Vec<u64>,
    pub stuck: u64,
    /// Open loop: (connection index, requests it owed the window and never
    /// sent), for every connection that owed any.
    pub unsent_conns: Vec<(u64, u64)>,
    /// When this thread stopped sending and reading.
    pub ended_at: Instant,
    /// Every established connection was closed by the server.
    pub all_closed: bool,
    /// The connections, still open: they close when the report is dropped,
    /// after the end-of-window STATS snapshot, so that the server's
    /// `connections_open` there still counts them.
    _conns: Vec<Conn>,
}

/// Run one thread: connect, report, wait for the start, load.
pub fn worker(
    plan: Arc<LoadPlan>,
    shared: Arc<Shared>,
    indices: Vec<u64>,
    connected: Sender<ConnectReport>,
    start: Receiver<Option<Timeline>>,
    buckets: Sender<Bucket>,
) -> io::Result<Option<WorkerReport>> {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            let first_error = Some(format!("cannot create a mio Poll: {e}"));
            let _ =
                connected.send(ConnectReport { failed: indices.len() as u64, first_error, ..ConnectReport::default() });
            return Err(e);
        }
    };
    let mut events = Events::with_capacity(1024);
    let (mut conns, mut report) = connect_all(&plan, &shared, &mut poll, &mut events, &indices);
    let mut engine = Engine {
        plan: &plan,
        shared: &shared,
        poll,
        timer: TimerFd::new()?,
        timers: BinaryHeap::with_capacity(conns.len()),
        tally: Tally::new(),
        // Until the start signal: a timeline whose window is already over,
        // so that nothing the probe sends or receives is counted.
        timeline: Timeline::new(Instant::now(), Duration::ZERO, Duration::ZERO, Duration::ZERO),
        schedule: None,
        buckets,
    };
    report.unanswered = engine.probe(&mut conns, &mut events);
    let _ = connected.send(report);
    let Ok(Some(timeline)) = start.recv() else { return Ok(None) };
    engine.timeline = timeline;
    engine.schedule = match plan.shape {
        Shape::Open { rate } => Some(OpenSchedule { start: timeline.start, rate, connections: plan.connections }),
        Shape::Closed { .. } => None,
    };
    engine.poll.registry().register(&mut SourceFd(&engine.timer.fd.as_raw_fd()), TIMER, Interest::READABLE)?;
    let all_closed = engine.run(&mut conns, &mut events)?;
    Ok(Some(engine.finish(conns, all_closed)))
}

struct Engine<'a> {
    plan: &'a LoadPlan,
    shared: &'a Shared,
    poll: Poll,
    timer: TimerFd,
    /// (when, connection): one send each.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    tally: Tally,
    timeline: Timeline,
    schedule: Option<OpenSchedule>,
    buckets: Sender<Bucket>,
}

impl Engine<'_> {
    /// Before the load: one request on every connection, then wait until
    /// each is answered, or `--connect-timeout` passes. Returns the indices
    /// of the connections still unanswered (open, or closed by the server). Their request stays
    /// pending (an open-loop connection then sends nothing more until it is
    /// answered), and it is not counted: the timeline's window is over.
    fn probe(&mut self, conns: &mut [Conn], events: &mut Events) -> Vec<u64> {
        let now = Instant::now();
        for c in conns.iter_mut() {
            self.queue(c, now, now, &mut |_, _, _| {});
            self.flush_or_drop(c);
        }
        let deadline = now + self.plan.connect_timeout;
        let waiting =
            |conns: &[Conn]| conns.iter().filter(|c| c.state == State::Open && c.first_answer.is_none()).count();
        while waiting(conns) > 0 && !self.shared.stop.load(Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.poll.poll(events, Some((deadline - now).min(HOUSEKEEPING))) {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => break,
                _ => {}
            }
            for event in events.iter() {
                let c = &mut conns[event.token().0];
                if c.state == State::Open {
                    self.on_event(c, event, &mut |_, _, _| {});
                }
            }
        }
        // Closed ones too: the server closed them (or sent garbage) before
        // answering their first request.
        conns.iter().filter(|c| c.first_answer.is_none()).map(|c| c.index).collect()
    }

    /// A connection is ready: write what is left over, read and settle what
    /// came back. Returns the number of requests settled (0 if it was not
    /// readable) and the time of the last read, or `None` if the
    /// connection was lost.
    fn on_event(
        &mut self,
        c: &mut Conn,
        event: &mio::event::Event,
        on_bucket: &mut dyn FnMut(usize, Hist, u64),
    ) -> Option<(usize, Instant)> {
        if event.is_writable() && self.flush_or_drop(c) == 1 {
            return None;
        }
        if !(event.is_readable() || event.is_read_closed() || event.is_error()) {
            return Some((0, Instant::now()));
        }
        let mut ctx = ctx(self.plan, self.timeline, on_bucket);
        match c.on_readable(&mut ctx, &mut self.tally) {
            Ok(settled) => Some(settled),
            Err(why) => {
                self.lost(c, why);
                None
            }
        }
    }

    /// The load loop, until the window's answers are in, the drain runs
    /// out, every connection is lost or the run is stopped. Returns true if
    /// the server closed every connection.
    fn run(&mut self, conns: &mut [Conn], events: &mut Events) -> io::Result<bool> {
        let t = self.timeline;
        std::thread::sleep(t.start.saturating_duration_since(Instant::now()));
        let buckets = self.buckets.clone();
        let mut on_bucket = move |k: usize, h: Hist, n: u64| {
            let _ = buckets.send((k, h, n));
        };
        let mut open = conns.iter().filter(|c| c.state == State::Open).count();
        open -= self.first_sends(conns, &mut on_bucket);
        let mut chores = Chores::new(self.plan.timeout);
        loop {
            let now = Instant::now();
            if now >= t.run_end || self.shared.stop.load(Relaxed) || open == 0 {
                break;
            }
            self.housekeeping(conns, now, &mut chores);
            open -= self.due_timers(conns, now, &mut on_bucket);
            if now >= t.window_end && self.tally.unresolved == 0 {
                break;
            }
            let wait = self.wait(now, chores.next);
            if let Err(e) = self.poll.poll(events, Some(wait)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            open -= self.on_events(conns, events, &mut on_bucket);
        }
        self.last_bucket(&mut on_bucket);
        self.shared.answered.fetch_add(self.tally.answered_all - chores.reported, Relaxed);
        Ok(open == 0 && !conns.is_empty())
    }

    /// Every open connection's first requests of the load, as the shape
    /// says. Returns how many connections were lost.
    fn first_sends(&mut self, conns: &mut [Conn], on_bucket: &mut dyn FnMut(usize, Hist, u64)) -> usize {
        let t = self.timeline;
        let n = conns.len();
        let mut lost = 0;
        for (i, c) in conns.iter_mut().enumerate().filter(|(_, c)| c.state == State::Open) {
            let now = Instant::now();
            match self.plan.shape {
                // A probe still unanswered takes one of the slots.
                Shape::Closed { depth, think } if think.is_zero() => {
                    for _ in c.pending.len()..depth as usize {
                        self.send(c, now, on_bucket);
                    }
                }
                // All of a connection's slots start together (its requests
                // go out as one pipelined burst), but connection i of n
                // starts i/n of a think time in: without that, every
                // connection would send at the same instant, think, and
                // send again, in waves that the server sees as bursts.
                Shape::Closed { depth, think } => {
                    let at = t.start + think.mul_f64(i as f64 / n as f64);
                    for _ in c.pending.len()..depth as usize {
                        self.timers.push(Reverse((at, i)));
                    }
                }
                Shape::Open { .. } => self.schedule_next(c, now, t.start, on_bucket),
            }
            lost += self.flush_or_drop(c);
        }
        lost
    }

    /// Report the answers so far to the main thread, and now and then
    /// count the requests that timed out.
    fn housekeeping(&mut self, conns: &mut [Conn], now: Instant, chores: &mut Chores) {
        if now < chores.next {
            return;
        }
        chores.next = now + HOUSEKEEPING;
        // Walking every connection costs cache misses at 5000 of them: do
        // it only as often as --timeout needs (a timeout is counted at most
        // a twentieth of it late, 100 ms at most).
        if now >= chores.next_sweep {
            chores.next_sweep = now + chores.sweep_every;
            for c in conns.iter_mut().filter(|c| c.state == State::Open) {
                c.sweep_timeouts(&mut self.tally, self.plan.timeout, now);
            }
        }
        self.shared.answered.fetch_add(self.tally.answered_all - chores.reported, Relaxed);
        chores.reported = self.tally.answered_all;
    }

    /// Timers that are due: one send each. Returns how many connections
    /// were lost.
    fn due_timers(&mut self, conns: &mut [Conn], now: Instant, on_bucket: &mut dyn FnMut(usize, Hist, u64)) -> usize {
        let mut lost = 0;
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let c = &mut conns[i];
            if c.state != State::Open {
                continue;
            }
            match self.schedule {
                // The connection was free when this timer was set.
                Some(_) => self.send_scheduled(c, at, at, now, on_bucket),
                None if now < self.timeline.window_end => self.queue(c, now, now, on_bucket),
                None => {}
            }
            lost += self.flush_or_drop(c);
        }
        lost
    }

    /// How long the poll may wait: until the next chore, the end of the run
    /// or the next timer (for which the timerfd is armed).
    fn wait(&mut self, now: Instant, next_chore: Instant) -> Duration {
        let mut wait = next_chore.min(self.timeline.run_end).saturating_duration_since(now);
        if let Some(&Reverse((at, _))) = self.timers.peek() {
            if self.timer.armed.is_none_or(|a| a <= now || at < a) {
                self.timer.arm(at, now);
            }
            // A millisecond later at most, should the timerfd not wake us.
            wait = wait.min(at.saturating_duration_since(now) + Duration::from_millis(1));
        }
        wait
    }

    /// Every ready connection: read and settle its answers, then send on
    /// ([`Engine::send_on`]). Returns how many connections were lost.
    fn on_events(&mut self, conns: &mut [Conn], events: &Events, on_bucket: &mut dyn FnMut(usize, Hist, u64)) -> usize {
        let mut lost = 0;
        for event in events.iter() {
            if event.token() == TIMER {
                self.timer.clear();
                continue;
            }
            let i = event.token().0;
            let c = &mut conns[i];
            if c.state != State::Open {
                continue;
            }
            match self.on_event(c, event, on_bucket) {
                Some((0, _)) => {}
                Some((settled, now)) => {
                    self.send_on(c, i, settled, now, on_bucket);
                    lost += self.flush_or_drop(c);
                }
                None => lost += 1,
            }
        }
        lost
    }

    /// After `settled` answers on connection `i` (at `now`): its next
    /// requests, as the shape says.
    fn send_on(
        &mut self,
        c: &mut Conn,
        i: usize,
        settled: usize,
        now: Instant,
        on_bucket: &mut dyn FnMut(usize, Hist, u64),
    ) {
        match self.plan.shape {
            Shape::Closed { think, .. } if think.is_zero() => {
                if now < self.timeline.window_end {
                    for _ in 0..settled {
                        self.queue(c, now, now, on_bucket);
                    }
                }
            }
            Shape::Closed { think, .. } => {
                for _ in 0..settled {
                    self.timers.push(Reverse((now + think, i)));
                }
            }
            Shape::Open { .. } => self.schedule_next(c, now, now, on_bucket),
        }
    }

    /// Hand the window's last, partial bucket to the main thread.
    fn last_bucket(&mut self, on_bucket: &mut dyn FnMut(usize, Hist, u64)) {
        let last = std::mem::replace(&mut self.tally.bucket, (0, histo::new_hist(), 0));
        if last.2 > 0 {
            on_bucket(last.0, last.1, last.2);
        }
    }

    /// Write what the connection has queued; one whose write fails is lost.
    /// Returns 1 if it was (for the open count), else 0.
    fn flush_or_drop(&mut self, c: &mut Conn) -> usize {
        match c.flush(self.poll.registry()) {
            Ok(_) => 0,
            Err(e) => self.lost(c, Closed::Reset(describe_io(&e))),
        }
    }

    fn queue(&mut self, c: &mut Conn, start: Instant, now: Instant, on_bucket: &mut dyn FnMut(usize, Hist, u64)) {
        let ctx = ctx(self.plan, self.timeline, on_bucket);
        c.queue(&ctx, &mut self.tally, start, now);
    }

    /// Closed loop: queue a request now (if the window is still open).
    fn send(&mut self, c: &mut Conn, now: Instant, on_bucket: &mut dyn FnMut(usize, Hist, u64)) {
        if now < self.timeline.window_end {
            self.queue(c, now, now, on_bucket);
        }
    }

    /// Open loop, with nothing in flight (since `free_since`): send the
    /// connection's next request now if its intended time has passed, or
    /// set a timer for it. Requests intended after the window are never
    /// sent.
    fn schedule_next(
        &mut self,
        c: &mut Conn,
        now: Instant,
        free_since: Instant,
        on_bucket: &mut dyn FnMut(usize, Hist, u64),
    ) {
        let Some(s) = self.schedule else { return };
        if !c.pending.is_empty() {
            return;
        }
        let at = s.intended(c.index, c.next_k);
        if at >= self.timeline.window_end {
            return;
        }
        if at <= now {
            self.send_scheduled(c, at, free_since, now, on_bucket);
        } else {
            self.timers.push(Reverse((at, c.token.0)));
        }
    }

    /// Open loop: send the request intended `at`, its latency counted from
    /// there. If the connection was free at that time, the delay until now
    /// is the load generator's own lateness (its send lag); if not, the
    /// request was held back by the answer it waited for.
    fn send_scheduled(
        &mut self,
        c: &mut Conn,
        at: Instant,
        free_since: Instant,
        now: Instant,
        on_bucket: &mut dyn FnMut(usize, Hist, u64),
    ) {
        if self.timeline.in_window(at) {
            if free_since <= at {
                histo::record(&mut self.tally.send_lag, now.saturating_duration_since(at));
            } else {
                self.tally.held_back += 1;
            }
        }
        c.next_k += 1;
        self.queue(c, at, now, on_bucket);
    }

    /// A connection is gone; returns 1 (for the open count).
    fn lost(&mut self, c: &mut Conn, why: Closed) -> usize {
        match why {
            Closed::Reset(e) => {
                self.tally.resets += 1;
                self.tally.first_close.get_or_insert(format!("--target {}: {e}", self.plan.target));
            }
            Closed::Garbage(e) => {
                self.tally.mismatches_total += 1;
                self.tally.garbage.get_or_insert(e);
            }
        }
        c.close(self.poll.registry(), &mut self.tally, Instant::now());
        self.shared.open.fetch_sub(1, Relaxed);
        1
    }

    fn finish(mut self, mut conns: Vec<Conn>, all_closed: bool) -> WorkerReport {
        let ended_at = Instant::now();
        for c in conns.iter_mut().filter(|c| c.state == State::Open) {
            c.sweep_timeouts(&mut self.tally, self.plan.timeout, ended_at);
        }
        let unsent_conns = self.account_unsent(&conns, ended_at);
        let mut first_answer_us = histo::new_hist();
        let mut never_served_conns = Vec::new();
        for c in &conns {
            match c.first_answer {
                Some(d) => histo::record(&mut first_answer_us, d),
                None => never_served_conns.push(c.index),
            }
        }
        WorkerReport {
            in_flight_end: conns.iter().map(Conn::in_flight).sum(),
            answered_per_conn: conns.iter().map(|c| c.answered_window).collect(),
            first_answer_us,
            never_served_conns,
            unsent_conns,
            stuck: conns.iter().filter(|c| c.stuck).count() as u64,
            ended_at,
            all_closed,
            tally: self.tally,
            _conns: conns,
        }
    }

    /// Open loop: count what the schedule owed the window, and charge every
    /// request of it that was never sent from its intended time until the
    /// end of the run. Returns (connection, unsent)
    /// for every connection that left some unsent.
    fn account_unsent(&mut self, conns: &[Conn], ended_at: Instant) -> Vec<(u64, u64)> {
        let Some(s) = self.schedule else { return vec![] };
        let t = self.timeline;
        let mut owing = Vec::new();
        for c in conns {
            let owed = s.within(c.index, t.warmup_end, t.window_end);
            self.tally.scheduled += owed.end - owed.start;
            // A connection sends its schedule in order: what it never sent
            // is everything from its next request on.
            let unsent = c.next_k.max(owed.start)..owed.end;
            for k in unsent.clone() {
                histo::record(&mut self.tally.corrected, ended_at.saturating_duration_since(s.intended(c.index, k)));
            }
            let n = unsent.end.saturating_sub(unsent.start);
            if n > 0 {
                self.tally.unsent += n;
                owing.push((c.index, n));
            }
        }
        owing
    }
}

/// When the load loop next reports its counts and looks for timeouts.
struct Chores {
    next: Instant,
    next_sweep: Instant,
    sweep_every: Duration,
    /// Answers already reported to the main thread.
    reported: u64,
}

impl Chores {
    fn new(timeout: Duration) -> Chores {
        let now = Instant::now();
        Chores {
            next: now,
            next_sweep: now,
            sweep_every: (timeout / 20).clamp(HOUSEKEEPING, Duration::from_millis(100)),
            reported: 0,
        }
    }
}

/// A one-shot timer with microsecond resolution that a mio Poll can wait on.
struct TimerFd {
    fd: OwnedFd,
    armed: Option<Instant>,
}

impl TimerFd {
    fn new() -> io::Result<TimerFd> {
        // SAFETY: timerfd_create has no preconditions; the fd is checked.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        Ok(TimerFd { fd: unsafe { OwnedFd::from_raw_fd(fd) }, armed: None })
    }

    fn arm(&mut self, at: Instant, now: Instant) {
        let d = at.saturating_duration_since(now).max(Duration::from_micros(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long },
        };
        // SAFETY: a valid timerfd and a valid itimerspec.
        unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        self.armed = Some(at);
    }

    fn clear(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        self.armed = None;
    }
}
