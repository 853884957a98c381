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
//! The accept loop itself is `models::mio_single::accept_all`, which both
//! mio models run.

use std::io;
use std::time::{Duration, Instant};

use mio::net::TcpListener;

use crate::limits::ACCEPT_PAUSE;
use crate::log::RateLimited;
use crate::net;

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

    /// Accepting is paused now (a pause that is over is forgotten).
    pub fn is_paused(&mut self) -> bool {
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return true;
        }
        self.paused_until = None;
        false
    }

    /// accept failed with `e`, which is not about one connection only:
    /// log it and stop accepting for [`ACCEPT_PAUSE`].
    pub fn pause(&mut self, e: &io::Error) {
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
