//! A run's typed configuration: the flags of `loadgen run` ([`RunArgs`]),
//! their parsers, the checks that refuse combinations that make no sense
//! (each naming the flags at fault), and the way back to a command line.
//!
//! One struct is the truth: clap parses `loadgen run`'s flags into it, the
//! run stores it in its result (`RunResult::config`), the sweep builds one
//! per run and turns it into the child's flags in one place
//! ([`RunArgs::to_argv`]), and every reader of a result reads its fields,
//! never the stored argument list. What a sweep's scenario decides (the
//! requests and their loop) is a part of its own, [`Requests`].
//!
//! Parsing is split from running so that every mistake is caught before a
//! single connection is opened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use clap::Parser;
use proto::Method;
use serde::{Deserialize, Serialize};

use super::clock;

/// `framed` (PROTOCOL.md) or `raw` (bytes in, the same bytes out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Framed,
    Raw,
}

/// The method every request uses, when there is no `--mix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodArg {
    Echo,
    Delay,
    Compute,
}

impl MethodArg {
    pub fn method(self) -> Method {
        match self {
            MethodArg::Echo => Method::Echo,
            MethodArg::Delay => Method::Delay,
            MethodArg::Compute => Method::Compute,
        }
    }
}

/// Sampling frequency when `--profile-hz` is not given: 999 Hz, not 1000,
/// so that sampling does not run in lockstep with 1 ms timers.
pub const DEFAULT_PROFILE_HZ: u32 = 999;

/// Flags of `loadgen run`: a run's whole configuration, as its result
/// stores it.
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct RunArgs {
    /// The server's data port.
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// The server's admin port, for its STATS counters. Optional: without
    /// it the server's cost is not measured (the summary says so).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// `framed` (PROTOCOL.md) or `raw` (fixed-size messages, echoed back).
    #[arg(long, value_enum, default_value_t = Protocol::Framed)]
    pub protocol: Protocol,
    /// What each connection sends, and when.
    #[command(flatten)]
    #[serde(flatten)]
    pub requests: Requests,
    /// mio event-loop threads; the connections are split between them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Connections to open and keep open for the whole run.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,
    /// Connections opened per second, in batches every 50 ms, so that the
    /// server's listen backlog never overflows.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_rate: u32,
    /// A connection not established within this time has failed; so has
    /// one whose first request (sent on every connection before the load)
    /// is not answered within this time.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Run even if not every connection could be established.
    #[arg(long)]
    pub allow_partial: bool,
    /// Load before the measured window (not counted): `2s`, `500ms`, `1.5`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// The measured window: `2s`, `500ms`, `1.5` (seconds).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// An answer later than this after the request was sent counts as a
    /// timeout, and so does a request never answered (its latency still
    /// counts from its intended time, and enters the histogram).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Do not fail the run when answers do not match what was sent.
    #[arg(long)]
    pub allow_mismatch: bool,
    /// The workload expects error statuses (say, payloads over the server's
    /// limit): do not fail the run when answers carry one.
    #[arg(long)]
    pub expect_errors: bool,
    /// Write the whole result (a `RunResult`) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an HdrHistogram interval log (V2 compressed, one interval a second).
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
    /// Write the latency percentile distribution, as wrk2 prints it.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// No progress bar and no summary on stdout.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// CPUs the server is pinned to (`0,2-3`); only recorded in the result
    /// (`env.server_cpus`, and each CPU's `role` in `proc_stat`).
    #[arg(long, value_name = "LIST", value_parser = |s: &str| parse_cpu_list(s).map(CpuList))]
    pub server_cpus: Option<CpuList>,
    /// The server's cgroup, when it runs under a CPU budget (the sweep's
    /// `--server-cpu-budget` passes it): its budget (v1
    /// `cpu.cfs_quota_us`/`cpu.cfs_period_us`, v2 `cpu.max`) and its
    /// throttling over the window (`cpu.stat`) go into the result
    /// (`server_cgroup`). To run a server under a budget by hand (root,
    /// cgroup v1's cpu hierarchy; with v2's cpu controller write
    /// `cpu.max` as "QUOTA PERIOD" instead): `mkdir
    /// /sys/fs/cgroup/cpu/iomodels-try; echo 5000 >
    /// /sys/fs/cgroup/cpu/iomodels-try/cpu.cfs_period_us; echo 1500 >
    /// /sys/fs/cgroup/cpu/iomodels-try/cpu.cfs_quota_us` (0.3 CPU), start
    /// the server with `sh -c 'echo $$ >
    /// /sys/fs/cgroup/cpu/iomodels-try/cgroup.procs; exec servers MODEL'`,
    /// move its admin thread out (`echo TID > /sys/fs/cgroup/cpu/tasks`,
    /// TID from `grep -l admin /proc/PID/task/*/comm`), pass this flag, and
    /// afterwards `rmdir /sys/fs/cgroup/cpu/iomodels-try` (once the server
    /// has exited). `scripts/try --cpu-budget F` does all of this.
    #[arg(long, value_name = "DIR")]
    pub server_cgroup: Option<PathBuf>,
    /// Begin the load at this wall-clock time (RFC 3339 or unix seconds),
    /// once every connection is open and served: N load generators given
    /// the same time measure the same window (see `loadgen merge`).
    #[arg(long, value_name = "TIME", value_parser = clock::parse_time)]
    pub start_at: Option<SystemTime>,
    /// Name this load generator among several: written into the JSON with
    /// its whole histograms (so that `loadgen merge` can add it up) and on
    /// every interval of the --hlog.
    #[arg(long, value_name = "NAME", value_parser = clock::parse_tag)]
    pub tag: Option<String>,
    /// Profile the server's CPU over the measured window only, into DIR:
    /// perf's on-CPU stacks (`cpu-clock` on every CPU, kernel included,
    /// `perf.data`; needs perf, and root, CAP_PERFMON or
    /// `kernel.perf_event_paranoid` <= 0: without them the run goes on,
    /// unprofiled, and says so), the server's folded (`server.folded`),
    /// drawn as a flame graph (`server.svg`) and split by category into µs
    /// per request (the JSON's `profile`). Needs `--admin` (the server's
    /// pid) on loopback. Profiling costs CPU: keep profiled runs apart.
    #[arg(long, value_name = "DIR")]
    pub profile: Option<PathBuf>,
    /// Samples per second for `--profile`.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PROFILE_HZ,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub profile_hz: u32,
    /// With `--profile`: profile the load generator too (`loadgen.*`).
    #[arg(long, requires = "profile")]
    pub profile_loadgen: bool,
}

/// What each connection sends, and when: the methods and their sizes, and
/// the loop (closed, with its depth and think time, or open at a rate).
/// A sweep's scenario is one of these.
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct Requests {
    /// Closed loop: requests in flight per connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub depth: u32,
    /// Closed loop: microseconds a connection waits after an answer before
    /// sending its next request. The connections start evenly phased over
    /// one think time, each sending its --depth requests together, so that
    /// they do not all send in the same instant, wave after wave.
    #[arg(long, value_name = "US", conflicts_with = "rate")]
    pub think_us: Option<u64>,
    /// Open loop: requests per second in total, spread evenly over the
    /// connections. Latency counts from each request's intended send time.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// The request method (default echo).
    #[arg(long, value_enum, conflicts_with = "mix")]
    pub method: Option<MethodArg>,
    /// A weighted mix of methods, such as `echo=90,compute=10`; each
    /// request's method is a deterministic function of its id.
    #[arg(long, value_parser = parse_mix)]
    pub mix: Option<Mix>,
    /// ECHO payload size in bytes (raw mode: the message size).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=proto::DEFAULT_MAX_FRAME as i64))]
    pub size: u32,
    /// DELAY: microseconds the server waits before answering.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=proto::MAX_DELAY_US as i64))]
    pub delay_us: u32,
    /// COMPUTE: rounds of xorshift the server runs.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=proto::MAX_ROUNDS as i64))]
    pub rounds: u32,
}

/// A list of CPUs, as `--server-cpus` takes it (a newtype, so that clap
/// takes `0,2-3` as one value rather than many).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CpuList(pub Vec<usize>);

/// The shape of the load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Closed { depth: u32, think: Duration },
    Open { rate: f64 },
}

impl Requests {
    pub fn shape(&self) -> Shape {
        match self.rate {
            Some(rate) => Shape::Open { rate },
            None => Shape::Closed { depth: self.depth, think: Duration::from_micros(self.think_us.unwrap_or(0)) },
        }
    }

    /// The methods and their weights (a single method has weight 1).
    pub fn mix(&self) -> Mix {
        match (&self.mix, self.method) {
            (Some(m), _) => m.clone(),
            (None, m) => Mix(vec![(m.unwrap_or(MethodArg::Echo).method(), 1)]),
        }
    }

    /// The flags that give these requests, those left at their default
    /// left out (a scenario's flags, as `env.json` lists them).
    pub fn to_argv(&self) -> Vec<String> {
        let (mut argv, default) = (Argv::default(), Requests::default());
        argv.changed("--depth", self.depth, default.depth);
        argv.some("--think-us", self.think_us);
        argv.some("--rate", self.rate);
        argv.some("--method", self.method.map(|m| m.method().name().to_lowercase()));
        argv.some("--mix", self.mix.as_ref());
        argv.changed("--size", self.size, default.size);
        argv.changed("--delay-us", self.delay_us, default.delay_us);
        argv.changed("--rounds", self.rounds, default.rounds);
        argv.0
    }
}

impl Default for Requests {
    /// `loadgen run`'s defaults: one 64-byte ECHO in flight per connection.
    fn default() -> Requests {
        Flags::<Requests>::try_parse_from::<[&str; 0], &str>([]).expect("the defaults parse").flags
    }
}

impl RunArgs {
    /// A run against `target` sending `requests`, every other flag at its
    /// default (the sweep sets the ones it needs).
    pub fn new(target: SocketAddr, requests: Requests) -> RunArgs {
        let target = target.to_string();
        let flags = Flags::<RunArgs>::try_parse_from(["--target", target.as_str()]).expect("the defaults parse");
        RunArgs { requests, ..flags.flags }
    }

    /// The configuration a stored command line gave (`loadgen run FLAGS`),
    /// for results written before `RunResult::config` existed; `None` for
    /// another command's (a merged result stored `loadgen merge ...`).
    pub fn from_stored_argv(argv: &[String]) -> Result<Option<RunArgs>, String> {
        if argv.get(1).map(String::as_str) != Some("run") {
            return Ok(None);
        }
        match Flags::<RunArgs>::try_parse_from(&argv[2..]) {
            Ok(f) => Ok(Some(f.flags)),
            Err(e) => Err(format!("its stored `loadgen run` flags do not parse: {}", e.kind())),
        }
    }

    /// `loadgen run`'s flags for this configuration: the one place a
    /// configuration becomes a command line (flags at their default are
    /// left out). Parsing them gives this configuration back.
    pub fn to_argv(&self) -> Vec<String> {
        let (mut argv, default) = (Argv::default(), RunArgs::new(self.target, Requests::default()));
        argv.push("--target", self.target);
        argv.some("--admin", self.admin);
        if self.protocol != default.protocol {
            argv.push("--protocol", if self.protocol == Protocol::Raw { "raw" } else { "framed" });
        }
        argv.0.extend(self.requests.to_argv());
        argv.changed("--threads", self.threads, default.threads);
        argv.changed("--connections", self.connections, default.connections);
        argv.changed("--connect-rate", self.connect_rate, default.connect_rate);
        argv.changed("--connect-timeout", duration_text(self.connect_timeout), duration_text(default.connect_timeout));
        argv.changed("--warmup", duration_text(self.warmup), duration_text(default.warmup));
        argv.changed("--duration", duration_text(self.duration), duration_text(default.duration));
        argv.changed("--timeout", duration_text(self.timeout), duration_text(default.timeout));
        argv.switch("--allow-partial", self.allow_partial);
        argv.switch("--allow-mismatch", self.allow_mismatch);
        argv.switch("--expect-errors", self.expect_errors);
        argv.some("--json", self.json.as_ref().map(|p| p.display()));
        argv.some("--hlog", self.hlog.as_ref().map(|p| p.display()));
        argv.some("--hgrm", self.hgrm.as_ref().map(|p| p.display()));
        argv.switch("--quiet", self.quiet);
        argv.some("--server-cpus", self.server_cpus.as_ref().map(|c| crate::cpus::list(&c.0)));
        argv.some("--server-cgroup", self.server_cgroup.as_ref().map(|p| p.display()));
        argv.some("--start-at", self.start_at.map(clock::unix_s));
        argv.some("--tag", self.tag.as_ref());
        argv.some("--profile", self.profile.as_ref().map(|p| p.display()));
        if self.profile.is_some() {
            argv.changed("--profile-hz", self.profile_hz, DEFAULT_PROFILE_HZ);
        }
        argv.switch("--profile-loadgen", self.profile_loadgen);
        argv.0
    }

    /// Refuse combinations that make no sense, naming the flags.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(at) = self.start_at {
            clock::check_start_at(at).map_err(anyhow::Error::msg)?;
        }
        let r = &self.requests;
        if let Some(dir) = &self.server_cgroup {
            if let Err(e) = crate::cgroup::CpuStat::read(dir) {
                bail!("--server-cgroup {}: not a cgroup with the cpu controller ({e})", dir.display());
            }
        }
        for (flag, d) in
            [("--duration", self.duration), ("--timeout", self.timeout), ("--connect-timeout", self.connect_timeout)]
        {
            if d.is_zero() {
                bail!("{flag} must be more than 0");
            }
        }
        if let Some(rate) = r.rate {
            if !(rate.is_finite() && rate > 0.0) {
                bail!("--rate {rate}: must be a positive number of requests per second");
            }
            if r.depth > 1 {
                bail!(
                    "--rate cannot be combined with --depth {}: an open loop keeps one request in flight per \
                     connection, on its own schedule",
                    r.depth
                );
            }
            let total = rate * self.duration.as_secs_f64();
            if total < self.connections as f64 {
                bail!(
                    "--rate {rate} is too low for --connections {}: over --duration {:?} only {total:.0} requests \
                     would be sent, so some connections would never send one (raise --rate or lower --connections)",
                    self.connections,
                    self.duration
                );
            }
        }
        if self.protocol == Protocol::Raw {
            if r.mix.is_some() || r.method.is_some_and(|m| m != MethodArg::Echo) {
                bail!("--protocol raw only echoes bytes: --method delay/compute and --mix need --protocol framed");
            }
            if r.depth > 1 {
                bail!("--protocol raw cannot be combined with --depth {}: raw messages carry no id", r.depth);
            }
            if r.size == 0 {
                bail!("--protocol raw needs --size of at least 1 byte");
            }
        }
        Ok(())
    }
}

/// A weighted list of methods, as given to `--mix` (and stored so).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mix(pub Vec<(Method, u32)>);

impl TryFrom<String> for Mix {
    type Error = String;
    fn try_from(text: String) -> Result<Mix, String> {
        parse_mix(&text)
    }
}

impl From<Mix> for String {
    fn from(mix: Mix) -> String {
        mix.to_string()
    }
}

impl Mix {
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, w)| *w as u64).sum()
    }
}

impl std::fmt::Display for Mix {
    /// As `--mix` takes it: `echo=90,compute=10`.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(m, w)| format!("{}={w}", m.name().to_lowercase())).collect();
        f.write_str(&parts.join(","))
    }
}

/// A command line being built: flag and value pairs.
#[derive(Default)]
struct Argv(Vec<String>);

impl Argv {
    fn push(&mut self, flag: &str, value: impl std::fmt::Display) {
        self.0.extend([flag.to_string(), value.to_string()]);
    }
    fn some(&mut self, flag: &str, value: Option<impl std::fmt::Display>) {
        if let Some(v) = value {
            self.push(flag, v);
        }
    }
    fn changed<T: std::fmt::Display + PartialEq>(&mut self, flag: &str, value: T, default: T) {
        if value != default {
            self.push(flag, value);
        }
    }
    fn switch(&mut self, flag: &str, on: bool) {
        if on {
            self.0.push(flag.to_string());
        }
    }
}

/// A configuration's flags parsed on their own (no program name): how
/// defaults and stored command lines are read.
#[derive(clap::Parser)]
#[command(no_binary_name = true)]
struct Flags<T: clap::Args> {
    #[command(flatten)]
    flags: T,
}

/// A duration as [`parse_duration`] reads it back exactly: whole seconds,
/// milliseconds, microseconds or nanoseconds.
fn duration_text(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        _ if ns.is_multiple_of(1_000_000_000) => format!("{}s", ns / 1_000_000_000),
        _ if ns.is_multiple_of(1_000_000) => format!("{}ms", ns / 1_000_000),
        _ if ns.is_multiple_of(1_000) => format!("{}us", ns / 1_000),
        _ => format!("{ns}ns"),
    }
}

/// `echo=90,compute=10` -> [(Echo, 90), (Compute, 10)].
pub fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut out: Vec<(Method, u32)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected METHOD=WEIGHT, as in echo=90,compute=10"))?;
        let method = match name.trim().to_ascii_lowercase().as_str() {
            "echo" => Method::Echo,
            "delay" => Method::Delay,
            "compute" => Method::Compute,
            other => return Err(format!("`{other}` is not a method (echo, delay or compute)")),
        };
        let weight: u32 = weight.trim().parse().map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
        if out.iter().any(|(m, _)| *m == method) {
            return Err(format!("{} appears twice", name.trim()));
        }
        if weight > 0 {
            out.push((method, weight));
        }
    }
    if out.is_empty() {
        return Err("no method with a weight above 0".into());
    }
    Ok(Mix(out))
}

/// `2s`, `500ms`, `250us`, `1.5` (seconds), `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{s}`: expected a duration such as 2s, 500ms or 1.5"))?;
    let unit_ns: u64 = match unit.trim() {
        "" | "s" | "sec" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "ns" => 1,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => return Err(format!("`{s}`: unknown unit `{other}` (use ns, us, ms, s, m or h)")),
    };
    let secs = value * unit_ns as f64 / 1e9;
    if !(secs.is_finite() && secs < 1e7) {
        return Err(format!("`{s}`: out of range"));
    }
    // A whole number of a unit is exact (so a written-out duration reads
    // back as it was); a fraction is rounded to the nanosecond.
    match number.parse::<u64>() {
        Ok(whole) => Ok(Duration::from_nanos(whole * unit_ns)),
        Err(_) => Ok(Duration::from_nanos((value * unit_ns as f64).round() as u64)),
    }
}

/// `0,2-3` -> [0, 2, 3].
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("`{part}`: expected CPU or FIRST-LAST"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 4096 {
                    return Err(format!("`{part}`: not a range"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    if cpus.is_empty() {
        return Err("empty CPU list".into());
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2500000001ns"), Ok(Duration::from_nanos(2_500_000_001)), "whole units are exact");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn mixes() {
        assert_eq!(parse_mix("echo=90,compute=10"), Ok(Mix(vec![(Method::Echo, 90), (Method::Compute, 10)])));
        assert_eq!(parse_mix("delay=1, echo=0").unwrap().0, vec![(Method::Delay, 1)]);
        assert!(parse_mix("echo").unwrap_err().contains("METHOD=WEIGHT"));
        assert!(parse_mix("stats=1").unwrap_err().contains("not a method"));
        assert!(parse_mix("echo=1,echo=2").unwrap_err().contains("twice"));
        assert!(parse_mix("echo=0").is_err());
        assert!(parse_mix("echo=x").is_err());
    }

    /// A configuration turned into flags parses back into itself: the
    /// sweep's children run exactly what the sweep built.
    #[test]
    fn flags_parse_back_into_the_configuration() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let requests = Requests {
            mix: Some(parse_mix("echo=9,delay=1").unwrap()),
            delay_us: 5000,
            depth: 16,
            think_us: Some(400_000),
            ..Requests::default()
        };
        let full = RunArgs {
            admin: Some("127.0.0.1:2".parse().unwrap()),
            protocol: Protocol::Framed,
            threads: 3,
            connections: 5000,
            connect_timeout: Duration::from_millis(1500),
            warmup: Duration::from_micros(250),
            duration: Duration::from_nanos(2_500_000_001),
            allow_partial: true,
            json: Some("d/x.json".into()),
            quiet: true,
            server_cpus: Some(CpuList(vec![0, 2, 3])),
            server_cgroup: Some("/sys/fs/cgroup/x".into()),
            start_at: Some(at),
            tag: Some("lg0".into()),
            ..RunArgs::new("127.0.0.1:1".parse().unwrap(), requests)
        };
        let open = RunArgs {
            protocol: Protocol::Raw,
            requests: Requests { rate: Some(2500.5), method: Some(MethodArg::Echo), size: 1, ..Requests::default() },
            ..RunArgs::new("[::1]:9".parse().unwrap(), Requests::default())
        };
        for config in [full, open] {
            let argv: Vec<String> = ["loadgen".to_string(), "run".into()].into_iter().chain(config.to_argv()).collect();
            assert_eq!(RunArgs::from_stored_argv(&argv), Ok(Some(config.clone())), "{argv:?}");
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(serde_json::from_str::<RunArgs>(&json).unwrap(), config, "{json}");
        }
        let defaults = RunArgs::new("127.0.0.1:1".parse().unwrap(), Requests::default());
        assert_eq!(defaults.to_argv(), ["--target", "127.0.0.1:1"], "defaults are left out");
    }

    /// A stored command line of another command is no run's; one that does
    /// not parse says so.
    #[test]
    fn stored_command_lines() {
        let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(RunArgs::from_stored_argv(&argv("loadgen merge out.json a.json b.json")), Ok(None));
        let paced = RunArgs::from_stored_argv(&argv("/x/loadgen run --target 127.0.0.1:1 -c 200 --rate 2000"));
        assert_eq!(paced.unwrap().unwrap().requests.rate, Some(2000.0));
        let bad = RunArgs::from_stored_argv(&argv("loadgen run --target 127.0.0.1:1 --warp 9")).unwrap_err();
        assert!(bad.contains("do not parse"), "{bad}");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list("3,1-2,2"), Ok(vec![1, 2, 3]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
