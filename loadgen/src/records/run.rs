//! What one `loadgen run` measured: the record that the sweep, the charts,
//! the report and the regression check all read.
//!
//! Every figure is measured, never derived from a setting. A figure that
//! only some runs can measure is an `Option`, `None` where this run could
//! not (the server's counters without `--admin`, the per-CPU times where
//! /proc/stat could not be read). A figure every run has is a number, and
//! `0` where there was nothing to measure: a run that never started its
//! load, a window without answers, a per-request cost with no request to
//! divide by. `failure` or a note then says why. Times are microseconds
//! unless the name says otherwise.
//!
//! Reading a result ([`RunResult::from_json_slice`], or a sweep's summary)
//! upgrades one written by an older `loadgen` first
//! ([`upgrade_legacy_result`]).

use serde::{Deserialize, Serialize};

use super::config::RunArgs;

/// One run of the load generator against one server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// The command line, as given (so a reader can rerun it). Readers read
    /// `config`, never this.
    pub args: Vec<String>,
    /// The run's configuration, typed: what every reader of the result
    /// reads (its rate, its requests, its windows). `None` only for a
    /// merged result written before configurations were stored (its
    /// command line is `loadgen merge`'s); results of `loadgen run` from
    /// before then get theirs from their command line when read
    /// ([`upgrade_legacy_result`]).
    pub config: Option<RunArgs>,
    pub env: Env,
    pub connections: ConnectionFigures,
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
    /// Open loop only: the load generator's own lateness (actual minus
    /// intended send time), apart from the server's latency.
    pub send_lag: Option<SendLag>,
    /// The latency of each method the run sent ("ECHO", "DELAY",
    /// "COMPUTE"), apart: answers and timeouts, counted like `latency`. In
    /// a mix it shows head-of-line blocking (ECHO waiting behind DELAY).
    #[serde(default)]
    pub latency_by_method: std::collections::BTreeMap<String, Latency>,
    /// The server's own counters (STATS deltas over the window), if an
    /// admin port was given.
    pub server: Option<ServerCost>,
    /// The server's CPU budget and its throttling over the window, when it
    /// ran in a cgroup (`--server-cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cgroup: Option<ServerCgroup>,
    /// What the load generator itself cost, so a reader can check that it
    /// was not the bottleneck.
    pub loadgen: LoadgenCost,
    /// Server and load generator together, per request: the cost that does
    /// not depend on which side the kernel charged. `None` without server
    /// counters.
    pub combined: Option<CombinedCost>,
    /// Every CPU's busy, softirq and steal time over the window, from
    /// /proc/stat; `None` where it could not be read (a note says why).
    pub proc_stat: Option<ProcStatWindow>,
    /// Requests answered per connection within the window.
    pub fairness: Fairness,
    /// True when the load generator's CPUs were 90% busy or more, whatever
    /// the server's state: the throughput is then (at least partly) the
    /// load generator's limit, and a difference between two such runs is
    /// not the servers'. Files written before this flag existed carried
    /// `loadgen_bound` instead (saturated *or* `send_lag_large`); reading
    /// them maps it back ([`upgrade_legacy_result`]).
    #[serde(default)]
    pub loadgen_saturated: bool,
    /// Open loop: the send lag's median is a quarter or more of the
    /// corrected latency's median (see [`SendLag::share_of_p50`]): that
    /// much of the latency is the load generator's own lateness. A flag of
    /// its own: a load generator 5% busy can still send late (one thread
    /// pacing many connections), and that says nothing about throughput.
    #[serde(default)]
    pub send_lag_large: bool,
    /// Which code ran on each side: embedded git revision and executable
    /// hash (absent from results written before it: all unknown).
    #[serde(default)]
    pub binaries: Binaries,
    /// Once-per-second samples over warm-up and window.
    pub timeseries: Vec<Sample>,
    /// Where the CPU went, by category, with the flame graphs' paths
    /// (`--profile`; see `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<super::profile::ProfileRecord>,
    /// How long the server's threads waited to run (a server on loopback
    /// with `--admin`; see `profile::runqueue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_queue: Option<super::profile::RunQueue>,
    /// `None` when the run is valid; otherwise why it is not (not all
    /// connections established, mismatches, server died, interrupted...).
    pub failure: Option<String>,
    /// Things a reader should know that do not invalidate the run (no
    /// --admin given, STATS unreadable at the end, some connections reset).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl RunResult {
    /// Read a run's JSON, whenever it was written: an older file is
    /// upgraded first ([`upgrade_legacy_result`]).
    pub fn from_json_slice(bytes: &[u8]) -> serde_json::Result<RunResult> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes)?;
        upgrade_legacy_result(&mut v).map_err(serde::de::Error::custom)?;
        serde_json::from_value(v)
    }

    /// The open loop's total rate (`--rate`, requests per second); `None`
    /// for a closed loop, or where the configuration is unknown.
    pub fn rate(&self) -> Option<f64> {
        self.config.as_ref()?.requests.rate
    }

    /// ECHO's own latency, if the run kept it apart (a mix of methods).
    pub fn echo_latency(&self) -> Option<&Latency> {
        self.latency_by_method.get("ECHO")
    }
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
    /// (untracked files included; see `crate::env::GitState`); `None` when unknown
    /// (no git, no checkout).
    pub git_dirty: Option<bool>,
    /// SHA-256 of the `loadgen` executable that made this result.
    pub loadgen_sha256: Option<String>,
    /// RFC 3339, UTC.
    pub date: String,
    pub hostname: String,
}

/// The code behind a run: both binaries, each by the revision it was built
/// from and the hash of the file that ran. `env.git_rev` is the checkout
/// found at run time, which may have moved on since the build.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Binaries {
    pub loadgen: BinaryId,
    pub server: BinaryId,
}

/// One binary that ran: `None` where it could not be known, and why.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BinaryId {
    /// The git revision embedded at build time (`--version`; the server's
    /// from STATS `revision`).
    pub revision: Option<String>,
    /// SHA-256 of the executable that ran (the server's from
    /// /proc/PID/exe, where the server is on this host).
    pub sha256: Option<String>,
    /// Why a figure above is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConnectionFigures {
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
    /// Connections whose first request (sent on every connection before
    /// the load, so that no connection is first served inside the window)
    /// was not answered within `--connect-timeout`. Any fails the run.
    #[serde(default)]
    pub unanswered_first: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Requests within the measured window. `sent = ok + errors + mismatches +
/// timeouts + in_flight_end`, and `scheduled = sent + unsent` (a mismatched
/// answer is counted in `mismatches` only, never in `ok`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    /// Open loop: requests the schedule intended within the window, every
    /// one of which is answered, timed out, in flight at the end or
    /// unsent. Closed loop: equal to `sent`.
    #[serde(default)]
    pub scheduled: u64,
    pub sent: u64,
    /// Open loop: intended within the window but never sent, because the
    /// connection still waited for an earlier answer when the run ended.
    /// Each is in the latency histogram from its intended time. Any fails
    /// the run (the rate was not offered).
    #[serde(default)]
    pub unsent: u64,
    /// `scheduled == ok + errors + mismatches + timeouts + in_flight_end +
    /// unsent`: every request the window owed is accounted for.
    #[serde(default)]
    pub accounted: bool,
    /// Answered with status OK (and checked).
    pub ok: u64,
    /// Answered with an error status (by status name).
    pub errors: u64,
    pub errors_by_status: std::collections::BTreeMap<String, u64>,
    /// Answers whose payload, id or COMPUTE result was wrong: neither `ok`
    /// nor `errors`, and not throughput.
    pub mismatches: u64,
    /// Not answered within `--timeout` of being sent (the latency counts from
    /// the intended time), or lost with a connection the server closed.
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

impl Counts {
    /// Requests that got an answer of any kind: ok, an error status, or a
    /// mismatched one. Per-request costs divide by this.
    pub fn answered(&self) -> u64 {
        self.ok + self.errors + self.mismatches
    }
}

/// The load generator's send lag in the open loop (µs): actual send minus
/// intended send, over the in-window requests whose connection was free at
/// their intended time (so the lag is its timer's and its thread's, not a
/// wait for the server's previous answer).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SendLag {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub count: u64,
    /// In-window requests that fell due while their connection still waited
    /// for an earlier answer: sent as soon as it came, their delay charged
    /// to the server.
    pub held_back: u64,
    /// The lag's median over the corrected latency's median.
    pub share_of_p50: f64,
}

/// Latency summary (µs). Every in-window request counts: answers at their
/// latency, requests timed out, lost or never sent at their wait when that
/// was found (at least `--timeout` for a timeout), so the tail is not cut
/// off at the timeout (open loop, uncorrected: answers only).
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
/// requests the server answered in that window (raw mode: the messages it
/// echoed, its bytes written over the message size, not its reads).
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
    pub syscalls_per_req: Option<f64>,
    /// Of those, the calls that wait (epoll_wait and friends, poll, select,
    /// futex: STATS `syscalls_wait`). `syscalls_per_req` minus this is the
    /// work: the reads and writes, exact per request.
    pub wait_syscalls_per_req: Option<f64>,
    /// Bytes the server read and wrote on data sockets per request,
    /// headers included (STATS `bytes_in + bytes_out`).
    #[serde(default)]
    pub bytes_per_req: f64,
    /// CPU time over wall time in the window (1.0 = one core busy).
    pub cpu_utilization: f64,
    /// Whether the server's STATS thread ran at real-time priority (so no
    /// busy thread could delay the snapshots); `None` where the server does
    /// not say. Its own use is left out of every figure above.
    pub admin_realtime: Option<bool>,
    /// At the end of the window.
    pub threads: u64,
    pub connections_open: u64,
    pub rss_bytes: u64,
    /// The server's own peak resident memory (STATS `max_rss_bytes`:
    /// `VmHWM`; servers built before it reported `ru_maxrss`, which can be
    /// their parent's peak).
    pub max_rss_bytes: u64,
    /// How often the server's limits against hostile clients acted, since
    /// it started, at the end of the window; `None` where the server does
    /// not report them. A benchmark run should show zeros: a limit that
    /// acted changed what was measured.
    pub limits_acted: Option<LimitsActed>,
}

/// STATS `connections_refused`, `partial_frame_timeouts` and
/// `write_timeouts` (proto/PROTOCOL.md): connections the server refused
/// past `--max-connections`, or closed for a stalled frame or write.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LimitsActed {
    pub connections_refused: u64,
    pub partial_frame_timeouts: u64,
    pub write_timeouts: u64,
}

/// The server's cgroup over the window: the budget it held, how often the
/// budget ran out (the kernel then stops every thread of the group until
/// the next period) and for how long.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerCgroup {
    pub path: String,
    /// The quota its files held (`None`: no quota).
    pub budget: Option<crate::cgroup::CpuBudget>,
    /// `cpu.stat`'s growth over the window: periods with runnable threads,
    /// of which throttled, and the time throttled (summed over CPUs, µs).
    pub window: crate::cgroup::CpuStat,
    /// Throttled periods over periods (0–1).
    pub throttled_share: f64,
    /// Whether the server's admin thread (STATS) was inside the budget at
    /// the window's end (the sweep moves it out where cgroup v1 allows).
    pub admin_inside: bool,
    /// The group's threads at the window's end.
    #[serde(default)]
    pub threads: u64,
    /// How many of them were, on average, runnable but waiting to run
    /// (for a CPU, or for the next quota period): their summed wait over
    /// the time between the two reads (Little's law).
    pub mean_waiting: Option<f64>,
    /// What reading their schedstat files cost the load generator, per
    /// edge of the window (ms of its CPU; taken out of its figures).
    #[serde(default)]
    pub read_cost_ms: f64,
    /// Time the threads spent runnable but not running over the window
    /// (summed over threads, µs; /proc/TID/schedstat), and the times they
    /// were scheduled in; `None` where the kernel's delay accounting is off
    /// (`sysctl kernel.task_delayacct=1` before the server starts).
    pub wait_us: Option<u64>,
    pub timeslices: Option<u64>,
    /// `wait_us` over `timeslices`: how long a thread waited each time it
    /// was ready to run.
    pub wait_per_slice_us: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadgenCost {
    pub cpu_us_per_req: f64,
    /// `cpu_us_per_req` split: the load generator's own code, and the
    /// kernel work charged to it (its system calls, and on loopback the
    /// server's receive path, which runs in the sender's context).
    #[serde(default)]
    pub user_us_per_req: f64,
    #[serde(default)]
    pub sys_us_per_req: f64,
    pub user_us: u64,
    pub sys_us: u64,
    /// CPU time over wall time in the window (1.0 = one core busy).
    pub cpu_utilization: f64,
    pub rss_bytes: u64,
    /// Its own peak resident memory (`VmHWM`; results written before it
    /// carry `ru_maxrss`, which can be the parent's, the sweep's, peak).
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

/// Server and load generator together, µs per request: each side's CPU
/// (its own `getrusage`, the server's through STATS) over the requests it
/// handled in the window, added up.
///
/// On loopback the sender runs the receiver's TCP path (the softirq work is
/// charged to whichever task is sending), and a thread that wakes another
/// pays for the wake-up; so how the cost splits between the two processes
/// depends on the model, and the same load generator costs more against a
/// model that makes it do more of the kernel's work. The sum does not
/// depend on the split: cost claims rest on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CombinedCost {
    /// System CPU: server + load generator.
    pub sys_us_per_req: f64,
    /// User + system CPU: server + load generator.
    pub cpu_us_per_req: f64,
    /// The server's part of `cpu_us_per_req` (0–1).
    pub server_share: f64,
}

/// /proc/stat over the measured window: what every CPU of the machine did,
/// whoever it was charged to (including work charged to no process of the
/// run: softirq on an idle CPU, ksoftirqd, other processes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcStatWindow {
    /// Wall time between the two reads of /proc/stat (µs).
    pub window_us: u64,
    /// /proc/stat counts in clock ticks of this many µs (10 000 at the
    /// usual 100 Hz): each figure below is exact only to a few ticks.
    pub tick_us: u64,
    /// Busy time of all CPUs per answered request (µs): the machine-wide
    /// figure, every CPU's work whoever was charged.
    pub busy_us_per_req: f64,
    /// Per CPU, by number.
    pub cpus: std::collections::BTreeMap<usize, CpuTimes>,
}

/// One CPU's time over the window (µs), from /proc/stat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuTimes {
    /// Whose CPU it was: the server's, the load generator's, both's, or
    /// neither's (the server's set is known only from `--server-cpus`).
    pub role: CpuRole,
    /// `user + system + irq + softirq`: the time it ran anything (steal
    /// and idle excluded).
    pub busy_us: u64,
    /// user and nice.
    pub user_us: u64,
    pub system_us: u64,
    pub irq_us: u64,
    pub softirq_us: u64,
    /// Time a hypervisor ran someone else while this CPU had work.
    pub steal_us: u64,
    /// idle and iowait.
    pub idle_us: u64,
}

/// Which side of the run a CPU belonged to.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CpuRole {
    Server,
    Loadgen,
    /// In both sets (no pinning, or a shared CPU).
    Both,
    #[default]
    Neither,
}

/// How busy its CPUs make a load generator saturated
/// ([`RunResult::loadgen_saturated`]), whatever the server's state.
pub const LOADGEN_SATURATED_UTILIZATION: f64 = 0.9;

/// Whether a load generator this busy on this many usable CPUs was
/// saturated ([`RunResult::loadgen_saturated`]).
pub fn is_loadgen_saturated(loadgen_utilization: f64, loadgen_cpus: f64) -> bool {
    loadgen_utilization >= LOADGEN_SATURATED_UTILIZATION * loadgen_cpus
}

/// Bring a run's JSON written by an older `loadgen` up to this one's, in
/// place: its configuration from its command line where it has none, and
/// `loadgen_bound` split ([`upgrade_loadgen_bound`]). The error says why a
/// file cannot be read (its command line does not parse as `loadgen run`'s
/// flags).
pub fn upgrade_legacy_result(v: &mut serde_json::Value) -> Result<(), String> {
    upgrade_loadgen_bound(v);
    let Some(obj) = v.as_object_mut() else { return Ok(()) };
    if obj.get("config").is_some_and(|c| !c.is_null()) {
        return Ok(());
    }
    let argv: Vec<String> = obj.get("args").and_then(|a| serde_json::from_value(a.clone()).ok()).unwrap_or_default();
    if let Some(config) = RunArgs::from_stored_argv(&argv)? {
        obj.insert("config".into(), serde_json::to_value(config).map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// Map a run written before the split of `loadgen_bound` (which was
/// `saturated || send_lag_large`) onto `loadgen_saturated`, in place; a
/// run that already has `loadgen_saturated` is left as it is.
///
/// Honestly, not by renaming: an old `loadgen_bound: false` was neither;
/// `true` without `send_lag_large` can only have been the CPUs (files older
/// than `send_lag_large` read it as false, and their flag was the CPUs
/// alone); `true` *with* `send_lag_large` could have been either, so the
/// CPU rule is applied again to the figures the file stored: the load
/// generator's utilization over the CPUs it could use (its worker threads,
/// `loadgen.threads` less the sampler and the main thread, at most its
/// affinity mask), exactly as `loadgen run` computes it today. (A merged
/// run's `threads` adds its parts' up; its old flag was already the parts'
/// OR, so the rule applied to it is an approximation, on old merged files
/// only.)
fn upgrade_loadgen_bound(v: &mut serde_json::Value) {
    let Some(obj) = v.as_object_mut() else { return };
    let Some(bound) = obj.remove("loadgen_bound") else { return };
    if obj.contains_key("loadgen_saturated") {
        return;
    }
    let lag = obj.get("send_lag_large").and_then(|x| x.as_bool()).unwrap_or(false);
    let saturated = match bound.as_bool().unwrap_or(false) {
        false => false,
        true if !lag => true,
        true => {
            let loadgen = obj.get("loadgen");
            let util = loadgen.and_then(|l| l["cpu_utilization"].as_f64()).unwrap_or(0.0);
            let threads = loadgen.and_then(|l| l["threads"].as_u64()).unwrap_or(3).saturating_sub(2).max(1);
            let cpus = obj.get("env").and_then(|e| e["loadgen_cpus"].as_array()).map_or(1, |c| c.len().max(1));
            is_loadgen_saturated(util, threads.min(cpus as u64) as f64)
        }
    };
    obj.insert("loadgen_saturated".into(), saturated.into());
}

#[cfg(test)]
mod legacy_tests {
    use super::*;

    /// A run as written before the split, with the figures that decide it.
    fn old_run(bound: bool, lag_large: Option<bool>, utilization: f64) -> RunResult {
        let mut v = serde_json::to_value(crate::testdata::result("mio-single", 200, 1000.0)).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("loadgen_saturated");
        obj.insert("loadgen_bound".into(), bound.into());
        match lag_large {
            Some(l) => obj.insert("send_lag_large".into(), l.into()),
            None => obj.remove("send_lag_large"),
        };
        obj.get_mut("loadgen").unwrap()["cpu_utilization"] = utilization.into();
        obj.get_mut("loadgen").unwrap()["threads"] = 3.into();
        obj.get_mut("env").unwrap()["loadgen_cpus"] = serde_json::json!([1]);
        RunResult::from_json_slice(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    /// `loadgen_bound` was `saturated || send_lag_large`: each case maps to
    /// what the stored figures say, never a blanket rename.
    #[test]
    fn an_old_loadgen_bound_maps_to_saturated_honestly() {
        assert!(!old_run(false, Some(false), 0.95).loadgen_saturated, "not bound: neither");
        assert!(old_run(true, Some(false), 0.95).loadgen_saturated, "bound without the lag: the CPUs");
        assert!(old_run(true, None, 0.95).loadgen_saturated, "older than send_lag_large: the CPUs");
        let late = old_run(true, Some(true), 0.05);
        assert!(!late.loadgen_saturated && late.send_lag_large, "bound by the lag alone, 5% busy");
        assert!(old_run(true, Some(true), 0.95).loadgen_saturated, "both");
        let new = serde_json::to_value(old_run(true, Some(true), 0.05)).unwrap();
        assert!(new.get("loadgen_bound").is_none() && new["loadgen_saturated"] == false, "{new}");
    }

    /// `run_queue.share_of_latency` was renamed `wait_over_latency` (it can
    /// pass 1, so it is no share): an old run reads with its figure kept.
    #[test]
    fn an_old_run_queue_share_reads_as_wait_over_latency() {
        let mut v = serde_json::to_value(crate::testdata::result("thread-per-conn", 5000, 1000.0)).unwrap();
        v.as_object_mut().unwrap().insert(
            "run_queue".into(),
            serde_json::json!({"threads": 5003, "wait_us": 9.0e6, "wait_us_per_req": 94686.0,
                               "share_of_latency": 1.12, "read_ms": 51.5}),
        );
        let run = RunResult::from_json_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(run.run_queue.as_ref().unwrap().wait_over_latency, 1.12);
        let new = serde_json::to_value(&run).unwrap();
        assert!(new["run_queue"].get("share_of_latency").is_none() && new["run_queue"]["wait_over_latency"] == 1.12);
    }
}
