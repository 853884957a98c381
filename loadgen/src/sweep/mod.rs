//! `loadgen sweep`: every model × every connection level × every chosen
//! scenario, each run against a fresh server, results saved as they come,
//! charts drawn at the end.
//!
//! For each run the sweep starts the model as a child (the `servers` binary
//! next to this one), pinned to the server's CPUs, reads its ready line,
//! then runs `loadgen run` (this very executable) as a second child pinned
//! to the load generator's CPUs, with `--json/--hlog/--hgrm` into
//! `runs/<scenario>/`. It then stops the server (SIGTERM, SIGKILL after
//! 3 s), appends the run to `summary.json`/`summary.csv`/`tables.md`, and
//! goes on, whether the run succeeded or not: a model that cannot serve a
//! level is a result, recorded with its reason. Ctrl-C stops the current
//! run, keeps everything measured so far and still draws the charts.
//!
//! ```text
//! results/<run-id>/
//!   env.json  summary.json  summary.csv  tables.md
//!   runs/<scenario>/<model>-c<level>.{json,hlog,hgrm,loadgen.log,server.log}
//!   charts/<scenario>-<chart>.{svg,png}
//! ```

pub mod child;
pub mod cpus;
pub mod env;
mod one;
pub mod progress;
pub mod scenario;
mod setup;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::run::args::{parse_cpu_list, parse_duration};
use env::{Compute, ScenarioInfo, SweepEnv, Versions};
use one::{outcome_line, run_one};
use progress::Progress;
use scenario::{Knobs, Scenario};
pub use setup::built_models;
use setup::{choose_models, find_servers, raise_nofile_limit, results_dir};
use summary::{write_atomic, Status, Summary};

/// Every model, in the order the sweep runs them.
pub const MODELS: [&str; 6] = ["thread-per-conn", "pool", "mio-single", "mio-multi", "tokio", "libevent"];
/// Connection levels without `--levels` / with `--quick`.
pub const LEVELS: [u64; 5] = [200, 500, 1000, 2000, 5000];
pub const QUICK_LEVELS: [u64; 2] = [200, 1000];
/// `loadgen run`'s default connect rate (connections/s), for the time plan.
const CONNECT_RATE: f64 = 5000.0;
/// Per-run time besides warm-up, window and connecting: server start and
/// stop, process start, closing connections (measured on a 2-core VM).
const OVERHEAD_S: f64 = 1.0;

/// Run every model at every connection level, save the results, draw charts.
#[derive(Clone, Debug, clap::Args)]
pub struct SweepArgs {
    /// Models to run, comma-separated (default: every model the servers
    /// binary was built with).
    #[arg(long, value_name = "LIST")]
    pub models: Option<String>,
    /// Scenarios, comma-separated, or `all`: echo-saturate, echo-paced,
    /// backend-delay, cpu-work [default: echo-saturate,echo-paced].
    #[arg(long, value_name = "LIST")]
    pub scenario: Option<String>,
    /// Connection levels, comma-separated [default: 200,500,1000,2000,5000;
    /// with --quick 200,1000].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub levels: Option<Vec<u64>>,
    /// Warm-up before each measured window [default: 1s; with --quick 0.5s].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Each measured window [default: 4s; with --quick 1.5s].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Fewer levels and shorter windows: a look in about a minute.
    #[arg(long)]
    pub quick: bool,
    /// echo-paced: requests per second, all connections together. Must be
    /// low enough for every model that serves all connections, and
    /// rate × duration must reach every connection.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// cpu-work: COMPUTE rounds per request [default: calibrated to about 50 µs].
    #[arg(long, value_name = "N")]
    pub compute_rounds: Option<u32>,
    /// CPUs for the servers (`0`, `0-1`, `0,2`) [default: first half of the available CPUs].
    #[arg(long, value_name = "LIST", value_parser = cpu_set)]
    pub server_cpus: Option<CpuSet>,
    /// CPUs for the load generator [default: the other half].
    #[arg(long, value_name = "LIST", value_parser = cpu_set)]
    pub loadgen_cpus: Option<CpuSet>,
    /// Results directory [default: results/<UTC time>]. Must not hold another run.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The servers binary [default: `servers` next to this executable].
    #[arg(long, value_name = "PATH")]
    pub servers_bin: Option<PathBuf>,
    /// Save results and tables but draw no charts (`loadgen report` can, later).
    #[arg(long)]
    pub no_charts: bool,
    /// Do not measure the floor (`loadgen floor`, about 3 s) at sweep start;
    /// the report then shows CPU per request without its yardstick.
    #[arg(long)]
    pub no_floor: bool,
}

/// A CPU list flag (a newtype: clap would take a bare `Vec` for repeated values).
#[derive(Clone, Debug, PartialEq)]
pub struct CpuSet(pub Vec<usize>);

fn cpu_set(s: &str) -> Result<CpuSet, String> {
    parse_cpu_list(s).map(CpuSet)
}

/// Everything settled before the first run.
struct Plan {
    exe: PathBuf,
    servers_bin: PathBuf,
    models: Vec<String>,
    scenarios: Vec<Scenario>,
    levels: Vec<u64>,
    warmup: Duration,
    duration: Duration,
    knobs: Knobs,
    pinning: cpus::Pinning,
}

impl Plan {
    fn run_seconds(&self, level: u64) -> f64 {
        self.warmup.as_secs_f64() + self.duration.as_secs_f64() + level as f64 / CONNECT_RATE + OVERHEAD_S
    }

    fn total_seconds(&self) -> f64 {
        let per_model: f64 = self.levels.iter().map(|&l| self.run_seconds(l)).sum();
        per_model * (self.models.len() * self.scenarios.len()) as f64
    }
}

pub fn sweep(args: &SweepArgs) -> anyhow::Result<()> {
    let started = SystemTime::now();
    let exe = std::env::current_exe().context("cannot find this executable (to run `loadgen run`)")?;
    let servers_bin = find_servers(args.servers_bin.as_deref(), &exe)?;
    let built = built_models(&servers_bin)?;
    let (models, mut skipped) = choose_models(args.models.as_deref(), &built)?;
    if args.no_floor {
        skipped.push("floor: not measured (--no-floor)".into());
    }
    let scenarios = scenario::select(args.scenario.as_deref().unwrap_or(&scenario::DEFAULT.join(",")))?;
    let mut levels =
        args.levels.clone().unwrap_or_else(|| if args.quick { QUICK_LEVELS.to_vec() } else { LEVELS.to_vec() });
    levels.sort_unstable();
    levels.dedup();
    if levels.is_empty() || levels[0] == 0 {
        bail!("--levels: give connection counts of at least 1, such as 200,1000");
    }
    let warmup = args.warmup.unwrap_or(if args.quick { Duration::from_millis(500) } else { Duration::from_secs(1) });
    let duration =
        args.duration.unwrap_or(if args.quick { Duration::from_millis(1500) } else { Duration::from_secs(4) });
    if duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    let top = *levels.last().expect("levels is not empty");
    if scenarios.iter().any(|s| s.name == "echo-paced") && args.rate * duration.as_secs_f64() < top as f64 {
        bail!(
            "--rate {} × --duration {:?} sends fewer requests than the {top} connections of --levels: every \
             connection must send at least one (raise --rate or --duration)",
            args.rate,
            duration
        );
    }
    let given = |c: &Option<CpuSet>| c.as_ref().map(|c| c.0.clone());
    let pinning = cpus::split(&cpus::available()?, given(&args.server_cpus), given(&args.loadgen_cpus))?;
    cpus::pin_self(&pinning.loadgen_cpus).context("cannot pin the sweep to the load generator's CPUs")?;
    raise_nofile_limit();
    let compute = {
        let (calibrated, us_per_round) = scenario::calibrate_rounds(50.0);
        let (rounds, source) = match args.compute_rounds {
            Some(n) => (n, "--compute-rounds"),
            None => (calibrated, "calibrated to about 50 µs per request"),
        };
        Compute { rounds, us_per_round, us_per_request: rounds as f64 * us_per_round, source: source.into() }
    };
    let plan = Plan {
        exe,
        servers_bin,
        models,
        scenarios,
        levels,
        warmup,
        duration,
        knobs: Knobs { rate: args.rate, rounds: compute.rounds },
        pinning,
    };

    let floor = match args.no_floor {
        true => None,
        false => {
            eprintln!("measuring the floor (the cost of one write+read) on the server's CPU...");
            let floor = env::measure_floor(&plan.pinning).context("measuring the floor (skip it with --no-floor)")?;
            eprint!("{}", crate::floor::describe(&floor.figures));
            Some(floor)
        }
    };
    // Before the results directory exists: a new directory in the checkout
    // would make it look dirty.
    let git = crate::env::git_state();
    let run_id = env::run_id(started);
    let dir = results_dir(args.out.as_deref(), &run_id)?;
    let mut envj = SweepEnv {
        run_id: run_id.clone(),
        command: std::env::args().collect(),
        cwd: std::env::current_dir().ok().map(|d| d.display().to_string()),
        git,
        binaries: env::binaries(&plan.exe, &plan.servers_bin),
        binaries_changed: Vec::new(),
        started: crate::env::rfc3339(started),
        finished: None,
        elapsed_s: None,
        interrupted: false,
        machine: env::machine(&plan.pinning),
        pinning: plan.pinning.clone(),
        servers_bin: plan.servers_bin.display().to_string(),
        versions: Versions {
            loadgen: env!("CARGO_PKG_VERSION").into(),
            servers: env::version_of(&plan.servers_bin, "--version").unwrap_or_else(|| "unknown".into()),
            rustc: env::version_of(Path::new("rustc"), "--version"),
        },
        models: plan.models.clone(),
        skipped,
        levels: plan.levels.clone(),
        warmup_s: warmup.as_secs_f64(),
        duration_s: duration.as_secs_f64(),
        scenarios: plan
            .scenarios
            .iter()
            .map(|s| ScenarioInfo { name: s.name.into(), about: s.about.into(), loadgen_flags: s.flags(&plan.knobs) })
            .collect(),
        compute,
        floor,
        runs_planned: plan.models.len() * plan.levels.len() * plan.scenarios.len(),
        runs_done: 0,
        runs_failed: 0,
    };
    write_env(&dir, &envj)?;
    for note in &envj.skipped {
        eprintln!("{note}");
    }
    eprintln!(
        "sweep {run_id}: {} models × {} levels × {} scenarios = {} runs, about {} (server CPUs {}, loadgen CPUs {}); results in {}",
        plan.models.len(),
        plan.levels.len(),
        plan.scenarios.len(),
        envj.runs_planned,
        progress::clock(plan.total_seconds()),
        cpus::list(&plan.pinning.server_cpus),
        cpus::list(&plan.pinning.loadgen_cpus),
        dir.display()
    );

    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second Ctrl-C while the first is being handled exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&interrupted))?;
        signal_hook::flag::register(sig, Arc::clone(&interrupted))?;
    }

    let mut summary = Summary {
        run_id,
        scenarios: plan.scenarios.iter().map(|s| s.name.to_string()).collect(),
        models: plan.models.clone(),
        records: Vec::new(),
        floor_pair_cpu_us: envj.floor.as_ref().map(|f| f.figures.pair_cpu_us),
    };
    let mut progress = Progress::new(envj.runs_planned, plan.total_seconds());
    'all: for scenario in &plan.scenarios {
        std::fs::create_dir_all(dir.join("runs").join(scenario.name))?;
        for model in &plan.models {
            for &level in &plan.levels {
                let n = summary.records.len() + 1;
                let Some(record) = run_one(&plan, &dir, scenario, model, level, &interrupted, &progress) else {
                    break 'all;
                };
                let line = outcome_line(n, envj.runs_planned, &record);
                progress.finished(&line, plan.run_seconds(level), record.elapsed_s);
                envj.runs_done += 1;
                envj.runs_failed += (record.status == Status::Failed) as usize;
                summary.records.push(record);
                crate::export::write_all(&dir, &summary)?;
            }
        }
    }
    progress.done();
    envj.interrupted = interrupted.load(Ordering::SeqCst);
    envj.finished = Some(crate::env::rfc3339(SystemTime::now()));
    envj.elapsed_s = Some(progress.elapsed().as_secs_f64());
    envj.binaries_changed = env::changed(&envj.binaries);
    for change in &envj.binaries_changed {
        eprintln!("warning: {change}");
    }
    write_env(&dir, &envj)?;
    crate::export::write_all(&dir, &summary)?;
    if !args.no_charts {
        let files = crate::charts::draw_all(&dir, &summary)?;
        eprintln!("{} charts in {}", files.len(), dir.join("charts").display());
    }
    eprintln!(
        "{} of {} runs done ({} failed) in {}; results in {}",
        envj.runs_done,
        envj.runs_planned,
        envj.runs_failed,
        progress::clock(progress.elapsed().as_secs_f64()),
        dir.display()
    );
    if envj.interrupted {
        bail!("interrupted: kept the {} runs finished before it, in {}", envj.runs_done, dir.display());
    }
    Ok(())
}

fn write_env(dir: &Path, envj: &SweepEnv) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(envj)?;
    bytes.push(b'\n');
    write_atomic(&dir.join("env.json"), &bytes).context("cannot write env.json")
}
