//! Export a sweep's [`Summary`] in several formats, one file per format, as
//! hyperfine does: each format implements [`Exporter`], and the sweep and
//! `loadgen report` write them all through [`write_all`].
//!
//! - [`json`]: `summary.json`, the [`Summary`] itself (what `loadgen report`
//!   reads back), with every cell's figures: median, min–max and count over
//!   the passes of `--repeat`.
//! - [`csv`]: `summary.csv`, one row per cell (model × level × scenario)
//!   with each figure's median, min, max and count; `runs.csv`, one row per
//!   run with every field of its `RunResult` flattened into columns.
//! - [`markdown`]: `tables.md`, the tables that REPORT.md embeds.

pub mod charts;
pub mod csv;
pub mod json;
pub mod markdown;
pub mod report;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::files::write_atomic;
use crate::sweep::summary::Summary;

/// One output format.
pub trait Exporter {
    /// The file name it writes inside the results directory.
    fn file_name(&self) -> &'static str;
    /// The whole file's contents for `summary`.
    fn serialize(&self, summary: &Summary) -> anyhow::Result<Vec<u8>>;
}

/// Every format, in the order they are written.
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::Json),
        Box::new(csv::Csv),
        Box::new(csv::RunsCsv),
        Box::new(csv::Verdicts),
        Box::new(markdown::Markdown),
    ]
}

/// Rewrite every export of `summary` in `dir` (each file atomically), and
/// return their paths.
pub fn write_all(dir: &Path, summary: &Summary) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for exporter in exporters() {
        let path = dir.join(exporter.file_name());
        let bytes = exporter.serialize(summary)?;
        write_atomic(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
