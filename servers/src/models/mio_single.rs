//! mio-single: one thread, one `mio::Poll`, every socket.
//!
//! How it works: the only thread waits in `epoll_wait` for any socket to
//! become ready, then does all it can on each ready socket without blocking
//! (accept until `WouldBlock`; read until `WouldBlock`, parse, queue the
//! answers, write them with one call), and waits again. The per-connection
//! part, `evloop::Connection`, is shared with `mio_multi`; this file is the
//! loop. A DELAY does not block anything: its answer goes on a timer heap,
//! and the poll timeout is the time left until the earliest deadline, so the
//! loop never sleeps. Answers may therefore leave out of order: an ECHO sent
//! after a DELAY is answered first.
//!
//! Answer order: **out of order** for DELAY (its answer waits on the timer
//! heap while later requests are answered); ECHO and COMPUTE are answered
//! as they are read.
//!
//! COMPUTE runs inline, on the loop itself. That is the lesson of this
//! model: a 100-million-round COMPUTE takes the thread for a good fraction
//! of a second, and for that long *no* connection is read or written.
//!
//! Trade-off. Wins: one thread serves thousands of connections, idle or
//! slow (DELAY) ones cost a few hundred bytes each, there are no locks and
//! no context switches between connections, and pipelined requests are
//! read, answered and written in batches. Breaks: it uses one core however
//! many there are, and any CPU-heavy request stalls everybody.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use mio::{Events, Interest, Poll, Token, Waker};
use proto::Frame;

use crate::dispatch;
use crate::evloop::{earliest, Acceptor, Compute, Connections, Owner};
use crate::{CommonOptions, Shutdown};

// Connections use `Token(slab key)`; these two sit where no key reaches.
const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

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

    let mut conns = Connections::new(options.common.protocol, options.common.max_frame);
    let mut events = Events::with_capacity(1024);
    while !shutdown.is_triggered() {
        // Sleep until a socket is ready, the earliest DELAY is due, or a
        // paused accept may be retried, whichever comes first.
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
                LISTENER => handle_accept(&mut acceptor, &mut conns, registry),
                WAKER => {} // shutdown: the `while` condition sees it
                _ => conns.handle_event(registry, event, &mut Inline),
            }
        }
        conns.fire_timers(registry, &mut Inline);
        acceptor.resume_if_due(|stream| conns.insert(registry, stream));
    }
    Ok(())
}

/// Take every waiting connection into this loop.
fn handle_accept(acceptor: &mut Acceptor, conns: &mut Connections, registry: &mio::Registry) {
    acceptor.accept_all(|stream| conns.insert(registry, stream));
}

/// COMPUTE on the loop's own thread: answered at once, while every other
/// connection waits.
struct Inline;

impl Compute for Inline {
    fn compute(&mut self, _owner: Owner, id: u64, rounds: u32) -> Option<Frame> {
        Some(dispatch::compute_reply(id, rounds))
    }
}
