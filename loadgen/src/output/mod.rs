//! Everything loadgen writes for people and other tools from a sweep's
//! [`Summary`], each format one file (as hyperfine does), and the command
//! that redraws them from saved results:
//!
//! - [`json`]: `summary.json`, the [`Summary`] itself (what `loadgen report`
//!   reads back), with every cell's figures: median, min–max and count over
//!   the passes of `--repeat`.
//! - [`csv`]: `summary.csv` (one row per cell), `runs.csv` (one row per
//!   run, every field) and `verdicts.csv` (one row per comparison).
//! - [`markdown`]: `tables.md`, the tables that REPORT.md embeds.
//! - [`charts`]: the SVG and PNG charts under `charts/`.
//! - [`page`]: `index.html`, the sweep's own page: its verdict, every
//!   chart (inline, with hover), the tables, profiles and provenance.
//! - [`profiled`]: what became of each profiled run, for the breakdown
//!   tables of the page and of REPORT.md.
//! - [`report`]: `loadgen report DIR`, which redraws all but `summary.json`
//!   and refreshes REPORT.md's generated regions; it also writes
//!   `verdict.json` (as every sweep's end does: [`report::write_verdict`]).
//! - [`verdict`]: the headline verdict in the terminal's few lines, and the
//!   page's sections on it and on what failed and why.
//!
//! The outputs read the sweep's types (`records::sweep`, `sweep::cells`);
//! nothing in the sweep reads the outputs, except that it writes them.

pub mod charts;
pub mod csv;
pub mod json;
pub mod markdown;
pub mod page;
pub mod profiled;
pub mod report;
pub mod verdict;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::files::write_atomic;
use crate::records::sweep::Summary;

/// One file written from a summary: its name in the results directory, and
/// its whole contents.
pub type File = (&'static str, fn(&Summary) -> anyhow::Result<String>);

/// Every file, in the order they are written.
pub const FILES: [File; 5] = [
    (json::FILE, json::summary_json),
    ("summary.csv", csv::summary_csv),
    ("runs.csv", csv::runs_csv),
    ("verdicts.csv", csv::verdicts_csv),
    ("tables.md", markdown::tables_md),
];

/// Rewrite every file of `summary` in `dir`.
pub fn write_all(dir: &Path, summary: &Summary) -> anyhow::Result<Vec<PathBuf>> {
    write(dir, summary, &FILES)
}

/// Rewrite `files` of `summary` in `dir` (each atomically), and return
/// their paths.
pub fn write(dir: &Path, summary: &Summary, files: &[File]) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, contents) in files {
        let path = dir.join(name);
        write_atomic(&path, contents(summary)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
