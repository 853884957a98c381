//! The record a tagged run adds to its JSON, so that `loadgen merge` can
//! add it to others exactly.
//!
//! A run's `RunResult` keeps only percentiles, and percentiles cannot be
//! added: the p99 of two load generators is not any function of their two
//! p99s. So `loadgen run --tag NAME` also writes, under `part`, its whole
//! latency histograms (HdrHistogram's V2 compressed form, base64, as in
//! interval logs), the wall-clock bounds of its window, and what it sent
//! (protocol and workload), which `merge` checks are the same for every
//! part. An untagged run writes exactly the `RunResult`, as before.
//!
//! The merged file is a `RunResult` too (any reader of a run's JSON reads
//! it), with a `part` of its own (so merged files merge again) and
//! `merged_from`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use proto::Method;
use serde::{Deserialize, Serialize};

use super::clock::unix_s;
use crate::result::RunResult;
use crate::run::args::{Protocol, Shape};
use crate::run::histo::Hist;
use crate::run::{Measured, RunArgs};

/// A run's JSON: the `RunResult`, plus `part` when tagged and
/// `merged_from` when made by `loadgen merge`. (Read with
/// [`PartRecord::from_slice`]: serde's `flatten` cannot read the result's maps
/// keyed by number.)
#[derive(Debug, Clone, Serialize)]
pub struct PartRecord {
    #[serde(flatten)]
    pub result: RunResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<MergedFrom>,
}

/// What one load generator among several measured, in mergeable form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// `--tag` (a merged file: its parts' tags joined by `+`).
    pub tag: String,
    /// `--start-at`, RFC 3339 (`None`: the run started when it was ready).
    pub start_at: Option<String>,
    /// The measured window, in seconds since the epoch (this host's clock).
    pub window_start_unix_s: f64,
    pub window_end_unix_s: f64,
    /// `framed` or `raw`.
    pub protocol: String,
    /// The methods, sizes and loop the requests followed (not the rate:
    /// each part offers its share of it).
    pub workload: String,
    pub histograms: Histograms,
}

/// Latency histograms (µs), each V2 deflate-compressed and base64-encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Every in-window request, as `RunResult::latency` summarizes it.
    pub latency: String,
    /// Per method sent, as `RunResult::latency_by_method`.
    #[serde(default)]
    pub by_method: BTreeMap<String, String>,
}

/// Where a merged result came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedFrom {
    /// Every load generator's tag, in the order of `files`' parts.
    pub tags: Vec<String>,
    /// The input files, as given.
    pub files: Vec<String>,
    /// Fields that are not the exact figure of all requests together but a
    /// stated bound (see `loadgen merge --help`), with the rule used.
    pub bounds: Vec<String>,
}

impl PartRecord {
    pub fn from_slice(bytes: &[u8]) -> serde_json::Result<PartRecord> {
        let mut all: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)?;
        let part = take(&mut all, "part")?;
        let merged_from = take(&mut all, "merged_from")?;
        let mut result = serde_json::Value::Object(all);
        crate::result::upgrade_legacy_result(&mut result);
        Ok(PartRecord { result: serde_json::from_value(result)?, part, merged_from })
    }
}

fn take<T: serde::de::DeserializeOwned>(
    all: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> serde_json::Result<Option<T>> {
    all.remove(key).filter(|v| !v.is_null()).map(serde_json::from_value).transpose()
}

impl Part {
    /// The part of a tagged run (`None` without `--tag`).
    pub fn of(args: &RunArgs, m: &Measured) -> Option<Part> {
        let tag = args.tag.clone()?;
        let window_start = m.started + args.warmup;
        let window_end = window_start + Duration::from_secs_f64(m.result.window_s);
        Some(Part {
            tag,
            start_at: args.start_at.map(crate::env::rfc3339),
            window_start_unix_s: unix_s(window_start),
            window_end_unix_s: unix_s(window_end),
            protocol: protocol_name(args.protocol).into(),
            workload: workload(args),
            histograms: Histograms {
                latency: encode(&m.latency),
                by_method: m.by_method.iter().map(|(name, h)| (name.to_string(), encode(h))).collect(),
            },
        })
    }

    /// The tags this part stands for (a merged part: each of its own).
    pub fn tags<'a>(&'a self, merged: Option<&'a MergedFrom>) -> Vec<&'a str> {
        match merged {
            Some(m) => m.tags.iter().map(String::as_str).collect(),
            None => vec![self.tag.as_str()],
        }
    }
}

/// `--json`: the `RunResult`, with the `part` of a tagged run.
pub fn write_json(w: &mut impl Write, args: &RunArgs, m: &Measured) -> anyhow::Result<()> {
    let record = PartRecord { result: m.result.clone(), part: Part::of(args, m), merged_from: None };
    serde_json::to_writer_pretty(&mut *w, &record)?;
    writeln!(w)?;
    Ok(())
}

pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Framed => "framed",
        Protocol::Raw => "raw",
    }
}

/// `echo=90,compute=10 size=64 rounds=1000 closed depth=1 think_us=0`:
/// the flags that shape each request and the loop, with the ones a method
/// does not use left out.
pub fn workload(args: &RunArgs) -> String {
    let mix = args.mix();
    let uses = |m: Method| mix.0.iter().any(|(x, _)| *x == m);
    let methods: Vec<String> = mix.0.iter().map(|(m, w)| format!("{}={w}", m.name().to_lowercase())).collect();
    let mut out = format!("{} size={}", methods.join(","), args.size);
    if uses(Method::Delay) {
        out += &format!(" delay_us={}", args.delay_us);
    }
    if uses(Method::Compute) {
        out += &format!(" rounds={}", args.rounds);
    }
    out += &match args.shape() {
        Shape::Closed { depth, think } => format!(" closed depth={depth} think_us={}", think.as_micros()),
        Shape::Open { .. } => " open".to_string(),
    };
    out
}

/// V2 deflate, base64.
pub fn encode(h: &Hist) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("serializing into memory cannot fail");
    STANDARD.encode(bytes)
}

/// The inverse of [`encode`].
pub fn decode(s: &str) -> Result<Hist, String> {
    let bytes = STANDARD.decode(s.trim()).map_err(|e| format!("not base64: {e}"))?;
    let h: Hist = Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| format!("not a histogram: {e:?}"))?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::histo::new_hist;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["run", "--target", "127.0.0.1:1"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).run
    }

    #[test]
    fn histograms_round_trip() {
        let mut h = new_hist();
        for v in [1u64, 7, 1000, 123_456, 59_000_000] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        assert_eq!(decode(&encode(&h)).unwrap(), h);
        assert_eq!(decode(&encode(&new_hist())).unwrap(), new_hist());
        assert!(decode("!!").unwrap_err().contains("not base64"));
        assert!(decode("AAAA").unwrap_err().contains("not a histogram"));
    }

    #[test]
    fn the_workload_names_what_shapes_the_requests() {
        assert_eq!(workload(&args(&[])), "echo=1 size=64 closed depth=1 think_us=0");
        assert_eq!(
            workload(&args(&["--mix", "echo=9,compute=1", "--rounds", "50", "--depth", "4"])),
            "echo=9,compute=1 size=64 rounds=50 closed depth=4 think_us=0"
        );
        assert_eq!(workload(&args(&["--method", "delay", "--rate", "100"])), "delay=1 size=64 delay_us=1000 open");
        assert_eq!(workload(&args(&["--rate", "100"])), workload(&args(&["--rate", "5000"])), "the rate is a share");
        assert_eq!(protocol_name(args(&["--protocol", "raw"]).protocol), "raw");
    }
}
