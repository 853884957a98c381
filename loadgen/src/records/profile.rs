//! The run JSON's `profile` and `run_queue` sections: where a request's
//! CPU went by category (from `loadgen run --profile`, see
//! `crate::profile`) and how long the server's threads waited to run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The run JSON's `profile` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProfileRecord {
    /// Samples per second and thread on a CPU.
    pub hz: u32,
    /// Seconds sampled: from perf's acknowledgement of "enable" at the
    /// window's start to that of "disable" at its end.
    pub window_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SideProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen: Option<SideProfile>,
}

/// One side's profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SideProfile {
    /// Samples taken (perf's; the folded file weighs each by its period,
    /// in ns of CPU, as inferno folds `cpu-clock`).
    pub samples: u64,
    /// The CPU per request the categories add up to (the run's measured
    /// figure for this side).
    pub cpu_us_per_req: f64,
    /// µs per request, by category (`categories::Category::name`).
    pub categories: BTreeMap<String, f64>,
    /// Share of samples in a named category (0–1); the rest is `other`.
    pub named_share: f64,
    /// `named_share` below 90%: the breakdown misses too much to be read.
    pub named_below_floor: bool,
    pub folded: String,
    pub svg: String,
}

/// The run JSON's `run_queue` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunQueue {
    /// The server's threads at the window's end.
    pub threads: u64,
    /// Their summed run-queue wait over the window (µs).
    pub wait_us: f64,
    /// That wait per request the server answered in the window (µs).
    pub wait_us_per_req: f64,
    /// `wait_us_per_req` over the mean latency. Not a share of it: the wait
    /// is every server thread's, and a thread may still wait to run after
    /// its answer has left (off every request's path), so this can exceed
    /// 1. Records written before it was renamed call it `share_of_latency`.
    #[serde(alias = "share_of_latency")]
    pub wait_over_latency: f64,
    /// How long reading every thread's schedstat took once (ms, wall
    /// clock), measured before the load.
    pub read_ms: f64,
}
