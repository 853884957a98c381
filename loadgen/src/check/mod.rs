//! `loadgen check` and `loadgen baseline`: the CI regression benchmark. A
//! change that makes a server model, or the load generator, costlier fails
//! the pipeline and says which model and figure; the same code on another
//! machine, another day or a noisy neighbour's CPU does not.
//!
//! # Two modes
//!
//! **A/B, the one to trust** (`--base REV`, [`ab_run`], [`ab`]): REV's
//! binaries are built in a git worktree with a target directory of their
//! own ([`git`]), and base and head sweeps run alternately on the same
//! CPUs (A B, B A, ... five pairs by default). Each figure is judged by the
//! per-pair ratios head/base: their median and sign-test interval
//! ([`crate::stats::sign_interval`]); it regresses only when the whole interval lies beyond its
//! tolerance. Whatever the machine does, it does to both sides, so nothing
//! measured on another machine is needed. `.ci/run` uses it against
//! `HEAD~1` whenever the clone has that commit.
//!
//! **Stored baseline** (`--baseline FILE`, [`baseline`], [`compare`]): for a
//! checkout without history, and as the fallback when the base cannot be
//! built. `loadgen baseline --results DIR ...` keeps, per figure, every
//! sweep's value, the median, the spread and a tolerance of max(25%, 2 ×
//! spread); `loadgen check --baseline FILE` runs a quick sweep of the same
//! shape (or reads `--results DIR`) and compares. CPU figures are compared
//! as multiples of the floor pair (one 64 B write + read) measured at the
//! start of the same sweep, since an absolute CPU time holds only on the
//! machine and day that measured it; open-loop figures are never gated.
//! When the first sweep looks regressed it reruns the scenarios and levels
//! concerned (`--reruns`) and counts each figure at its best: a stall does
//! not repeat, a costlier model does. Its table says that A/B is the mode
//! to trust.
//!
//! Both write a markdown table (stdout, `--summary FILE`, and
//! `$GITHUB_STEP_SUMMARY` when set) and a `customSmallerIsBetter` JSON file
//! (`--bench-json FILE`), and exit 0 (pass), 1 (regression: one
//! `REGRESSED ...` line per figure on stderr) or 2 (usage or IO error).
//!
//! # What is compared ([`figures`])
//!
//! Costs per request, not speeds, in the order the A/B check trusts them:
//!
//! 1. counted: bytes, system calls (STATS `syscalls`, where the server can
//!    count them: the sweep starts every server with `--count-syscalls`)
//!    and voluntary context switches per request;
//! 2. CPU: the server's user CPU µs per request (its own code; a change that
//!    adds work shows here several times larger than in the total, which the
//!    kernel's TCP path dominates on loopback), its total CPU µs per request
//!    and the load generator's;
//! 3. throughput, only as each model's ratio to the median model of the
//!    same sweep.
//!
//! And invariants that must hold in every run: every run succeeds, every
//! connection is established, no mismatches (strict: never excused), every
//! model but pool serves every connection, pool leaves connections past its
//! 64 threads unserved, echo-paced keeps its rate, and at 1000 connections
//! under full load the event loops switch at most a third as often per
//! request as thread-per-conn. In A/B mode a violation that the base shows
//! too is the machine's, not the change's: it is reported, not failed.
//!
//! Involuntary context switches are left out: they count preemptions, and on
//! a shared runner those come from the neighbours.
//!
//! This code keeps only the rules. The measured spreads behind the
//! tolerances, and the gate's own false alarm and detection rates, are in
//! results/ab-checks/README.md and results/baseline-sweeps/; the figures
//! behind the user-CPU figure and the context-switch floor in
//! results/check-runs/README.md. REPORT.md's regression section cites them.
//!
//! # Proving it catches a regression
//!
//! Two debug knobs of the servers, which the A/B check applies to the head
//! only (`--head-env`, or the variables in its own environment):
//! IOMODELS_DEBUG_EXTRA_SYSCALLS=N (`--slow-server N`) makes every framed
//! answer cost N extra `getppid` calls, in every model;
//! IOMODELS_DEBUG_EXTRA_WORK=MODEL:ROUNDS makes one model run ROUNDS of
//! COMPUTE's xorshift per answer: pure CPU, no system call.

pub mod ab;
pub mod ab_run;
pub mod baseline;
pub mod compare;
pub mod figures;
pub mod git;
pub mod output;
pub mod output_ab;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::SystemTime;

use anyhow::{bail, Context};

use crate::files::write_atomic;
use crate::sweep::summary::Summary;
use baseline::Baseline;
use compare::Evaluation;

/// The regression check: head against a base revision (A/B), or a quick
/// sweep against a stored baseline.
#[derive(Clone, Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).multiple(true).args(["base", "baseline"])))]
pub struct CheckArgs {
    /// A/B mode, the one to trust: build this revision (`HEAD~1`, a branch,
    /// a commit) in a git worktree and run its binaries and this checkout's
    /// alternately on the same CPUs. With --baseline too, the baseline is
    /// the fallback when the base cannot be built.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Baseline mode: compare with this file (made by `loadgen baseline`),
    /// for a checkout without git history. CPU figures are compared as
    /// multiples of the floor measured in the same sweep.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// A/B: pairs of sweeps, base and head alternately (A B, B A, ...).
    #[arg(long, default_value_t = ab_run::PAIRS, value_name = "N",
          value_parser = clap::value_parser!(u32).range(5..=100))]
    pub pairs: u32,
    /// A/B: the base's binaries, already built (a directory with `loadgen`
    /// and `servers`), instead of building --base.
    #[arg(long, value_name = "DIR", requires = "base")]
    pub base_bin: Option<PathBuf>,
    /// A/B: cargo features for the base build (`servers/libevent`).
    #[arg(long, value_name = "LIST", requires = "base")]
    pub features: Option<String>,
    /// A/B: where base builds are kept, by commit [default: target/ab in the checkout].
    #[arg(long, value_name = "DIR", requires = "base")]
    pub cache: Option<PathBuf>,
    /// A/B: set KEY=VALUE in the head's sweeps only (repeatable): proves the
    /// check catches a costlier head, e.g. IOMODELS_DEBUG_EXTRA_SYSCALLS=1 or
    /// IOMODELS_DEBUG_EXTRA_WORK=mio-single:3000.
    #[arg(long = "head-env", value_name = "KEY=VALUE", value_parser = key_value, requires = "base")]
    pub head_env: Vec<(String, String)>,
    /// Baseline mode: compare this existing sweep (its summary.json) instead
    /// of running one.
    #[arg(long, value_name = "DIR", conflicts_with = "base")]
    pub results: Option<PathBuf>,
    /// Where the check's sweeps go [default: a new directory under the
    /// system's temporary directory]. Must be new or empty.
    #[arg(long, value_name = "DIR", conflicts_with = "results")]
    pub out: Option<PathBuf>,
    /// Also write the markdown table to this file.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write every figure as github-action-benchmark `customSmallerIsBetter` JSON.
    #[arg(long, value_name = "FILE")]
    pub bench_json: Option<PathBuf>,
    /// Baseline mode: reruns of the scenarios and levels that look regressed
    /// before failing (0: fail on the first sweep).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub reruns: u32,
    /// Slow every server down on purpose: N extra syscalls per answer
    /// (IOMODELS_DEBUG_EXTRA_SYSCALLS=N; in A/B mode, the head's only), to
    /// see the check fail.
    #[arg(long, value_name = "N", conflicts_with = "results")]
    pub slow_server: Option<u32>,
    /// The servers binary [default: `servers` next to this executable].
    #[arg(long, value_name = "PATH", conflicts_with = "results")]
    pub servers_bin: Option<PathBuf>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Make a baseline from one or more quick sweeps.
#[derive(Clone, Debug, clap::Args)]
pub struct BaselineArgs {
    /// A sweep's results directory (with summary.json); repeat for more sweeps.
    #[arg(long = "results", value_name = "DIR", required = true)]
    pub results: Vec<PathBuf>,
    /// Where to write the baseline.
    #[arg(long, value_name = "FILE", default_value = "results/baseline.json")]
    pub out: PathBuf,
}

/// `loadgen baseline`: 0 when written, 2 otherwise.
pub fn baseline_main(args: &BaselineArgs) -> ExitCode {
    let made = (|| -> anyhow::Result<Baseline> {
        let b = baseline::build(&args.results, crate::env::rfc3339(SystemTime::now()))?;
        let mut bytes = serde_json::to_vec_pretty(&b)?;
        bytes.push(b'\n');
        if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("--out {}: cannot create its directory", args.out.display()))?;
        }
        write_atomic(&args.out, &bytes).with_context(|| format!("--out {}: cannot write it", args.out.display()))?;
        Ok(b)
    })();
    match made {
        Ok(b) => {
            let gated = b.figures.iter().filter(|f| f.gated).count();
            eprintln!(
                "baseline: {} figures from {} sweeps ({gated} gated, {} too noisy to gate) written to {}",
                b.figures.len(),
                b.sources.len(),
                b.figures.len() - gated,
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen baseline: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `loadgen check`: 0 pass, 1 regression, 2 usage or IO error.
pub fn check_main(args: &CheckArgs) -> ExitCode {
    if args.base.is_none() {
        return finish(check(args).map(|e| e.passed()));
    }
    match ab_run::check(args) {
        Ok(Some(eval)) => finish(Ok(eval.passed())),
        // A broken head, or wrong arguments.
        Err(e) => finish(Err(e)),
        // The base could not be built or run (said why): the baseline, if
        // given, decides instead.
        Ok(None) if args.baseline.is_none() => finish(Err(anyhow::anyhow!(
            "--base: the base could not be built or run, and there is no --baseline to fall back to"
        ))),
        Ok(None) => {
            eprintln!("loadgen check: falling back to the stored baseline, the weaker mode");
            let mut fallback = args.clone();
            fallback.out = args.out.as_ref().map(|o| o.join("baseline-fallback"));
            finish(check(&fallback).map(|e| e.passed()))
        }
    }
}

fn finish(passed: anyhow::Result<bool>) -> ExitCode {
    match passed {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen check: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Baseline mode: run (or read) the sweeps, compare, write every output.
/// An `Err` is a usage or IO error, never a regression.
pub fn check(args: &CheckArgs) -> anyhow::Result<Evaluation> {
    let path = args.baseline.as_ref().context("--baseline: needed for the baseline mode")?;
    let base = Baseline::load(path)?;
    let (attempts, context) = match &args.results {
        Some(dir) => {
            let s = Summary::load(dir).with_context(|| format!("--results {}", dir.display()))?;
            (vec![s], format!("Sweep `{}` compared with `{}`", dir.display(), path.display()))
        }
        None => run_sweeps(args, &base)?,
    };
    let eval = compare::evaluate(&base, &attempts);
    let context = format!(
        "{context} (baseline: {} sweeps, made {}{}). Stored-baseline mode: its figures were measured on another \
         day, perhaps another machine; A/B against a base revision (`--base REV`) is the mode to trust.",
        base.sources.len(),
        base.made,
        base.machine.as_ref().and_then(|m| m["cpu_model"].as_str()).map(|c| format!(" on {c}")).unwrap_or_default()
    );
    let table = output::markdown(&eval, &context);
    publish(&table, args.summary.as_deref())?;
    if let Some(path) = &args.bench_json {
        std::fs::write(path, output::bench_json(&eval))
            .with_context(|| format!("--bench-json {}: cannot write it", path.display()))?;
    }
    for line in output::regression_lines(&eval) {
        eprintln!("{line}");
    }
    Ok(eval)
}

/// Print the markdown table, and write it to `--summary` and
/// `$GITHUB_STEP_SUMMARY` when those are set.
pub fn publish(table: &str, summary: Option<&Path>) -> anyhow::Result<()> {
    print!("{table}");
    let _ = std::io::stdout().flush();
    if let Some(path) = summary {
        std::fs::write(path, table).with_context(|| format!("--summary {}: cannot write it", path.display()))?;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("GITHUB_STEP_SUMMARY={}: cannot open it", path.display()))?;
        f.write_all(table.as_bytes())
            .with_context(|| format!("GITHUB_STEP_SUMMARY={}: cannot write it", path.display()))?;
    }
    Ok(())
}

/// `--out DIR`, new or empty, or a new directory under the system's
/// temporary directory named after `prefix` and the time.
pub fn fresh_out_dir(out: Option<&Path>, prefix: &str) -> anyhow::Result<PathBuf> {
    let out = match out {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("{prefix}-{}", crate::sweep::env_json::run_id(SystemTime::now()))),
    };
    if out.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("--out {}: not empty; the check never writes over earlier results", out.display());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}: cannot create it", out.display()))?;
    Ok(out)
}

/// The first sweep, then reruns of the scenarios × levels that look regressed.
fn run_sweeps(args: &CheckArgs, base: &Baseline) -> anyhow::Result<(Vec<Summary>, String)> {
    let out = fresh_out_dir(args.out.as_deref(), "iomodels-check")?;
    let path = args.baseline.as_deref().unwrap_or(Path::new("?"));
    let mut context = format!("Quick sweep in `{}` compared with `{}`", out.display(), path.display());
    let slow = args.slow_server.map(|n| n.to_string()).or_else(|| std::env::var("IOMODELS_DEBUG_EXTRA_SYSCALLS").ok());
    if let Some(n) = slow.filter(|n| n != "0" && !n.is_empty()) {
        context.push_str(&format!(", servers slowed on purpose (IOMODELS_DEBUG_EXTRA_SYSCALLS={n})"));
        eprintln!("loadgen check: servers slowed on purpose: {n} extra syscalls per answer");
    }

    let shape = &base.sweep;
    let first = out.join("sweep");
    sweep_into(args, shape, &shape.scenarios, &shape.levels, &first)?;
    let mut attempts = vec![Summary::load(&first)?];
    for n in 1..=args.reruns {
        let suspects = compare::evaluate(base, &attempts).suspects();
        if suspects.is_empty() {
            break;
        }
        let mut scenarios: Vec<String> = Vec::new();
        let mut levels: Vec<u64> = Vec::new();
        for (s, l) in &suspects {
            if !scenarios.contains(s) {
                scenarios.push(s.clone());
            }
            if !levels.contains(l) {
                levels.push(*l);
            }
        }
        eprintln!(
            "loadgen check: {} looks regressed; rerun {n} of {} to confirm",
            suspects.iter().map(|(s, l)| format!("{s} c{l}")).collect::<Vec<_>>().join(", "),
            args.reruns
        );
        let dir = out.join(format!("rerun-{n}"));
        sweep_into(args, shape, &scenarios, &levels, &dir)?;
        attempts.push(Summary::load(&dir)?);
    }
    Ok((attempts, context))
}

/// `loadgen sweep` (this executable) as a child, its progress on our
/// stderr, so that every sweep starts unpinned and with the same CPUs.
fn sweep_into(
    args: &CheckArgs,
    shape: &baseline::SweepShape,
    scenarios: &[String],
    levels: &[u64],
    dir: &Path,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this executable (to run `loadgen sweep`)")?;
    let levels: Vec<String> = levels.iter().map(u64::to_string).collect();
    let mut cmd = Command::new(exe);
    cmd.args(["sweep", "--quick", "--repeat", "1", "--no-charts", "--models", &shape.models.join(",")]);
    cmd.args(["--scenario", &scenarios.join(","), "--levels", &levels.join(",")]);
    cmd.args(["--warmup", &format!("{}ms", (shape.warmup_s * 1000.0).round())]);
    cmd.args(["--duration", &format!("{}ms", (shape.duration_s * 1000.0).round())]);
    cmd.args(["--rate", &shape.rate.unwrap_or(2000.0).to_string()]);
    cmd.arg("--out").arg(dir);
    if let Some(bin) = &args.servers_bin {
        cmd.arg("--servers-bin").arg(bin);
    }
    if let Some(n) = args.slow_server {
        cmd.env("IOMODELS_DEBUG_EXTRA_SYSCALLS", n.to_string());
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::from(std::io::stderr()));
    let status = cmd.status().context("cannot start `loadgen sweep`")?;
    if !status.success() {
        bail!("the check's sweep into {} failed ({status})", dir.display());
    }
    Ok(())
}
