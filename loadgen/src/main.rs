//! `loadgen`: drive the iomodels servers and measure them.
//!
//! One subcommand per variant of [`Cli`], each with the `Args` struct and
//! the entry point of its own module; main only dispatches and turns a
//! failed run into a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;
use loadgen::output::report;
use loadgen::{archive, check, floor, merge, reliability, run, sweep};

/// One mio load generator that drives every iomodels server the same way.
#[derive(Parser)]
#[command(version = loadgen::VERSION, about, long_about)]
enum Cli {
    /// Drive one server with N connections and measure it (latency,
    /// throughput, both sides' CPU per request).
    Run(run::RunArgs),
    /// Measure what one request costs at the very least on this machine.
    Floor(floor::FloorArgs),
    /// Run every server model at every connection level, save the results
    /// under results/<run-id>/, draw charts, write its page (index.html) and
    /// end with the headline verdict.
    Sweep(sweep::SweepArgs),
    /// Redraw a sweep's charts, tables, headline verdict (verdict.json) and
    /// page (index.html) from its saved results, and refresh the generated
    /// tables of REPORT.md.
    Report(report::ReportArgs),
    /// Pack a sweep's per-run files (DIR/runs/) into one archive,
    /// DIR/runs.tar.zst, for committing; every reader reads either form.
    Archive(archive::ArchiveArgs),
    /// Render the Reliability table from the hardening tests' records
    /// (IOMODELS_RELIABILITY_DIR), and refresh its region of REPORT.md.
    Reliability(reliability::ReliabilityArgs),
    /// CI regression check: this checkout against a base revision (--base),
    /// sweeps interleaved on the same CPUs; exits 1 naming every figure
    /// that regressed, 2 when it could not run.
    Check(check::CheckArgs),
    /// Add up the results of load generators that ran together (`run
    /// --start-at TIME --tag NAME`) into one: histograms added, exactly.
    Merge(merge::MergeArgs),
}

fn main() -> ExitCode {
    let outcome = match Cli::parse() {
        Cli::Run(args) => run::run(&args).map(|r| r.failure),
        Cli::Floor(args) => floor::run(&args).map(|f| {
            print!("{}", floor::describe(&f));
            None
        }),
        Cli::Sweep(args) => sweep::sweep(&args).map(|()| None),
        Cli::Report(args) => report::report(&args).map(|()| None),
        Cli::Archive(args) => archive::archive(&args).map(|()| None),
        Cli::Check(args) => return check::check_main(&args),
        Cli::Reliability(args) => reliability::reliability(&args).map(|()| None),
        Cli::Merge(args) => merge::merge(&args).map(|()| None),
    };
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(failure)) => {
            eprintln!("loadgen: run failed: {failure}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
