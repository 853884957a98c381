//! The server models, one file each, all with the same outer shape:
//! `Options`, `run(listener, options, shutdown)`, `Connection`, `handle_*`.

#[cfg(feature = "libevent")]
pub mod libevent;
pub mod mio_multi;
pub mod mio_single;
pub mod pool;
pub mod thread_per_conn;
pub mod tokio_model;
pub mod uring;
