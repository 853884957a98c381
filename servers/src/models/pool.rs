//! pool: a fixed pool of blocking worker threads; each worker serves one
//! connection from its first byte to its close.
//!
//! Same connection code as `thread_per_conn` (its [`Connection`] and
//! [`accept_loop`]); only the threading differs. Instead of a new thread per
//! connection, the accept loop hands each connection to a `threadpool` of
//! `--threads` workers (64 by default):
//!
//! ```text
//!   accept() ──execute──> queue ──> [worker 1] serves conn A until it closes
//!                                   [worker 2] serves conn B until it closes
//!                           conn C waits here until a worker is free
//! ```
//!
//! Answer order: **in request order**, as thread-per-conn (the same
//! connection code): an ECHO sent after a DELAY on the same connection
//! waits for the DELAY.
//!
//! Where it wins: the thread count, and so memory and scheduler load, is
//! bounded whatever the clients do, and no thread is created per connection.
//! Where it breaks: a worker is tied up by a connection even while that
//! connection is idle, so connection number `threads + 1` is accepted (its
//! connect succeeds) but gets no answer at all until some earlier connection
//! closes. That starvation is the lesson of this model and is left as is:
//! the fix is not a bigger pool, it is not tying a thread to a connection
//! (see the event-loop models).

use std::io;
use std::net::TcpListener;

use super::thread_per_conn::{accept_loop, Connection};
use crate::{CommonOptions, Shutdown};

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,

    /// Worker threads. Each serves one connection until it closes; later
    /// connections wait in line for a free worker.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,

    /// Stack size of each worker thread, in KiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..))]
    pub stack_kib: u32,
}

pub fn run(listener: TcpListener, options: &Options, shutdown: Shutdown) -> io::Result<()> {
    let pool = threadpool::Builder::new()
        .num_threads(options.threads as usize)
        .thread_name("pool-worker".into())
        .thread_stack_size(options.stack_kib as usize * 1024)
        .build();
    accept_loop(&listener, &shutdown, |stream| {
        // Counted as accepted (and open) from here, even while it waits in
        // the queue: its client is connected, just not served yet.
        let conn = Connection::new(stream, &options.common);
        pool.execute(move || handle_connection(conn));
    })
}

/// A worker's job: the whole life of one connection. A panic here ends the
/// connection only; threadpool replaces the worker.
fn handle_connection(conn: Connection) {
    conn.serve();
}
