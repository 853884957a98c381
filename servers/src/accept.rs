//! A non-blocking listener that pauses, instead of spinning, when the
//! process is out of descriptors.
//!
//! When accept fails with EMFILE (or ENFILE, ENOBUFS, ENOMEM) the
//! connection stays in the backlog and the listener stays readable, so
//! accepting again at once fails again at once, and an event loop would
//! spin on it. So [`Acceptor::pause`] stops accepting for
//! [`ACCEPT_PAUSE`]; the loop passes [`Acceptor::timeout`] to `poll`, and
//! after each poll [`Acceptor::resume_due`] says when to accept again
//! (the connections waiting in the backlog bring no new edge).
//!
//! The accept loop itself is [`Acceptor::accept_all`], which both mio
//! models run.

use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};

use crate::limits::ACCEPT_PAUSE;
use crate::log::RateLimited;
use crate::net;
use crate::stats::COUNTERS;

static ACCEPT_FAILED: RateLimited = RateLimited::new("accept", Duration::from_secs(1));

/// The listening socket, and until when accepting is paused.
pub struct Acceptor {
    pub listener: TcpListener,
    paused_until: Option<Instant>,
}

impl Acceptor {
    pub fn new(listener: std::net::TcpListener) -> io::Result<Acceptor> {
        listener.set_nonblocking(true)?; // mio's from_std leaves that to us
        Ok(Acceptor { listener: TcpListener::from_std(listener), paused_until: None })
    }

    /// Accept every connection waiting in the backlog and hand each to
    /// `on_conn`, with TCP_NODELAY (answers are small; Nagle would hold
    /// them). The listener is edge-triggered: one event may stand for many
    /// connections, so accept until `WouldBlock`.
    pub fn accept_all(&mut self, mut on_conn: impl FnMut(TcpStream)) {
        if self.is_paused() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, _)) if !COUNTERS.admit() => drop(stream), // past --max-connections: closed
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    on_conn(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if net::is_per_connection(&e) => {} // reset before we got to it
                Err(e) => return self.pause(&e),           // EMFILE and the like
            }
        }
    }

    /// Accepting is paused now (a pause that is over is forgotten).
    fn is_paused(&mut self) -> bool {
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return true;
        }
        self.paused_until = None;
        false
    }

    /// accept failed with `e`, which is not about one connection only:
    /// log it and stop accepting for [`ACCEPT_PAUSE`].
    fn pause(&mut self, e: &io::Error) {
        let what = if net::is_resource_exhaustion(e) { "out of resources" } else { "unexpected error" };
        ACCEPT_FAILED.log(format_args!("{what}: {e}; pausing accepts for {ACCEPT_PAUSE:?}"));
        self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
    }

    /// The poll timeout while accepting is paused.
    pub fn timeout(&self) -> Option<Duration> {
        self.paused_until.map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// A pause is over: accept now, without waiting for an edge.
    pub fn resume_due(&self) -> bool {
        self.paused_until.is_some_and(|t| Instant::now() >= t)
    }
}
