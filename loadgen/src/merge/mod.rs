//! `loadgen merge`: several load generators' results, added up into one.
//!
//! When one machine cannot load a server alone, N load generators on N
//! hosts drive it together: each runs `loadgen run --start-at TIME --tag
//! NAME --json NAME.json`, so they measure the same window, and each
//! records its whole latency histograms (see [`part`]). This command
//! checks that they ran the same experiment and adds them up ([`combine`]):
//! the merged histogram is the histogram of every request, exactly; counts
//! and CPU add up; the throughput is every OK answer over the common window.
//! The result has the shape of a run's JSON, so every tool that reads one
//! (the sweep's tables, `loadgen report`) reads it, plus `merged_from`.
//!
//! Inputs that do not merge are refused, naming the file at fault
//! ([`MergeError`]).

mod combine;
mod hlog;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::records::config::{Protocol, Requests, RunArgs};
use crate::records::part::{self, Part, PartRecord};
use crate::run::histo::{self, Hist};
pub use combine::combine;

/// How far a part's window may be off the first part's (its start's and
/// its end's distances added), as a share of its length: the throughput
/// (all answers over the common window) is then off by no more than this.
pub const MAX_MISALIGNMENT: f64 = 0.01;

/// Flags of `loadgen merge`.
#[derive(Clone, Debug, clap::Args)]
pub struct MergeArgs {
    /// The merged result to write: a run's JSON, plus `merged_from`.
    #[arg(value_name = "OUT.json")]
    pub out: PathBuf,
    /// The load generators' results (`loadgen run --tag NAME --json FILE`;
    /// merged results merge again), two or more.
    #[arg(value_name = "IN.json", required = true, num_args = 2..)]
    pub inputs: Vec<PathBuf>,
    /// Also write the merged latency distribution, as wrk2 prints it.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Also write one HdrHistogram interval log from each input's interval
    /// log (IN.hlog beside IN.json): every part's intervals under its tag,
    /// and untagged ones adding them up second by second.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Why inputs cannot be merged; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{file}: cannot read: {why}")]
    Unreadable { file: String, why: String },
    #[error("{file}: not a loadgen run result: {why}")]
    NotARun { file: String, why: String },
    #[error("{file}: has no `part` (histograms): it was run without --tag, so it cannot be merged exactly")]
    NoPart { file: String },
    #[error(
        "{file}: its configuration is unknown (a merged result written before results stored it): merge its parts"
    )]
    NoConfig { file: String },
    #[error("{file}: part.histograms.{which}: {why}")]
    BadHistogram { file: String, which: String, why: String },
    #[error("{file}: {what} `{got}`, but {first} has `{want}`: only runs of the same experiment merge")]
    Differs { file: String, what: &'static str, got: String, first: String, want: String },
    #[error("{file}: tag `{tag}` is also {other}'s: give each load generator its own --tag (or a file twice?)")]
    TagTwice { file: String, tag: String, other: String },
    #[error(
        "{file}: its window ({start:.3} to {end:.3}, unix s) is {off:.3} s off {first}'s: start every load generator \
         with the same --start-at, --warmup and --duration"
    )]
    Window { file: String, start: f64, end: f64, off: f64, first: String },
    #[error("{file}: is both the output and an input")]
    OutIsInput { file: String },
}

/// One input, read and decoded.
pub struct Input {
    pub path: PathBuf,
    pub record: PartRecord,
    pub part: Part,
    pub config: RunArgs,
    pub latency: Hist,
    pub by_method: BTreeMap<String, Hist>,
}

/// `loadgen merge`: read, check, add up, write.
pub fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let outputs = Outputs { json: &args.out, hgrm: args.hgrm.as_deref(), hlog: args.hlog.as_deref() };
    let merged = merge_files(&args.inputs, outputs, std::env::args().collect())?;
    if !args.quiet {
        print!("{}", describe(&merged));
    }
    Ok(())
}

/// Where a merge writes: the JSON, and optionally the distribution and the
/// interval log.
#[derive(Clone, Copy)]
pub struct Outputs<'a> {
    pub json: &'a Path,
    pub hgrm: Option<&'a Path>,
    pub hlog: Option<&'a Path>,
}

/// Merge `inputs` into `out`, the merged record's `args` being `args`;
/// nothing is written when they do not merge.
pub fn merge_files(inputs: &[PathBuf], out: Outputs, args: Vec<String>) -> anyhow::Result<PartRecord> {
    for input in inputs {
        if same_file(input, out.json) {
            return Err(MergeError::OutIsInput { file: input.display().to_string() }.into());
        }
    }
    let inputs = inputs.iter().map(|p| read(p)).collect::<Result<Vec<_>, _>>()?;
    check(&inputs)?;
    let log = out.hlog.map(|_| hlog::merge(&inputs)).transpose()?;
    let mut merged = combine(&inputs, args);
    relative_files(&mut merged, out.json);
    write(out.json, "OUT.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &merged)?;
        Ok(writeln!(w)?)
    })?;
    if let Some(path) = out.hgrm {
        let latency = combine::add(inputs.iter().map(|i| &i.latency));
        write(path, "--hgrm", |w| Ok(histo::write_hgrm(&latency, w)?))?;
    }
    if let (Some(path), Some(log)) = (out.hlog, log) {
        write(path, "--hlog", |w| Ok(w.write_all(&log)?))?;
    }
    Ok(merged)
}

/// One input file, with its histograms decoded.
pub fn read(path: &Path) -> Result<Input, MergeError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| MergeError::Unreadable { file: file.clone(), why: e.to_string() })?;
    let record =
        PartRecord::from_slice(&bytes).map_err(|e| MergeError::NotARun { file: file.clone(), why: e.to_string() })?;
    let part = record.part.clone().ok_or_else(|| MergeError::NoPart { file: file.clone() })?;
    let config = record.result.config.clone().ok_or_else(|| MergeError::NoConfig { file: file.clone() })?;
    let bad = |which: String, why| MergeError::BadHistogram { file: file.clone(), which, why };
    let latency = part::decode(&part.histograms.latency).map_err(|why| bad("latency".into(), why))?;
    let mut by_method = BTreeMap::new();
    for (m, h) in &part.histograms.by_method {
        by_method.insert(m.clone(), part::decode(h).map_err(|why| bad(format!("by_method.{m}"), why))?);
    }
    Ok(Input { path: path.to_path_buf(), record, part, config, latency, by_method })
}

/// The inputs ran the same experiment, each under its own tag, over the
/// same window.
pub fn check(inputs: &[Input]) -> Result<(), MergeError> {
    let first = &inputs[0];
    let name = |i: &Input| i.path.display().to_string();
    let mut seen: BTreeMap<&str, &Input> = BTreeMap::new();
    for input in inputs {
        for (what, got, want) in [
            ("protocol", protocol(&input.config), protocol(&first.config)),
            ("requests", requests(&input.config), requests(&first.config)),
        ] {
            if got != want {
                return Err(MergeError::Differs { file: name(input), what, got, first: name(first), want });
            }
        }
        for tag in input.part.tags(input.record.merged_from.as_ref()) {
            if let Some(other) = seen.insert(tag, input) {
                return Err(MergeError::TagTwice { file: name(input), tag: tag.into(), other: name(other) });
            }
        }
    }
    check_windows(inputs)
}

fn protocol(config: &RunArgs) -> String {
    match config.protocol {
        Protocol::Framed => "framed".into(),
        Protocol::Raw => "raw".into(),
    }
}

/// The flags that shape each request and the loop, the rate left out:
/// each part offers its share of it.
fn requests(config: &RunArgs) -> String {
    let requests = Requests { rate: None, ..config.requests.clone() };
    let open = if config.requests.rate.is_some() { " (open loop)" } else { "" };
    format!("{}{open}", requests.to_argv().join(" "))
}

/// Every part's window coincides with the first's, to [`MAX_MISALIGNMENT`]
/// of its length (a part that failed is let through: its failure is the
/// merged result's).
fn check_windows(inputs: &[Input]) -> Result<(), MergeError> {
    let mut valid = inputs.iter().filter(|i| i.record.result.failure.is_none());
    let Some(first) = valid.next() else { return Ok(()) };
    let (a, b) = (first.part.window_start_unix_s, first.part.window_end_unix_s);
    for input in valid {
        let p = &input.part;
        let off = (p.window_start_unix_s - a).abs() + (p.window_end_unix_s - b).abs();
        if off > MAX_MISALIGNMENT * (p.window_end_unix_s - p.window_start_unix_s) {
            return Err(MergeError::Window {
                file: input.path.display().to_string(),
                start: p.window_start_unix_s,
                end: p.window_end_unix_s,
                off,
                first: first.path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// `merged 2 parts (lg0, lg1) over 5.000 s: ...`
pub fn describe(r: &PartRecord) -> String {
    let x = &r.result;
    let tags = r.merged_from.as_ref().map(|m| m.tags.join(", ")).unwrap_or_default();
    let parts = r.merged_from.as_ref().map_or(0, |m| m.tags.len());
    let mut out = format!(
        "merged {parts} parts ({tags}) over a common window of {:.3} s: {} OK answers, {:.0} req/s; latency p50 {} \
         µs, p99 {} µs, max {} µs ({} requests)\n",
        x.window_s, x.counts.ok, x.throughput_rps, x.latency.p50, x.latency.p99, x.latency.max, x.latency.count
    );
    if let Some(f) = &x.failure {
        out += &format!("failed: {f}\n");
    }
    out
}

/// `merged_from.files` beside the output are named relative to it, so that
/// a results directory can move.
fn relative_files(merged: &mut PartRecord, out: &Path) {
    let (Some(from), Some(dir)) = (merged.merged_from.as_mut(), out.parent()) else { return };
    for f in &mut from.files {
        if let Ok(rest) = Path::new(f.as_str()).strip_prefix(dir) {
            *f = rest.display().to_string();
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn write(path: &Path, what: &str, body: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("{what} {}: cannot create the file", path.display()))?;
    let mut w = BufWriter::new(file);
    body(&mut w).and_then(|_| Ok(w.flush()?)).with_context(|| format!("{what} {}: cannot write", path.display()))
}
