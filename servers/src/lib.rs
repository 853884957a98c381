//! Blocking and non-blocking TCP server models, side by side.
//!
//! Every model speaks the same protocol (the `proto` crate), counts the same
//! things ([`stats`]) and is started the same way ([`launch`]), so that what
//! differs between them is only how they wait for I/O. Read the models in
//! this order:
//!
//! 1. [`models::thread_per_conn`]: one OS thread per connection, blocking I/O.
//! 2. [`models::pool`]: a fixed pool of such threads; connections wait in line.
//! 3. [`models::mio_single`]: one thread, one event loop, every socket; the
//!    whole non-blocking story, with the connection's state machine.
//! 4. [`models::mio_multi`]: an acceptor, N IO loops and a worker pool,
//!    the shape of FbThrift's Cpp2 server, on mio-single's connection code.
//! 5. [`models::uring`]: one thread, one io_uring: the kernel completes the
//!    reads and sends it was handed, instead of reporting readiness.
//!
//! Then the reference peers: [`models::tokio_model`] and, with the `libevent`
//! feature, `models::libevent` (the seed's own design, in C). [`models::MODELS`]
//! lists them all; [`limits`] holds every model's limits in one table; the
//! mio models share only [`timers`] and [`accept`].

pub mod accept;
pub mod admin;
pub mod dispatch;
pub mod launch;
pub mod limits;
pub mod log;
pub mod models;
pub mod net;
pub mod shutdown;
pub mod stall;
pub mod stats;
pub mod syscount;
pub mod timers;

pub use launch::{CommonOptions, Protocol};

/// The git revision this binary was built from: 12 hex digits of HEAD,
/// `-dirty` when the tree had changes outside `results/`, or "unknown (no
/// git)" (embedded by build.rs, see build/revision.rs at the workspace root).
pub const REVISION: &str = env!("IOMODELS_REVISION");

/// `--version`: the package version and [`REVISION`].
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("IOMODELS_REVISION"), ")");

pub use shutdown::Shutdown;
