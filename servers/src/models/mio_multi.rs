//! mio-multi: an acceptor, N IO loops and a worker pool, the shape of
//! FbThrift's Cpp2 server.
//!
//! How it works:
//!
//! ```text
//!  acceptor thread ──round robin──▶ IO loop 0 … IO loop N-1 ──COMPUTE──▶ rayon pool
//!  (own Poll)       channel+Waker   (own Poll, Waker, timers)  ◀──result── (channel+Waker
//!                                                                           of the conn's loop)
//! ```
//!
//! - The acceptor (the thread that called [`run`]) accepts and hands each
//!   connection to the next IO loop through that loop's channel, then wakes
//!   the loop with its `mio::Waker`.
//! - Each IO loop is a thread with its own `Poll`; it owns its connections
//!   for life and does all their reading, parsing and writing, exactly as
//!   mio-single does: the connection code is mio-single's own
//!   (`mio_single::ConnTable`), so that the two models differ only in how
//!   threads and loops are arranged. DELAY waits on the loop's own timer
//!   heap; answers may go out of order.
//! - COMPUTE goes to a rayon pool; the result comes back to the
//!   connection's own loop through its channel and Waker, tagged with the
//!   connection's token and generation, so a result for a connection that
//!   has closed (its slot perhaps reused) is dropped.
//!
//! Answer order: **out of order**. ECHO is answered as it is read; DELAY
//! when its timer fires and COMPUTE when its worker is done, meanwhile
//! later requests on the connection are answered.
//!
//! Trade-off. Wins: all cores do I/O, no lock is shared by two connections
//! on the hot path, and a long COMPUTE no longer stalls I/O: the loops keep
//! answering ECHO and DELAY while the workers grind. Costs: every COMPUTE is
//! a hand-off and a wake-up of another thread (expensive where waking an
//! idle CPU is), a loop still stalls if one of *its* connections floods it,
//! and round robin ignores how busy each loop already is.

use std::io;
use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Waker};
use proto::Frame;
use rayon::ThreadPool;

use super::mio_single::{ComputeOn, ConnTable, Owner, LISTENER, WAKER};
use crate::accept::Acceptor;
use crate::dispatch;
use crate::{CommonOptions, Shutdown};

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,

    /// IO loop threads. Default: the CPUs this process may run on
    /// (`available_parallelism`, which follows CPU affinity).
    #[arg(long)]
    pub io_loops: Option<NonZeroUsize>,

    /// COMPUTE worker threads (a rayon pool). Default: as for --io-loops.
    #[arg(long)]
    pub workers: Option<NonZeroUsize>,
}

/// What reaches an IO loop through its channel.
enum Msg {
    /// A connection the acceptor handed over.
    Conn(TcpStream),
    /// A COMPUTE answer from the pool.
    Computed(Owner, Frame),
}

/// The acceptor's (and the pool's) way into one IO loop.
struct LoopHandle {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
}

/// Accept on this thread and serve on `--io-loops` others until `shutdown`.
pub fn run(listener: TcpListener, options: &Options, shutdown: Shutdown) -> io::Result<()> {
    let cpus = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let io_loops = options.io_loops.map_or(cpus, NonZeroUsize::get);
    let workers = options.workers.map_or(cpus, NonZeroUsize::get);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("compute-{i}"))
        .build()
        .map_err(|e| io::Error::other(format!("--workers {workers}: cannot start the pool: {e}")))?;
    let pool = Arc::new(pool);

    let mut loops = Vec::with_capacity(io_loops);
    let mut threads = Vec::with_capacity(io_loops);
    for i in 0..io_loops {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let compute = hand_off(pool.clone(), tx.clone(), waker.clone());
        let (common, shutdown) = (options.common.clone(), shutdown.clone());
        let thread = thread::Builder::new()
            .name(format!("io-{i}"))
            .spawn(move || io_loop(poll, rx, compute, &common, &shutdown))?;
        loops.push(LoopHandle { tx, waker });
        threads.push(thread);
    }

    let mut poll = Poll::new()?;
    let mut acceptor = Acceptor::new(listener)?;
    poll.registry().register(&mut acceptor.listener, LISTENER, Interest::READABLE)?;
    let wakers: Vec<_> = std::iter::once(Arc::new(Waker::new(poll.registry(), WAKER)?))
        .chain(loops.iter().map(|l| l.waker.clone()))
        .collect();
    shutdown.on_trigger(move || wakers.iter().for_each(|w| drop(w.wake())));

    let mut next = 0;
    let mut events = Events::with_capacity(256);
    while !shutdown.is_triggered() {
        if let Err(e) = poll.poll(&mut events, acceptor.timeout()) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            shutdown.trigger(); // stop the IO loops too
            return Err(e);
        }
        // Only the listener and the shutdown Waker are registered here, so
        // waking up means: connections wait, or a paused accept may retry.
        handle_accept(&mut acceptor, &loops, &mut next);
    }

    let mut result = Ok(());
    for thread in threads {
        let r = thread.join().unwrap_or_else(|_| Err(io::Error::other("an IO loop panicked")));
        result = result.and(r);
    }
    result
}

/// Accept every waiting connection, dealing them out round robin. Each loop
/// is woken once per burst, not once per connection: a wake is a syscall.
fn handle_accept(acceptor: &mut Acceptor, loops: &[LoopHandle], next: &mut usize) {
    let mut wake = vec![false; loops.len()];
    acceptor.accept_all(|stream| {
        let i = *next % loops.len();
        *next = next.wrapping_add(1);
        // A loop that has stopped refuses it: the socket is dropped, never counted.
        if loops[i].tx.send(Msg::Conn(stream)).is_ok() {
            wake[i] = true;
        }
    });
    for (l, _) in loops.iter().zip(&wake).filter(|(_, &w)| w) {
        let _ = l.waker.wake();
    }
}

/// One IO loop: its connections' sockets, their timers, and its channel.
fn io_loop(
    mut poll: Poll,
    rx: Receiver<Msg>,
    compute: ComputeOn,
    common: &CommonOptions,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let mut conns = ConnTable::new(common, compute);
    let mut events = Events::with_capacity(1024);
    while !shutdown.is_triggered() {
        if let Err(e) = poll.poll(&mut events, conns.timeout()) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            shutdown.trigger(); // a loop that cannot poll takes the server down, loudly
            return Err(e);
        }
        let registry = poll.registry();
        for event in events.iter() {
            match event.token() {
                WAKER => handle_messages(&rx, &mut conns, registry),
                _ => conns.handle_event(registry, event),
            }
        }
        conns.drive_late(registry); // write the COMPUTE answers just delivered
        conns.fire_timers(registry);
    }
    Ok(())
}

/// Drain the channel: new connections and COMPUTE answers. A Waker event
/// may stand for many messages, and one sent after this drain brings a new
/// wake, since senders send first and wake second.
fn handle_messages(rx: &Receiver<Msg>, conns: &mut ConnTable, registry: &Registry) {
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Conn(stream) => conns.insert(registry, stream),
            Msg::Computed(owner, frame) => conns.deliver(owner, frame),
        }
    }
}

/// COMPUTE on the pool; the answer returns to this loop's channel, tagged
/// with its connection's token and generation ([`Owner`]).
fn hand_off(pool: Arc<ThreadPool>, tx: Sender<Msg>, waker: Arc<Waker>) -> ComputeOn {
    ComputeOn::HandOff(Box::new(move |owner, id, rounds| {
        let (tx, waker) = (tx.clone(), waker.clone());
        pool.spawn(move || {
            let frame = dispatch::compute_reply(id, rounds);
            if tx.send(Msg::Computed(owner, frame)).is_ok() {
                let _ = waker.wake();
            }
        });
    }))
}
