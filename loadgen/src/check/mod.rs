//! `loadgen check --base REV`: the CI regression benchmark. A change that
//! makes a server model, or the load generator, costlier fails the pipeline
//! and says which model and figure; the same code on another machine,
//! another day or a noisy neighbour's CPU does not.
//!
//! # One mode: A/B against a base revision
//!
//! REV's binaries are built in a git worktree with a target directory of
//! their own ([`git`]), and base and head sweeps run alternately on the
//! same CPUs (A B, B A, ... five pairs by default; [`ab_run`]). Each figure
//! is judged by the per-pair ratios head/base: their median and sign-test
//! interval ([`crate::stats::sign_interval`]); it regresses only when the whole interval lies
//! beyond its tolerance ([`ab`]). Whatever the machine does, it does to
//! both sides, so nothing measured on another machine is needed. `.ci/run`
//! uses it against `HEAD~1`, deepening a shallow clone first.
//!
//! A stored-baseline mode (`loadgen baseline`, `check --baseline FILE`)
//! existed until December 2026 and was removed: it compared with figures
//! from another day and machine, and failed with no change (pool's runs,
//! which fail by design, counted as regressions). Where there is no base
//! to build, `.ci/run` says the check did not run rather than fall back.
//!
//! It writes a markdown table (stdout, `--summary FILE`, and
//! `$GITHUB_STEP_SUMMARY` when set) and a `customSmallerIsBetter` JSON file
//! (`--bench-json FILE`), and exits 0 (pass), 1 (regression: one
//! `REGRESSED ...` line per figure on stderr) or 2 (could not run: usage or
//! IO error, or a base that cannot be built or run).
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
//! request as thread-per-conn. A violation that the base shows too is the
//! machine's, not the change's: it is reported, not failed.
//!
//! Involuntary context switches are left out: they count preemptions, and on
//! a shared runner those come from the neighbours.
//!
//! This code keeps only the rules. The measured spreads behind the
//! tolerances, and the gate's own false alarm and detection rates, are in
//! results/ab-checks/README.md; the figures behind the user-CPU figure and
//! the context-switch floor in results/check-runs/README.md. REPORT.md's
//! regression section cites them.
//!
//! # Proving it catches a regression
//!
//! Two debug knobs of the servers, which the check applies to the head
//! only (`--head-env`, or the variables in its own environment):
//! IOMODELS_DEBUG_EXTRA_SYSCALLS=N (`--slow-server N`) makes every framed
//! answer cost N extra `getppid` calls, in every model;
//! IOMODELS_DEBUG_EXTRA_WORK=MODEL:ROUNDS makes one model run ROUNDS of
//! COMPUTE's xorshift per answer: pure CPU, no system call.

pub mod ab;
pub mod ab_run;
pub mod figures;
pub mod git;
pub mod output;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context};

/// The regression check: head against a base revision, interleaved.
#[derive(Clone, Debug, clap::Args)]
pub struct CheckArgs {
    /// The revision to compare with (`HEAD~1`, a branch, a commit): built in
    /// a git worktree, its binaries and this checkout's run alternately on
    /// the same CPUs.
    #[arg(long, value_name = "REV", required = true)]
    pub base: String,
    /// Pairs of sweeps, base and head alternately (A B, B A, ...).
    #[arg(long, default_value_t = ab_run::PAIRS, value_name = "N",
          value_parser = clap::value_parser!(u32).range(5..=100))]
    pub pairs: u32,
    /// The base's binaries, already built (a directory with `loadgen` and
    /// `servers`), instead of building --base.
    #[arg(long, value_name = "DIR")]
    pub base_bin: Option<PathBuf>,
    /// Cargo features for the base build (`servers/libevent`).
    #[arg(long, value_name = "LIST")]
    pub features: Option<String>,
    /// Where base builds are kept, by commit [default: target/ab in the checkout].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Set KEY=VALUE in the head's sweeps only (repeatable): proves the
    /// check catches a costlier head, e.g. IOMODELS_DEBUG_EXTRA_SYSCALLS=1 or
    /// IOMODELS_DEBUG_EXTRA_WORK=mio-single:3000.
    #[arg(long = "head-env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub head_env: Vec<(String, String)>,
    /// Where the check's sweeps go [default: a new directory under the
    /// system's temporary directory]. Must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also write the markdown table to this file.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write every figure as github-action-benchmark `customSmallerIsBetter` JSON.
    #[arg(long, value_name = "FILE")]
    pub bench_json: Option<PathBuf>,
    /// Slow the head's servers down on purpose: N extra syscalls per answer
    /// (IOMODELS_DEBUG_EXTRA_SYSCALLS=N), to see the check fail.
    #[arg(long, value_name = "N")]
    pub slow_server: Option<u32>,
    /// The head's servers binary [default: `servers` next to this executable].
    #[arg(long, value_name = "PATH")]
    pub servers_bin: Option<PathBuf>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// `loadgen check`: 0 pass, 1 regression, 2 could not run.
pub fn check_main(args: &CheckArgs) -> ExitCode {
    let judged = ab_run::check(args)
        .and_then(|eval| eval.context("--base: the base could not be built or run, so the check could not run"));
    match judged {
        Ok(eval) if eval.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen check: error: {e:#}");
            ExitCode::from(2)
        }
    }
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
