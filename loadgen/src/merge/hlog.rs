//! The merged interval log: every part's one-second intervals under its
//! own tag (as HdrHistogram's log tools select them with `-tag`), and
//! untagged intervals that add the parts up second by second (what those
//! tools read by default).
//!
//! Each input's log is the `.hlog` beside its `.json` (the sweep and the
//! examples name them so). The parts began together (`--start-at`), so
//! their k-th intervals cover the same second; the sum's timestamp is the
//! earliest of them.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use super::{combine, Input};
use crate::records::part::decode;
use crate::run::histo::{self, Hist};

/// One part's log: (seconds since the epoch, length, histogram) per interval.
type Log = Vec<(f64, Duration, Hist)>;

/// The merged log's bytes.
pub fn merge(inputs: &[Input]) -> anyhow::Result<Vec<u8>> {
    let mut logs = Vec::new();
    for input in inputs {
        let path = input.path.with_extension("hlog");
        logs.push(read(&path).map_err(|why| anyhow::anyhow!("--hlog: {}: {why}", path.display()))?);
    }
    let start = logs.iter().flat_map(|l| l.first()).map(|i| i.0).fold(f64::MAX, f64::min);
    let start = if start == f64::MAX { 0.0 } else { start };
    let at = |t: f64| Duration::from_secs_f64((t - start).max(0.0));
    let longest = logs.iter().map(Vec::len).max().unwrap_or(0);
    let mut sums = Vec::new();
    for k in 0..longest {
        let seconds: Vec<&(f64, Duration, Hist)> = logs.iter().filter_map(|l| l.get(k)).collect();
        let sum = combine::add(seconds.iter().map(|s| &s.2));
        let when = seconds.iter().map(|s| s.0).fold(f64::MAX, f64::min);
        let length = seconds.iter().map(|s| s.1).max().unwrap_or_default();
        sums.push((when, length, sum));
    }
    let mut intervals: Vec<histo::LogInterval> = Vec::new();
    for (k, (when, length, sum)) in sums.iter().enumerate() {
        intervals.push((at(*when), *length, sum, None));
        for (input, log) in inputs.iter().zip(&logs) {
            if let Some((t, len, h)) = log.get(k) {
                intervals.push((at(*t), *len, h, Some(input.part.tag.as_str())));
            }
        }
    }
    let mut out = Vec::new();
    histo::write_hlog(std::time::UNIX_EPOCH + Duration::from_secs_f64(start), &intervals, &mut out)?;
    Ok(out)
}

/// The intervals of a log that `loadgen run --hlog` wrote (untagged or
/// under the run's tag), in absolute time.
fn read(path: &Path) -> Result<Log, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let (mut start, mut base) = (None, None);
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.map_err(|e| format!("not an interval log: {e:?}"))? {
            LogEntry::StartTime(t) => start = Some(t.as_secs_f64()),
            LogEntry::BaseTime(t) => base = Some(t.as_secs_f64()),
            LogEntry::Interval(i) => {
                let h = decode(i.encoded_histogram()).map_err(|e| format!("an interval: {e}"))?;
                let origin = base.or(start).unwrap_or(0.0);
                out.push((origin + i.start_timestamp().as_secs_f64(), i.duration(), h));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn reads_what_a_run_writes() {
        let mut h = histo::new_hist();
        h.record_n(120, 5).unwrap();
        let one = Duration::from_secs(1);
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut bytes = Vec::new();
        histo::write_hlog(start, &[(one, one, &h, Some("lg0")), (2 * one, one, &h, Some("lg0"))], &mut bytes).unwrap();
        let path = std::env::temp_dir().join(format!("loadgen-hlog-read-{}.hlog", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let log = read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!((log[0].0, log[0].1), (1_700_000_001.0, one));
        assert_eq!(log[1].2, h);
        assert!(String::from_utf8(bytes).unwrap().contains("Tag=lg0,"), "the run's tag is on every interval");
    }
}
