//! The files a run writes: `--json` (the `RunResult`, exactly as serde
//! serializes it, which the sweep reads back), `--hgrm` (the percentile
//! distribution as wrk2 prints it) and `--hlog` (an HdrHistogram interval
//! log). Each write error names its flag.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use super::{histo, Measured, RunArgs};

/// Before any load: make sure every output file can be created, so that a
/// long run never measures for nothing and fails only at the end.
pub fn check_writable(args: &RunArgs) -> anyhow::Result<()> {
    for (flag, path) in [("--json", &args.json), ("--hgrm", &args.hgrm), ("--hlog", &args.hlog)] {
        if let Some(path) = path {
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
    }
    Ok(())
}

pub fn write_files(args: &RunArgs, m: &Measured) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        write("--json", path, |w| {
            serde_json::to_writer_pretty(&mut *w, &m.result)?;
            writeln!(w)?;
            Ok(())
        })?;
    }
    if let Some(path) = &args.hgrm {
        write("--hgrm", path, |w| Ok(histo::write_hgrm(&m.latency, w)?))?;
    }
    if let Some(path) = &args.hlog {
        let intervals: Vec<histo::Interval> = m.intervals.iter().map(|(o, l, h)| (*o, *l, h)).collect();
        write("--hlog", path, |w| Ok(histo::write_hlog(m.started, &intervals, w)?))?;
    }
    Ok(())
}

fn write(flag: &str, path: &Path, body: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("{flag} {}: cannot create the file", path.display()))?;
    let mut w = BufWriter::new(file);
    body(&mut w).and_then(|_| Ok(w.flush()?)).with_context(|| format!("{flag} {}: cannot write", path.display()))
}
