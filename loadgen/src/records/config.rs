//! The flags of `loadgen run`, their parsers, and the checks that refuse
//! combinations that make no sense, each naming the flags at fault.
//!
//! Parsing is split from running so that every mistake is caught before a
//! single connection is opened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use proto::Method;

/// `framed` (PROTOCOL.md) or `raw` (bytes in, the same bytes out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Framed,
    Raw,
}

/// The method every request uses, when there is no `--mix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

/// Flags of `loadgen run`.
#[derive(Clone, Debug, clap::Args)]
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
    #[arg(long, value_name = "TIME", value_parser = crate::merge::clock::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// Name this load generator among several: written into the JSON with
    /// its whole histograms (so that `loadgen merge` can add it up) and on
    /// every interval of the --hlog.
    #[arg(long, value_name = "NAME", value_parser = crate::merge::clock::parse_tag)]
    pub tag: Option<String>,
}

/// A list of CPUs, as `--server-cpus` takes it (a newtype, so that clap
/// takes `0,2-3` as one value rather than many).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// The shape of the load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Closed { depth: u32, think: Duration },
    Open { rate: f64 },
}

impl RunArgs {
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

    /// Refuse combinations that make no sense, naming the flags.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(dir) = &self.server_cgroup {
            if let Err(e) = crate::cgroup::CpuStat::read(dir) {
                bail!("--server-cgroup {}: not a cgroup with the cpu controller ({e})", dir.display());
            }
        }
        if self.duration.is_zero() {
            bail!("--duration must be more than 0");
        }
        if self.timeout.is_zero() {
            bail!("--timeout must be more than 0");
        }
        if self.connect_timeout.is_zero() {
            bail!("--connect-timeout must be more than 0");
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                bail!("--rate {rate}: must be a positive number of requests per second");
            }
            if self.depth > 1 {
                bail!(
                    "--rate cannot be combined with --depth {}: an open loop keeps one request in flight per \
                     connection, on its own schedule",
                    self.depth
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
            if self.mix.is_some() || self.method.is_some_and(|m| m != MethodArg::Echo) {
                bail!("--protocol raw only echoes bytes: --method delay/compute and --mix need --protocol framed");
            }
            if self.depth > 1 {
                bail!("--protocol raw cannot be combined with --depth {}: raw messages carry no id", self.depth);
            }
            if self.size == 0 {
                bail!("--protocol raw needs --size of at least 1 byte");
            }
        }
        Ok(())
    }
}

/// A weighted list of methods, as given to `--mix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix(pub Vec<(Method, u32)>);

impl Mix {
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, w)| *w as u64).sum()
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
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (use ns, us, ms, s, m or h)")),
    };
    let secs = value * scale;
    if !(secs.is_finite() && secs < 1e7) {
        return Err(format!("`{s}`: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
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
