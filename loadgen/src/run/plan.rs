//! What every load thread shares: the plan it loads by (read-only) and the
//! counters the main thread reads while the run goes on. Both phases of a
//! thread, connecting ([`super::connect`]) and loading ([`super::engine`]),
//! read them.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use super::workload::Workload;
use crate::records::config::{Protocol, Shape};

/// How often the load loop reports its counts (and may look for timeouts).
pub const HOUSEKEEPING: Duration = Duration::from_millis(10);

/// What every thread shares, read-only.
pub struct LoadPlan {
    pub target: std::net::SocketAddr,
    pub protocol: Protocol,
    pub shape: Shape,
    pub workload: Workload,
    pub timeout: Duration,
    /// Connections per second, for this thread.
    pub connect_rate: f64,
    pub connect_timeout: Duration,
    /// Over all threads.
    pub connections: u64,
}

/// Counters the main thread reads while the run goes on.
#[derive(Default)]
pub struct Shared {
    pub stop: Arc<AtomicBool>,
    pub answered: AtomicU64,
    pub open: AtomicU64,
}
