//! The files a run writes: `--json` (the `RunResult`, exactly as serde
//! serializes it, which the sweep reads back; a tagged run adds its
//! [`Part`] for `loadgen merge`), `--hgrm` (the percentile
//! distribution as wrk2 prints it; with a mix of methods, one more file per
//! method beside it, `NAME.echo.hgrm`...) and `--hlog` (an HdrHistogram
//! interval log). Each write error names its flag.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::{histo, Measured, RunArgs};
use crate::records::clock::{rfc3339, unix_s};
use crate::records::part::{encode, Histograms, Part, PartRecord};

/// Before any load: make sure every output file can be created, so that a
/// long run never measures for nothing and fails only at the end.
pub fn check_writable(args: &RunArgs) -> anyhow::Result<()> {
    for (flag, path) in [("--json", &args.json), ("--hgrm", &args.hgrm), ("--hlog", &args.hlog)] {
        let Some(path) = path else { continue };
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("{flag} {}: cannot create the file", path.display()))?;
        if !existed {
            // Leave no empty file behind should the run fail before writing it.
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

pub fn write_files(args: &RunArgs, m: &Measured) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        let record = PartRecord { result: m.result.clone(), part: part(args, m), merged_from: None };
        write("--json", path, |w| {
            serde_json::to_writer_pretty(&mut *w, &record)?;
            Ok(writeln!(w)?)
        })?;
    }
    if let Some(path) = &args.hgrm {
        write("--hgrm", path, |w| Ok(histo::write_hgrm(&m.latency, w)?))?;
        if m.by_method.len() > 1 {
            for (method, h) in &m.by_method {
                write("--hgrm", &per_method(path, method), |w| Ok(histo::write_hgrm(h, w)?))?;
            }
        }
    }
    if let Some(path) = &args.hlog {
        let intervals: Vec<histo::LogInterval> =
            m.intervals.iter().map(|(o, l, h)| (*o, *l, h, args.tag.as_deref())).collect();
        write("--hlog", path, |w| Ok(histo::write_hlog(m.started, &intervals, w)?))?;
    }
    Ok(())
}

/// The part of a tagged run (`None` without `--tag`): its whole
/// histograms and its window's wall-clock bounds.
fn part(args: &RunArgs, m: &Measured) -> Option<Part> {
    let tag = args.tag.clone()?;
    let window_start = m.started + args.warmup;
    let window_end = window_start + Duration::from_secs_f64(m.result.window_s);
    Some(Part {
        tag,
        start_at: args.start_at.map(rfc3339),
        window_start_unix_s: unix_s(window_start),
        window_end_unix_s: unix_s(window_end),
        histograms: Histograms {
            latency: encode(&m.latency),
            by_method: m.by_method.iter().map(|(name, h)| (name.to_string(), encode(h))).collect(),
        },
    })
}

/// `dir/run.hgrm` and ECHO: `dir/run.echo.hgrm`.
pub fn per_method(path: &Path, method: &str) -> std::path::PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}.{}{ext}", method.to_lowercase()))
}

fn write(flag: &str, path: &Path, body: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("{flag} {}: cannot create the file", path.display()))?;
    let mut w = BufWriter::new(file);
    body(&mut w).and_then(|_| Ok(w.flush()?)).with_context(|| format!("{flag} {}: cannot write", path.display()))
}
