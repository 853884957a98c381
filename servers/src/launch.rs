//! Starting a model: flags every model shares, binding, the ready line,
//! signals. A model's own file never deals with any of this.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::str::FromStr;
use std::time::Duration;

use crate::admin::AdminConfig;
use crate::models::Model;
use crate::{limits, net, stats, Shutdown};

/// How bytes on the data port are interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Length-prefixed frames with ids, methods and statuses (PROTOCOL.md).
    Framed,
    /// A plain echo, as the classic libevent echo server this project grew from: bytes in, the same bytes out. `nc` works.
    Raw,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Framed => "framed",
            Protocol::Raw => "raw",
        }
    }
}

/// An admin address, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminAddr(pub Option<SocketAddr>);

impl FromStr for AdminAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(AdminAddr(None));
        }
        s.parse().map(|a| AdminAddr(Some(a))).map_err(|e| format!("expected HOST:PORT or `none`: {e}"))
    }
}

/// Flags every model has.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonOptions {
    /// Data port address. Port 0 picks any free port; the ready line says which.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub addr: SocketAddr,

    /// Admin port for STATS, served by a thread of its own, so that counters
    /// can be read while the data path is saturated; its own cost is left
    /// out of them. No authentication: anyone who can reach it reads the
    /// process's figures (keep it on loopback). `none` turns it off.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub admin: AdminAddr,

    /// Run the admin thread at real-time priority (SCHED_FIFO 1) where
    /// permitted, so that STATS is answered at once however many threads
    /// are busy. Off by default: any client of the admin port could then
    /// keep a CPU busy at real-time priority. The sweep asks for it.
    #[arg(long)]
    pub admin_realtime: bool,

    /// Close an admin client that neither sends nor reads for this long
    /// (`500ms`, `30s`, or seconds).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub admin_idle_timeout: Duration,

    /// Count the process's system calls for STATS (`syscalls`) with perf
    /// counters on raw_syscalls:sys_enter. Off by default: while counting,
    /// every system call on the machine takes the kernel's traced path, and
    /// as root tracefs is mounted if it is not (for as long as the server
    /// runs). Needs perf_event_open and tracefs. The sweep, `loadgen check`
    /// and scripts/try ask for it. IOMODELS_COUNT_SYSCALLS=1 asks too.
    #[arg(long, env = "IOMODELS_COUNT_SYSCALLS", value_parser = clap::builder::BoolishValueParser::new())]
    pub count_syscalls: bool,

    /// `framed` (PROTOCOL.md) or `raw` (plain byte echo, as the classic libevent echo server).
    #[arg(long, value_enum, default_value_t = Protocol::Framed)]
    pub protocol: Protocol,

    /// Largest payload accepted, in bytes; a larger frame is answered
    /// TOO_LARGE and the connection closed.
    #[arg(long, default_value_t = proto::DEFAULT_MAX_FRAME, value_parser = clap::value_parser!(u32).range(16..))]
    pub max_frame: u32,

    /// listen() backlog. std and mio use 128, which drops SYNs when
    /// thousands of connects arrive at once.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(i32).range(1..))]
    pub backlog: i32,

    /// Most data connections open at once; one more is accepted and closed
    /// at once, and counted in STATS `connections_refused`, while the
    /// others are served. [default: the descriptor limit (raised to its
    /// hard limit at start) less 64 kept for the server's own descriptors,
    /// or half of a limit too small for that]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// A frame whose bytes stop arriving for this many milliseconds is
    /// dropped and its connection closed (STATS `partial_frame_timeouts`).
    /// A connection idle between frames is never closed for it.
    #[arg(long, default_value_t = limits::PARTIAL_FRAME_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub partial_frame_timeout_ms: u64,

    /// A connection whose answers cannot be written for this many
    /// milliseconds (its client does not read) is closed (STATS
    /// `write_timeouts`).
    #[arg(long, default_value_t = limits::WRITE_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout_ms: u64,

    /// Debug only: make N extra `getppid` syscalls per answer. This exists
    /// so that CI can prove its regression check catches a slower server;
    /// it also reads IOMODELS_DEBUG_EXTRA_SYSCALLS so a sweep can set it.
    #[arg(long, hide = true, env = "IOMODELS_DEBUG_EXTRA_SYSCALLS", default_value_t = 0)]
    pub debug_extra_syscalls: u32,

    /// Debug only: `MODEL:ROUNDS`, ROUNDS of COMPUTE's xorshift per answer
    /// in that model only (pure CPU, no system call), so that CI can prove
    /// its A/B check names the one model made costlier. Also read from
    /// IOMODELS_DEBUG_EXTRA_WORK.
    #[arg(long, hide = true, env = "IOMODELS_DEBUG_EXTRA_WORK", value_parser = extra_work)]
    pub debug_extra_work: Option<(String, u32)>,
}

impl CommonOptions {
    /// `--partial-frame-timeout-ms` as a duration.
    pub fn partial_frame_timeout(&self) -> Duration {
        Duration::from_millis(self.partial_frame_timeout_ms)
    }

    /// `--write-timeout-ms` as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
}

/// A duration flag: `500ms`, `30s`, or a number of seconds.
fn duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.strip_suffix("ms") {
        Some(ms) => (ms, 1e-3),
        None => (s.strip_suffix('s').unwrap_or(s), 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|e| format!("`{s}`: expected 500ms, 30s or seconds: {e}"))?;
    Duration::try_from_secs_f64(value * unit)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{s}`: expected a positive duration"))
}

fn extra_work(s: &str) -> Result<(String, u32), String> {
    let (model, rounds) = s.split_once(':').ok_or_else(|| format!("expected MODEL:ROUNDS, got `{s}`"))?;
    let rounds = rounds.parse().map_err(|e| format!("{rounds}: not a number of rounds: {e}"))?;
    Ok((model.to_string(), rounds))
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{model}: cannot start: {why}")]
    Unavailable { model: &'static str, why: String },
    #[error("--{flag} {addr}: cannot listen: {source}")]
    Listen { flag: &'static str, addr: SocketAddr, source: io::Error },
    #[error("cannot start the admin thread or the signal handler: {0}")]
    Setup(io::Error),
    #[error("model {model} stopped with an error: {source}")]
    Model { model: &'static str, source: io::Error },
}

/// Check that `model` can run here, bind both ports, print the ready line,
/// and run `model` on this thread until it returns or SIGINT/SIGTERM arrives.
///
/// On a signal the shutdown hooks run (each model stops accepting), and a
/// watchdog exits the process with status 0 after at most 1.5 s, whether or
/// not every connection has finished: the suite needs a bounded stop.
pub fn launch(
    model: &Model,
    common: &CommonOptions,
    run: impl FnOnce(TcpListener, Shutdown) -> io::Result<()>,
) -> Result<(), LaunchError> {
    (model.available)().map_err(|why| LaunchError::Unavailable { model: model.name, why })?;
    let model = model.name;
    // First, while this is the only thread: every thread made later is counted.
    crate::syscount::start(common.count_syscalls);
    if !crate::syscount::counting() {
        eprintln!("{model}: {}", crate::syscount::status());
    }
    // Whatever way this ends, returning or unwinding, a tracefs mount made
    // for the counters goes (the signal path does the same before it exits).
    let _tracefs = ReleaseTracefsOnDrop;
    serve(model, common, run)
}

/// Calls [`crate::syscount::release_tracefs`] when dropped.
struct ReleaseTracefsOnDrop;

impl Drop for ReleaseTracefsOnDrop {
    fn drop(&mut self) {
        crate::syscount::release_tracefs();
    }
}

/// [`launch`] once the system-call counters are set up.
fn serve(
    model: &'static str,
    common: &CommonOptions,
    run: impl FnOnce(TcpListener, Shutdown) -> io::Result<()>,
) -> Result<(), LaunchError> {
    stats::init(model);
    crate::dispatch::set_debug_extra_syscalls(common.debug_extra_syscalls);
    if let Some((_, rounds)) = common.debug_extra_work.as_ref().filter(|(m, _)| m == model) {
        crate::dispatch::set_debug_extra_work(*rounds);
    }
    let nofile = net::raise_nofile_limit().map_err(|e| eprintln!("{model}: cannot raise RLIMIT_NOFILE: {e}")).ok();
    let max_connections = common.max_connections.or(nofile.map(limits::default_max_connections));
    stats::COUNTERS.set_max_connections(max_connections.unwrap_or(u64::MAX));
    let data = net::listen(common.addr, common.backlog).map_err(|source| LaunchError::Listen {
        flag: "addr",
        addr: common.addr,
        source,
    })?;
    let data_addr = data.local_addr().map_err(LaunchError::Setup)?;
    let admin_addr = match common.admin.0 {
        Some(addr) => {
            let l = net::listen(addr, 128).map_err(|source| LaunchError::Listen { flag: "admin", addr, source })?;
            let bound = l.local_addr().map_err(LaunchError::Setup)?;
            let config = AdminConfig { realtime: common.admin_realtime, idle_timeout: common.admin_idle_timeout };
            let priority = crate::admin::spawn(l, config).map_err(LaunchError::Setup)?;
            if common.admin_realtime && !priority.is_realtime() {
                eprintln!("{model}: the admin thread runs at normal priority, so STATS may starve: {priority}");
            }
            bound.to_string()
        }
        None => "none".to_string(),
    };

    let shutdown = Shutdown::new();
    watch_signals(shutdown.clone()).map_err(LaunchError::Setup)?;

    let mut stdout = io::stdout().lock();
    let _ = writeln!(
        stdout,
        "listening data={data_addr} admin={admin_addr} model={model} protocol={}",
        common.protocol.name()
    );
    let _ = stdout.flush();
    drop(stdout);

    run(data, shutdown).map_err(|source| LaunchError::Model { model, source })
}

/// On SIGINT or SIGTERM: trigger `shutdown`, then exit 0 within 1.5 s.
fn watch_signals(shutdown: Shutdown) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).stack_size(64 * 1024).spawn(move || {
        if signals.forever().next().is_some() {
            shutdown.trigger();
            std::thread::sleep(Duration::from_millis(1500));
            crate::syscount::release_tracefs();
            std::process::exit(0);
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        common: CommonOptions,
    }

    #[test]
    fn durations_take_ms_s_or_seconds() {
        assert_eq!(duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0s", "-1s", "soon", ""] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn real_time_and_counting_are_flags() {
        let flags = Flags::parse_from(["test"]);
        assert!(!flags.common.admin_realtime, "real-time is off unless asked");
        assert_eq!(flags.common.admin_idle_timeout, crate::limits::ADMIN_IDLE_TIMEOUT);
        assert!(!flags.common.count_syscalls, "counting is off unless asked");
        let flags = Flags::parse_from(["test", "--admin-realtime", "--count-syscalls"]);
        assert!(flags.common.admin_realtime && flags.common.count_syscalls);
    }

    #[test]
    fn an_unavailable_model_is_refused_before_anything_starts() {
        let model = Model { name: "nowhere", summary: "", available: || Err("not on this kernel".into()) };
        let flags = Flags::parse_from(["test", "--addr", "127.0.0.1:0", "--admin", "none"]);
        let err = launch(&model, &flags.common, |_, _| panic!("an unavailable model ran")).unwrap_err();
        assert_eq!(err.to_string(), "nowhere: cannot start: not on this kernel");
    }
}
