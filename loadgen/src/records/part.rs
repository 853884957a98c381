//! The record a tagged run adds to its JSON, so that `loadgen merge` can
//! add it to others exactly.
//!
//! A run's `RunResult` keeps only percentiles, and percentiles cannot be
//! added: the p99 of two load generators is not any function of their two
//! p99s. So `loadgen run --tag NAME` also writes, under `part`, its whole
//! latency histograms (HdrHistogram's V2 compressed form, base64, as in
//! interval logs) and the wall-clock bounds of its window. What it sent,
//! which `merge` checks is the same for every part, is its configuration
//! (`RunResult::config`). An untagged run writes exactly the `RunResult`.
//!
//! The merged file is a `RunResult` too (any reader of a run's JSON reads
//! it), with a `part` of its own (so merged files merge again) and
//! `merged_from`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::run::RunResult;

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
        super::run::upgrade_legacy_result(&mut result).map_err(serde::de::Error::custom)?;
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
    /// The tags this part stands for (a merged part: each of its own).
    pub fn tags<'a>(&'a self, merged: Option<&'a MergedFrom>) -> Vec<&'a str> {
        match merged {
            Some(m) => m.tags.iter().map(String::as_str).collect(),
            None => vec![self.tag.as_str()],
        }
    }
}

/// V2 deflate, base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("serializing into memory cannot fail");
    STANDARD.encode(bytes)
}

/// The inverse of [`encode`].
pub fn decode(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD.decode(s.trim()).map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| format!("not a histogram: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip() {
        let new_hist = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut h = new_hist();
        for v in [1u64, 7, 1000, 123_456, 59_000_000] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        assert_eq!(decode(&encode(&h)).unwrap(), h);
        assert_eq!(decode(&encode(&new_hist())).unwrap(), new_hist());
        assert!(decode("!!").unwrap_err().contains("not base64"));
        assert!(decode("AAAA").unwrap_err().contains("not a histogram"));
    }
}
