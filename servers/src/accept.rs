//! Accepting on a non-blocking listener: until `WouldBlock`, and with a
//! pause, not a spin, when the process is out of descriptors.
//!
//! Both mio models accept through [`Acceptor`]. The listener is registered
//! edge-triggered, so one readable event may stand for many connections in
//! the backlog: accept them all. When accept fails with EMFILE (or ENFILE,
//! ENOBUFS, ENOMEM) the connection stays in the backlog and the listener
//! stays readable, so accepting again at once fails again at once. Pause
//! for [`ACCEPT_PAUSE`], and let the loop's poll timeout bring it back.

use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};

use crate::limits::ACCEPT_PAUSE;
use crate::log::RateLimited;
use crate::net;
use crate::stats::COUNTERS;

static ACCEPT_FAILED: RateLimited = RateLimited::new("accept", Duration::from_secs(1));

/// The listening socket, and whether accepting is paused.
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
