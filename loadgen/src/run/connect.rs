//! A load thread's first phase: open its share of the connections, paced
//! in batches every 50 ms so that the server's listen backlog never
//! overflows, and wait until each is established, refused or timed out.
//!
//! A non-blocking connect is finished when the socket becomes writable:
//! then `take_error` says whether it failed, and `peer_addr` whether it is
//! really connected (a spurious wake-up leaves it `NotConnected`). The
//! connections that made it stay, renumbered, reading only until a write
//! blocks; the rest are counted as failed, the first reason kept.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::conn::{Conn, State};
use super::histo::{self, Hist};
use super::plan::{LoadPlan, Shared, HOUSEKEEPING};
use super::sampler::describe_io;
use crate::records::config::Shape;

/// How often a new batch of connections may start.
const CONNECT_TICK: Duration = Duration::from_millis(50);

/// How one thread's connecting went.
pub struct ConnectReport {
    pub established: u64,
    pub failed: u64,
    pub connect_us: Hist,
    pub first_error: Option<String>,
    /// Established connections whose first request was not answered
    /// within `--connect-timeout` (their indices).
    pub unanswered: Vec<u64>,
}

impl Default for ConnectReport {
    /// Nothing established yet, nothing failed.
    fn default() -> ConnectReport {
        ConnectReport {
            established: 0,
            failed: 0,
            connect_us: histo::new_hist(),
            first_error: None,
            unanswered: vec![],
        }
    }
}

impl ConnectReport {
    /// One more connection failed; the first reason is kept.
    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.first_error.get_or_insert(why);
    }
}

/// Open this thread's connections (`indices`: their numbers over all
/// threads) at the paced rate; wait for each to be established, refused or
/// timed out. Returns the established ones, registered read-only.
pub fn connect_all(
    plan: &LoadPlan,
    shared: &Shared,
    poll: &mut Poll,
    events: &mut Events,
    indices: &[u64],
) -> (Vec<Conn>, ConnectReport) {
    let mut c = Connecting { conns: Vec::with_capacity(indices.len()), report: ConnectReport::default(), pending: 0 };
    let per_tick = ((plan.connect_rate * CONNECT_TICK.as_secs_f64()).round() as usize).max(1);
    let begin = Instant::now();
    let mut started = 0usize;
    while started < indices.len() || c.pending > 0 {
        if shared.stop.load(Relaxed) {
            break;
        }
        let now = Instant::now();
        let ticks = (now - begin).as_micros() / CONNECT_TICK.as_micros() + 1;
        let allowed = (ticks as usize).saturating_mul(per_tick).min(indices.len());
        for &index in &indices[started..allowed.max(started)] {
            c.open(plan, poll, index);
        }
        started = started.max(allowed);
        let next_tick = if started < indices.len() { begin + CONNECT_TICK * ticks as u32 } else { now + HOUSEKEEPING };
        let _ = poll.poll(events, Some(next_tick.saturating_duration_since(now).min(HOUSEKEEPING)));
        let now = Instant::now();
        c.settle(events, now);
        c.expire(plan.connect_timeout, now);
    }
    c.report.failed += (indices.len() - started) as u64;
    c.finish(poll, shared)
}

/// The connections of one thread while they connect.
struct Connecting {
    conns: Vec<Conn>,
    report: ConnectReport,
    /// Connects started and not yet settled.
    pending: usize,
}

impl Connecting {
    /// Start connection `index`.
    fn open(&mut self, plan: &LoadPlan, poll: &Poll, index: u64) {
        let depth = match plan.shape {
            Shape::Closed { depth, .. } => depth as usize,
            Shape::Open { .. } => 1,
        };
        match TcpStream::connect(plan.target) {
            Ok(mut s) => {
                let token = Token(self.conns.len());
                match poll.registry().register(&mut s, token, Interest::READABLE | Interest::WRITABLE) {
                    Ok(()) => {
                        self.conns.push(Conn::new(s, token, index, plan.protocol, &plan.workload, depth));
                        self.pending += 1;
                    }
                    Err(e) => self.report.fail(format!("cannot register a socket: {e}")),
                }
            }
            Err(e) => self.report.fail(describe_io(&e)),
        }
    }

    /// Settle every connect the poll says is done: established or failed.
    fn settle(&mut self, events: &Events, now: Instant) {
        for event in events.iter() {
            let Some(c) = self.conns.get_mut(event.token().0) else { continue };
            if c.state != State::Connecting {
                continue;
            }
            let s = c.stream.as_ref().expect("connecting socket");
            let outcome = match s.take_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => match s.peer_addr() {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(false) => continue,
                Ok(true) => {
                    let _ = s.set_nodelay(true);
                    c.state = State::Open;
                    histo::record(&mut self.report.connect_us, now - c.opened_at);
                    self.report.established += 1;
                }
                Err(e) => {
                    c.state = State::Closed;
                    c.stream = None;
                    self.report.fail(describe_io(&e));
                }
            }
            self.pending -= 1;
        }
    }

    /// Fail every connect older than `--connect-timeout`.
    fn expire(&mut self, timeout: Duration, now: Instant) {
        for c in self.conns.iter_mut().filter(|c| c.state == State::Connecting) {
            if now - c.opened_at > timeout {
                c.state = State::Closed;
                c.stream = None;
                self.pending -= 1;
                self.report.fail(format!("not established within --connect-timeout {timeout:?}"));
            }
        }
    }

    /// Fail what is still connecting (the run was interrupted), drop the
    /// failed sockets, and renumber the rest, read-only until a write blocks.
    fn finish(mut self, poll: &Poll, shared: &Shared) -> (Vec<Conn>, ConnectReport) {
        for c in self.conns.iter_mut().filter(|c| c.state == State::Connecting) {
            c.state = State::Closed;
            c.stream = None;
            self.report.fail("interrupted".into());
        }
        self.conns.retain(|c| c.state == State::Open);
        for (i, c) in self.conns.iter_mut().enumerate() {
            c.token = Token(i);
            c.pending.clear();
            let s = c.stream.as_mut().expect("open");
            if poll.registry().reregister(s, c.token, Interest::READABLE).is_ok() {
                c.set_write_interest(false);
            }
        }
        shared.open.fetch_add(self.conns.len() as u64, Relaxed);
        (self.conns, self.report)
    }
}
