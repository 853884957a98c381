//! `servers`: run one server model. See `servers --help`.

use clap::Parser;
use servers::launch::launch;
use servers::models::*;

/// Blocking and non-blocking TCP server models speaking the iomodels
/// protocol (shared/PROTOCOL.md). Each prints one ready line to stdout,
/// `listening data=HOST:PORT admin=HOST:PORT model=NAME protocol=MODE`,
/// logs to stderr, and exits 0 on SIGINT or SIGTERM.
#[derive(Parser)]
#[command(version, about, long_about)]
enum Cli {
    /// One OS thread per connection, blocking reads and writes.
    ThreadPerConn(thread_per_conn::Options),
    /// A fixed pool of blocking workers; each serves one connection until it closes.
    Pool(pool::Options),
    /// One thread, one mio event loop for every socket; COMPUTE runs inline.
    MioSingle(mio_single::Options),
    /// An acceptor, N mio IO loops and a rayon worker pool (FbThrift Cpp2's shape).
    MioMulti(mio_multi::Options),
    /// tokio's multi-thread runtime, one task per connection (reference peer).
    Tokio(tokio_model::Options),
    /// One thread, one io_uring: completions instead of readiness (Linux 6.1+).
    Uring(uring::Options),
    /// The seed's libevent server: event base, evconnlistener, bufferevents (reference peer).
    #[cfg(feature = "libevent")]
    Libevent(libevent::Options),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::ThreadPerConn(o) => launch("thread-per-conn", &o.common, |l, s| thread_per_conn::run(l, &o, s))?,
        Cli::Pool(o) => launch("pool", &o.common, |l, s| pool::run(l, &o, s))?,
        Cli::MioSingle(o) => launch("mio-single", &o.common, |l, s| mio_single::run(l, &o, s))?,
        Cli::MioMulti(o) => launch("mio-multi", &o.common, |l, s| mio_multi::run(l, &o, s))?,
        Cli::Tokio(o) => launch("tokio", &o.common, |l, s| tokio_model::run(l, &o, s))?,
        Cli::Uring(o) => {
            // Refuse before the ready line, naming the cause (kernel, sysctl, seccomp).
            uring::available().map_err(|why| anyhow::anyhow!("uring: cannot start: {why}"))?;
            launch("uring", &o.common, |l, s| uring::run(l, &o, s))?
        }
        #[cfg(feature = "libevent")]
        Cli::Libevent(o) => launch("libevent", &o.common, |l, s| libevent::run(l, &o, s))?,
    }
    Ok(())
}
