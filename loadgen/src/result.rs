//! What one `loadgen run` measured: the record that the sweep, the charts,
//! the report and the regression check all read.
//!
//! Every figure is measured, never derived from a setting: a field that a
//! run could not measure is `None`, not zero. Times are microseconds unless
//! the name says otherwise.

use serde::{Deserialize, Serialize};

/// One run of the load generator against one server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// The arguments, as given (so a reader can rerun it).
    pub args: Vec<String>,
    pub env: Env,
    pub connections: Connections,
    /// Seconds of the measured window (after warm-up), as actually elapsed.
    pub window_s: f64,
    pub counts: Counts,
    /// Answered-OK requests per second within the window.
    pub throughput_rps: f64,
    /// Latency. Open loop: from each request's *intended* send time
    /// (coordinated omission corrected, as wrk2). Closed loop: from the send.
    pub latency: Latency,
    /// Open loop only: from the actual send time, uncorrected, shown beside
    /// the corrected one so the effect of coordinated omission is visible.
    pub latency_uncorrected: Option<Latency>,
    /// The server's own counters (STATS deltas over the window), if an
    /// admin port was given.
    pub server: Option<ServerCost>,
    /// What the load generator itself cost, so a reader can check that it
    /// was not the bottleneck.
    pub loadgen: LoadgenCost,
    /// Requests answered per connection within the window.
    pub fairness: Fairness,
    /// True when the load generator's CPUs were 90% busy or more, whatever
    /// the server's state: the throughput is then (at least partly) the
    /// load generator's limit, and a difference between two such runs is
    /// not the servers'.
    pub loadgen_bound: bool,
    /// Once-per-second samples over warm-up and window.
    pub timeseries: Vec<Sample>,
    /// `None` when the run is valid; otherwise why it is not (not all
    /// connections established, mismatches, server died, interrupted...).
    pub failure: Option<String>,
    /// Things a reader should know that do not invalidate the run (no
    /// --admin given, STATS unreadable at the end, some connections reset).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Env {
    pub kernel: String,
    pub cpu_model: String,
    pub cores: usize,
    /// CPUs the load generator ran on (its affinity mask).
    pub loadgen_cpus: Vec<usize>,
    /// CPUs the server was pinned to, when known (set by the sweep).
    pub server_cpus: Option<Vec<usize>>,
    pub git_rev: String,
    /// `git status --porcelain` printed something outside `results/`
    /// (untracked files included; see `env::GitState`); `None` when unknown
    /// (no git, no checkout).
    #[serde(default)]
    pub git_dirty: Option<bool>,
    /// SHA-256 of the `loadgen` executable that made this result.
    #[serde(default)]
    pub loadgen_sha256: Option<String>,
    /// RFC 3339, UTC.
    pub date: String,
    pub hostname: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Connections {
    pub requested: u64,
    pub established: u64,
    pub failed: u64,
    /// Connect time percentiles (µs): p50, p90, p99, max.
    pub connect_us: Percentiles,
    /// Connections that never received a single answer during the run
    /// (e.g. the pool model past its size).
    pub never_served: u64,
    /// Time from connect to the first answer, over the connections that
    /// got one (µs). Shows an accept thread that falls behind.
    pub first_answer_us: Percentiles,
    /// Connections that had at least one request time out (`--timeout`).
    #[serde(default)]
    pub stuck: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Requests within the measured window. `sent = ok + errors + timeouts +
/// in_flight_end` (mismatches are counted among `ok` answers that failed
/// their check, see `mismatches`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub sent: u64,
    /// Answered with status OK (and checked).
    pub ok: u64,
    /// Answered with an error status (by status name).
    pub errors: u64,
    pub errors_by_status: std::collections::BTreeMap<String, u64>,
    /// OK answers whose payload, id or COMPUTE result was wrong.
    pub mismatches: u64,
    /// Answered later than `--timeout`, or never.
    pub timeouts: u64,
    /// Connections reset or closed by the server during the run.
    pub resets: u64,
    /// Sent in the window and still outstanding (neither answered nor past
    /// `--timeout`) when the run ended: `loadgen run` waits for the window's
    /// answers for a short drain after it, at most min(--timeout, 2 s).
    pub in_flight_end: u64,
    /// Mismatches at any time of the run, warm-up and drain included, plus
    /// answers that could not be decoded at all. Any of them fails the run
    /// (unless `--allow-mismatch`), even outside the window.
    #[serde(default)]
    pub mismatches_total: u64,
}

/// Latency summary (µs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub mean: f64,
    pub count: u64,
}

/// Server-side figures: STATS deltas over the window, divided by the
/// requests the server answered in that window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerCost {
    pub model: String,
    pub requests: u64,
    pub voluntary_cs_per_req: f64,
    pub involuntary_cs_per_req: f64,
    pub user_us_per_req: f64,
    pub sys_us_per_req: f64,
    /// user + sys.
    pub cpu_us_per_req: f64,
    /// System calls per request, every thread of the server (STATS
    /// `syscalls`); `None` where the server could not count them.
    #[serde(default)]
    pub syscalls_per_req: Option<f64>,
    /// Of those, the calls that wait (epoll_wait and friends, poll, select,
    /// futex: STATS `syscalls_wait`). `syscalls_per_req` minus this is the
    /// work: the reads and writes, exact per request.
    #[serde(default)]
    pub wait_syscalls_per_req: Option<f64>,
    /// Bytes the server read and wrote on data sockets per request,
    /// headers included (STATS `bytes_in + bytes_out`).
    #[serde(default)]
    pub bytes_per_req: f64,
    /// CPU time over wall time in the window (1.0 = one core busy).
    pub cpu_utilization: f64,
    /// At the end of the window.
    pub threads: u64,
    pub connections_open: u64,
    pub rss_bytes: u64,
    pub max_rss_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadgenCost {
    pub cpu_us_per_req: f64,
    pub user_us: u64,
    pub sys_us: u64,
    /// CPU time over wall time in the window (1.0 = one core busy).
    pub cpu_utilization: f64,
    pub rss_bytes: u64,
    pub max_rss_bytes: u64,
    pub threads: usize,
}

/// Spread of requests answered per connection in the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Fairness {
    pub min: u64,
    pub p1: u64,
    pub median: u64,
    pub max: u64,
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Seconds since the first connection was opened.
    pub t_s: f64,
    /// "warmup" or "window".
    pub phase: String,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub server_threads: Option<u64>,
    pub server_rss_bytes: Option<u64>,
}
