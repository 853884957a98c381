//! One client connection: its buffers, its outstanding requests, and the
//! checks on every answer.
//!
//! Everything a connection needs is allocated once, when it is opened: the
//! output buffer (room for `depth` requests), the input buffer (room for
//! `depth` answers), the ECHO payload it sends and compares against, and a
//! ring of outstanding requests. Sending a request appends to the output
//! buffer; answers are parsed in place from the input buffer. No request
//! allocates, so the load generator's cost per request stays far below the
//! servers' it measures.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use proto::{Header, Method, HEADER_LEN};

use super::histo::{self, Hist};
use super::sampler::describe_io;
use super::schedule::Timeline;
use super::workload::{self, AnswerCheck, Workload};
use crate::records::config::Protocol;

/// The largest answer payload taken as a frame at all; a header that
/// announces more is garbage (the stream cannot be followed any further).
pub const GARBAGE_LEN: usize = proto::DEFAULT_MAX_FRAME as usize + 64 * 1024;

/// One request awaiting its answer.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub id: u64,
    pub method: Method,
    /// Latency counts from here: the intended send time (open loop) or the
    /// send time (closed loop).
    pub start: Instant,
    pub sent: Instant,
    pub in_window: bool,
    pub timed_out: bool,
}

/// What the requests of one thread came to. Window figures count only
/// requests sent (open loop: intended) within the window.
///
/// Open loop, every request the schedule owes the window ends up in exactly
/// one of: answered (`ok` + `errors`), timed out, still in flight at the
/// end, or unsent (never sent, because its connection was still waiting
/// for an earlier answer when the run ended).
#[derive(Debug)]
pub struct Tally {
    pub sent: u64,
    /// Open loop: requests the schedule intended within the window.
    pub scheduled: u64,
    /// Open loop: of those, never sent.
    pub unsent: u64,
    pub ok: u64,
    /// By status code (1..=4 are the protocol's error statuses).
    pub errors: [u64; 8],
    pub mismatches: u64,
    /// Mismatches at any time, warm-up and drain included.
    pub mismatches_total: u64,
    pub timeouts: u64,
    pub resets: u64,
    /// In-window requests neither answered nor timed out yet.
    pub unresolved: u64,
    /// OK answers at any time (for the progress display).
    pub answered_all: u64,
    /// When the last answer of any kind arrived.
    pub last_answer: Option<Instant>,
    /// Every in-window request: answers at their latency; requests timed
    /// out, lost with their connection or never sent at their wait so far
    /// (from their start; so the tail is not cut off at `--timeout`).
    pub corrected: Hist,
    /// Open loop: answers only, from the actual send.
    pub uncorrected: Hist,
    /// The corrected latency of each method apart (indexed by
    /// [`method_slot`]): answers and timeouts, so that in a mix the fast
    /// requests are not hidden behind the slow ones (head-of-line blocking
    /// shows as ECHO waiting as long as DELAY). Unsent requests have no
    /// method yet and are only in `corrected`.
    pub by_method: [Hist; METHODS],
    /// Open loop: the load generator's own lateness, actual send minus
    /// intended send, over the in-window requests whose connection was free
    /// at their intended time (so the lag is the timer's and the thread's,
    /// not a wait for the server's previous answer).
    pub send_lag: Hist,
    /// Open loop: in-window requests that were due while their connection
    /// still waited for an earlier answer (sent as soon as it came).
    pub held_back: u64,
    /// The current one-second bucket: (index, histogram, OK answers).
    pub bucket: (usize, Hist, u64),
    pub first_mismatch: Option<String>,
    pub first_close: Option<String>,
    pub garbage: Option<String>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            sent: 0,
            scheduled: 0,
            unsent: 0,
            ok: 0,
            errors: [0; 8],
            mismatches: 0,
            mismatches_total: 0,
            timeouts: 0,
            resets: 0,
            unresolved: 0,
            answered_all: 0,
            last_answer: None,
            corrected: histo::new_hist(),
            uncorrected: histo::new_hist(),
            by_method: std::array::from_fn(|_| histo::new_hist()),
            send_lag: histo::new_hist(),
            held_back: 0,
            bucket: (0, histo::new_hist(), 0),
            first_mismatch: None,
            first_close: None,
            garbage: None,
        }
    }
}

/// What a connection needs from its thread to do its work.
pub struct Ctx<'a> {
    pub workload: &'a Workload,
    pub protocol: Protocol,
    pub timeline: Timeline,
    pub target: std::net::SocketAddr,
    /// Open loop: keep the uncorrected histogram too (in a closed loop it
    /// would equal the corrected one).
    pub open_loop: bool,
    /// Hands a full one-second bucket to the thread, which passes it on.
    pub on_bucket: &'a mut dyn FnMut(usize, Hist, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Connecting,
    Open,
    Closed,
}

pub struct Conn {
    pub stream: Option<TcpStream>,
    pub token: Token,
    /// Index over the whole run (all threads); part of every request id.
    pub index: u64,
    pub state: State,
    pub opened_at: Instant,
    out: Vec<u8>,
    out_pos: usize,
    inb: Vec<u8>,
    in_len: usize,
    /// Framed: the ECHO payload. Raw: the message in flight.
    echo: Box<[u8]>,
    pub pending: VecDeque<Pending>,
    seq: u64,
    write_interest: bool,
    /// Open loop: the number of the next request on this connection's schedule.
    pub next_k: u64,
    raw_got: usize,
    raw_bad: bool,
    pub first_send: Option<Instant>,
    pub first_answer: Option<Duration>,
    pub answered_window: u64,
    /// Requests sent (open loop: intended) within the window.
    pub sent_window: u64,
    pub stuck: bool,
}

impl Conn {
    pub fn new(stream: TcpStream, token: Token, index: u64, protocol: Protocol, w: &Workload, depth: usize) -> Conn {
        let frame = HEADER_LEN + w.max_answer_payload();
        let (echo, inb_len) = match protocol {
            Protocol::Framed => (workload::echo_payload(index, w.size as usize), (depth * frame).max(256)),
            Protocol::Raw => (vec![0; w.size as usize], (w.size as usize).clamp(256, 64 * 1024)),
        };
        Conn {
            stream: Some(stream),
            token,
            index,
            state: State::Connecting,
            opened_at: Instant::now(),
            out: Vec::with_capacity(depth * frame),
            out_pos: 0,
            inb: vec![0; inb_len],
            in_len: 0,
            echo: echo.into_boxed_slice(),
            pending: VecDeque::with_capacity(depth),
            seq: 0,
            write_interest: true,
            next_k: 0,
            raw_got: 0,
            raw_bad: false,
            first_send: None,
            first_answer: None,
            answered_window: 0,
            sent_window: 0,
            stuck: false,
        }
    }

    /// Record the interest the socket is registered with (after connecting).
    pub fn set_write_interest(&mut self, on: bool) {
        self.write_interest = on;
    }

    /// Queue one request (written by the next [`Conn::flush`]). `start` is
    /// where its latency counts from.
    pub fn queue(&mut self, ctx: &Ctx, tally: &mut Tally, start: Instant, now: Instant) {
        let id = workload::request_id(self.index, self.seq);
        let method = match ctx.protocol {
            Protocol::Framed => {
                let m = ctx.workload.method_for(id);
                ctx.workload.encode(id, m, &self.echo, &mut self.out);
                m
            }
            Protocol::Raw => {
                workload::fill_pattern(workload::raw_seed(self.index, self.seq), &mut self.echo);
                self.out.extend_from_slice(&self.echo);
                Method::Echo
            }
        };
        self.seq += 1;
        let in_window = ctx.timeline.in_window(start);
        if in_window {
            tally.sent += 1;
            tally.unresolved += 1;
            self.sent_window += 1;
        }
        self.first_send.get_or_insert(now);
        self.pending.push_back(Pending { id, method, start, sent: now, in_window, timed_out: false });
    }

    /// Write what is queued, in one write when the socket takes it; ask for
    /// WRITABLE only while something is left over.
    pub fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else { return Ok(()) };
        while self.out_pos < self.out.len() {
            match stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let drained = self.out_pos == self.out.len();
        if drained {
            self.out.clear();
            self.out_pos = 0;
        }
        if drained == self.write_interest {
            let interest = if drained { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
            registry.reregister(stream, self.token, interest)?;
            self.write_interest = !drained;
        }
        Ok(())
    }

    /// Read until WouldBlock and settle every whole answer. Returns the
    /// number of requests settled (each frees a slot) and the time of the
    /// last read, or the error that closed the connection.
    ///
    /// The clock is read after every read that returned data: an answer
    /// that arrived while earlier ones were being settled must not be
    /// stamped with the time of the wake-up (its latency would come out
    /// short, and a DELAY answer would look early).
    pub fn on_readable(&mut self, ctx: &mut Ctx, tally: &mut Tally) -> Result<(usize, Instant), Closed> {
        let mut settled = 0;
        let mut now = Instant::now();
        let mut drained;
        loop {
            if self.in_len == self.inb.len() {
                // Only a frame bigger than the buffer gets here (checked
                // against GARBAGE_LEN below before it is believed).
                let grow = self.inb.len() * 2;
                self.inb.resize(grow, 0);
            }
            let stream = self.stream.as_mut().expect("open connection has a stream");
            match stream.read(&mut self.inb[self.in_len..]) {
                Ok(0) => return Err(Closed::Reset("closed the connection".into())),
                Ok(n) => {
                    // A read that did not fill the room it had drained the
                    // socket: new data will raise a new (edge-triggered)
                    // event, so the read that would say WouldBlock is saved,
                    // one syscall per wake-up (tokio does the same).
                    drained = self.in_len + n < self.inb.len();
                    self.in_len += n;
                    now = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((settled, now)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Closed::Reset(describe_io(&e))),
            }
            settled += match ctx.protocol {
                Protocol::Framed => self.parse_frames(ctx, tally, now)?,
                Protocol::Raw => self.parse_raw(ctx, tally, now)?,
            };
            if drained {
                return Ok((settled, now));
            }
        }
    }

    fn parse_frames(&mut self, ctx: &mut Ctx, tally: &mut Tally, now: Instant) -> Result<usize, Closed> {
        let mut pos = 0;
        let mut settled = 0;
        while let Some(h) = Header::parse(&self.inb[pos..self.in_len]) {
            let total = HEADER_LEN + h.len as usize;
            if total > GARBAGE_LEN {
                return Err(Closed::Garbage(format!(
                    "--target {}: an answer does not decode as a frame (its header announces {} payload bytes)",
                    ctx.target, h.len
                )));
            }
            if self.in_len - pos < total {
                if total > self.inb.len() {
                    self.inb.resize(total, 0);
                }
                break;
            }
            let Some(i) = self.pending.iter().position(|p| p.id == h.id) else {
                mismatch(tally, false, || format!("answer id {:#x} was not outstanding", h.id));
                pos += total;
                continue;
            };
            let p = self.pending.remove(i).expect("position is in range");
            let payload = &self.inb[pos + HEADER_LEN..pos + total];
            let verdict = ctx.workload.check(p.id, p.method, &h, payload, &self.echo, now - p.sent);
            self.settle(ctx, tally, p, verdict, now);
            settled += 1;
            pos += total;
        }
        self.inb.copy_within(pos..self.in_len, 0);
        self.in_len -= pos;
        Ok(settled)
    }

    /// Raw mode: the bytes that come back must be the message in flight,
    /// byte for byte; a message is settled when all of it has come back.
    fn parse_raw(&mut self, ctx: &mut Ctx, tally: &mut Tally, now: Instant) -> Result<usize, Closed> {
        let mut settled = 0;
        let mut pos = 0;
        while pos < self.in_len {
            let Some(&p) = self.pending.front() else {
                return Err(Closed::Garbage(format!(
                    "--target {}: {} bytes came back that were never sent (is the server in framed mode?)",
                    ctx.target,
                    self.in_len - pos
                )));
            };
            let take = (self.echo.len() - self.raw_got).min(self.in_len - pos);
            if self.inb[pos..pos + take] != self.echo[self.raw_got..self.raw_got + take] {
                self.raw_bad = true;
            }
            self.raw_got += take;
            pos += take;
            if self.raw_got == self.echo.len() {
                self.pending.pop_front();
                let verdict = if self.raw_bad {
                    AnswerCheck::Mismatch("raw bytes differ from what was sent")
                } else {
                    AnswerCheck::Ok
                };
                self.raw_got = 0;
                self.raw_bad = false;
                self.settle(ctx, tally, p, verdict, now);
                settled += 1;
            }
        }
        self.in_len = 0;
        Ok(settled)
    }

    /// Account for one answered request.
    fn settle(&mut self, ctx: &mut Ctx, tally: &mut Tally, p: Pending, verdict: AnswerCheck, now: Instant) {
        tally.last_answer = Some(now);
        if self.first_answer.is_none() {
            self.first_answer = Some(now - self.first_send.unwrap_or(now));
        }
        let counted = p.in_window && !p.timed_out;
        if counted {
            tally.unresolved -= 1;
            self.answered_window += 1;
        }
        match verdict {
            AnswerCheck::Ok => {
                tally.answered_all += 1;
                if counted {
                    tally.ok += 1;
                    histo::record(&mut tally.corrected, now - p.start);
                    histo::record(&mut tally.by_method[method_slot(p.method)], now - p.start);
                    if ctx.open_loop {
                        histo::record(&mut tally.uncorrected, now - p.sent);
                    }
                }
                if now < ctx.timeline.window_end {
                    let k = ctx.timeline.bucket(now);
                    if k != tally.bucket.0 {
                        let full = std::mem::replace(&mut tally.bucket, (k, histo::new_hist(), 0));
                        (ctx.on_bucket)(full.0, full.1, full.2);
                    }
                    histo::record(&mut tally.bucket.1, now - p.start);
                    tally.bucket.2 += 1;
                }
            }
            AnswerCheck::Error(code) => {
                if counted {
                    tally.errors[code as usize & 7] += 1;
                }
            }
            // A wrong answer is neither OK nor an error status: it counts
            // as a mismatch only (`mismatch` adds it to `tally.mismatches`
            // when in the window), never as throughput.
            AnswerCheck::Mismatch(why) => {
                let conn = self.index;
                mismatch(tally, counted, || format!("request {:#x} on connection {conn}: {why}", p.id));
            }
        }
    }

    /// Mark requests sent more than `timeout` ago and still unanswered as
    /// timed out: the server had its chance. (Open loop, a request sent
    /// late because its connection waited for an earlier answer gets its
    /// full `timeout` from its actual send, while its latency still counts
    /// from its intended time.) Each in-window one enters the latency
    /// histogram at its wait so far, at least `timeout`: an answer that
    /// comes later is not counted again, but the tail is not cut off at
    /// the timeout either.
    pub fn sweep_timeouts(&mut self, tally: &mut Tally, timeout: Duration, now: Instant) {
        for p in self.pending.iter_mut().filter(|p| !p.timed_out && now.saturating_duration_since(p.sent) > timeout) {
            p.timed_out = true;
            self.stuck = true;
            if p.in_window {
                tally.timeouts += 1;
                tally.unresolved -= 1;
                histo::record(&mut tally.corrected, now.saturating_duration_since(p.start));
                histo::record(&mut tally.by_method[method_slot(p.method)], now.saturating_duration_since(p.start));
            }
        }
    }

    /// The connection is gone: what it had outstanding will never be
    /// answered, so it counts as timed out, charged from its start until
    /// now.
    pub fn close(&mut self, registry: &Registry, tally: &mut Tally, now: Instant) {
        if let Some(mut s) = self.stream.take() {
            let _ = registry.deregister(&mut s);
        }
        self.state = State::Closed;
        for p in self.pending.drain(..).filter(|p| p.in_window && !p.timed_out) {
            tally.timeouts += 1;
            tally.unresolved -= 1;
            histo::record(&mut tally.corrected, now.saturating_duration_since(p.start));
            histo::record(&mut tally.by_method[method_slot(p.method)], now.saturating_duration_since(p.start));
        }
    }

    /// In-window requests still outstanding (neither answered nor timed out).
    pub fn in_flight(&self) -> u64 {
        self.pending.iter().filter(|p| p.in_window && !p.timed_out).count() as u64
    }
}

/// The request methods, in the order of their codes (PROTOCOL.md).
pub const METHODS: usize = 4;
pub const METHOD_ORDER: [Method; METHODS] = [Method::Echo, Method::Delay, Method::Compute, Method::Stats];

/// A method's place in [`Tally::by_method`].
pub fn method_slot(m: Method) -> usize {
    METHOD_ORDER.iter().position(|&x| x == m).expect("every method has a slot")
}

fn mismatch(tally: &mut Tally, in_window: bool, what: impl FnOnce() -> String) {
    tally.mismatches_total += 1;
    if in_window {
        tally.mismatches += 1;
    }
    if tally.first_mismatch.is_none() {
        tally.first_mismatch = Some(what());
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub enum Closed {
    /// The server reset or closed it.
    Reset(String),
    /// The server sent bytes that cannot be followed.
    Garbage(String),
}
