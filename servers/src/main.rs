//! `servers`: run one server model. See `servers --help`.

use clap::Parser;
use servers::launch::launch;
use servers::models::{self, *};

/// Blocking and non-blocking TCP server models speaking the iomodels
/// protocol (proto/PROTOCOL.md). Each prints one ready line to stdout,
/// `listening data=HOST:PORT admin=HOST:PORT model=NAME protocol=MODE`,
/// logs to stderr, and exits 0 on SIGINT or SIGTERM.
// The subcommands' names and summaries come from `models::MODELS`.
#[derive(Parser)]
#[command(version = servers::VERSION, about, long_about)]
enum Cli {
    #[command(name = THREAD_PER_CONN.name, about = THREAD_PER_CONN.summary)]
    ThreadPerConn(thread_per_conn::Options),
    #[command(name = POOL.name, about = POOL.summary)]
    Pool(pool::Options),
    #[command(name = MIO_SINGLE.name, about = MIO_SINGLE.summary)]
    MioSingle(mio_single::Options),
    #[command(name = MIO_MULTI.name, about = MIO_MULTI.summary)]
    MioMulti(mio_multi::Options),
    #[command(name = URING.name, about = URING.summary)]
    Uring(uring::Options),
    #[command(name = TOKIO.name, about = TOKIO.summary)]
    Tokio(tokio_model::Options),
    #[cfg(feature = "libevent")]
    #[command(name = LIBEVENT.name, about = LIBEVENT.summary)]
    Libevent(libevent::Options),
    /// List the models this binary was built with, in reading order, one a
    /// line: `NAME<TAB>ready` or `NAME<TAB>unavailable: REASON`
    Models,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::ThreadPerConn(o) => launch(&THREAD_PER_CONN, &o.common, |l, s| thread_per_conn::run(l, &o, s))?,
        Cli::Pool(o) => launch(&POOL, &o.common, |l, s| pool::run(l, &o, s))?,
        Cli::MioSingle(o) => launch(&MIO_SINGLE, &o.common, |l, s| mio_single::run(l, &o, s))?,
        Cli::MioMulti(o) => launch(&MIO_MULTI, &o.common, |l, s| mio_multi::run(l, &o, s))?,
        Cli::Uring(o) => launch(&URING, &o.common, |l, s| uring::run(l, &o, s))?,
        Cli::Tokio(o) => launch(&TOKIO, &o.common, |l, s| tokio_model::run(l, &o, s))?,
        #[cfg(feature = "libevent")]
        Cli::Libevent(o) => launch(&LIBEVENT, &o.common, |l, s| libevent::run(l, &o, s))?,
        Cli::Models => print!("{}", models::listing()),
    }
    Ok(())
}
