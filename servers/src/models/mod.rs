//! The server models, one file each, and [`MODELS`], the one list of them.
//!
//! Every model file has `Options` (its flags, with `CommonOptions`
//! flattened in) and `run(listener, options, shutdown)`, which serves until
//! shutdown; `launch` does the rest (binding, the ready line, signals). How
//! a model is built inside differs, and is the point: the README's reading
//! order says what each file holds.
//!
//! [`MODELS`] is what the binary offers: each model's name, summary and
//! availability. `servers --help` takes its subcommands' names and
//! summaries from it, `servers models` prints it, and the load generator
//! and the tests ask the binary (`servers models`) which models it offers.
//! Besides, `loadgen/src/models.rs` (`KNOWN`) gives each known model its
//! role, its colour and its place in tables, and
//! `testkit::assert_every_offered_model_runs_every_case` fails when the
//! binary offers a model the tests do not cover.

#[cfg(feature = "libevent")]
pub mod libevent;
pub mod mio_multi;
pub mod mio_single;
pub mod pool;
pub mod thread_per_conn;
pub mod tokio_model;
pub mod uring;

/// One model, as the binary offers it.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// Its subcommand, and the `model` of its ready line and STATS.
    pub name: &'static str,
    /// One line, for `servers --help` (no full stop, as clap's own lines).
    pub summary: &'static str,
    /// Whether it can run on this machine: `Err(why)` if not. A model that
    /// needs something of the kernel checks for it here; `launch` refuses
    /// to start it, and `servers models` prints the reason.
    pub available: fn() -> Result<(), String>,
}

pub const THREAD_PER_CONN: Model =
    Model::ready("thread-per-conn", "One OS thread per connection, blocking reads and writes");
pub const POOL: Model =
    Model::ready("pool", "A fixed pool of blocking workers; each serves one connection until it closes");
pub const MIO_SINGLE: Model =
    Model::ready("mio-single", "One thread, one mio event loop for every socket; COMPUTE runs inline");
pub const MIO_MULTI: Model =
    Model::ready("mio-multi", "An acceptor, N mio IO loops and a rayon worker pool (FbThrift Cpp2's shape)");
pub const TOKIO: Model =
    Model::ready("tokio", "tokio's multi-thread runtime, one task per connection (reference peer)");
/// Needs io_uring from the kernel (Linux 6.1 or later, not disabled by
/// sysctl or seccomp): [`uring::available`] tries a real ring and says why not.
pub const URING: Model = Model {
    name: "uring",
    summary: "One thread, one io_uring: completions instead of readiness (Linux 6.1+)",
    available: uring::available,
};
/// Compiled in only with the `libevent` feature: when it is, it can run.
#[cfg(feature = "libevent")]
pub const LIBEVENT: Model =
    Model::ready("libevent", "The classic libevent echo server's design, which this project grew from: event base, evconnlistener, bufferevents (reference peer)");

/// Every model this binary was built with, in reading order.
pub const MODELS: &[Model] = &[
    THREAD_PER_CONN,
    POOL,
    MIO_SINGLE,
    MIO_MULTI,
    URING,
    TOKIO,
    #[cfg(feature = "libevent")]
    LIBEVENT,
];

impl Model {
    /// A model that needs nothing beyond what built it: it can always run.
    /// (A model that needs kernel support is a `Model { .. }` with its own
    /// `available`.)
    pub const fn ready(name: &'static str, summary: &'static str) -> Model {
        Model { name, summary, available: || Ok(()) }
    }

    /// `NAME<TAB>ready`, or `NAME<TAB>unavailable: REASON`.
    pub fn status_line(&self) -> String {
        match (self.available)() {
            Ok(()) => format!("{}\tready", self.name),
            Err(why) => format!("{}\tunavailable: {why}", self.name),
        }
    }
}

/// What `servers models` prints: one status line per model, in reading order.
pub fn listing() -> String {
    MODELS.iter().map(|m| m.status_line() + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_summaries_one_line() {
        for (i, m) in MODELS.iter().enumerate() {
            assert!(MODELS[..i].iter().all(|o| o.name != m.name), "{} twice", m.name);
            let one_line = !m.summary.is_empty() && !m.summary.contains('\n') && !m.summary.ends_with('.');
            assert!(one_line, "{}: the summary is one line without a full stop", m.name);
        }
    }

    #[test]
    fn a_status_line_says_ready_or_why_not() {
        let ready = Model::ready("x", "");
        assert_eq!(ready.status_line(), "x\tready");
        let not = Model { name: "y", summary: "", available: || Err("no kernel support".into()) };
        assert_eq!(not.status_line(), "y\tunavailable: no kernel support");
    }
}
