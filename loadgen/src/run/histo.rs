//! Latency histograms and the files made from them.
//!
//! One HdrHistogram shape everywhere: 1 µs to 60 s at 3 significant digits,
//! so histograms from different threads and seconds add up exactly. The
//! percentile distribution (`--hgrm`) is printed the way HdrHistogram's
//! `outputPercentileDistribution` and wrk2 print it, and the interval log
//! (`--hlog`) is the V2 compressed format that HdrHistogram's own log tools
//! read.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use crate::records::run::{Latency, Percentiles};

pub const LOWEST_US: u64 = 1;
pub const HIGHEST_US: u64 = 60_000_000;
pub const SIGFIG: u8 = 3;

pub type Hist = Histogram<u64>;

/// An empty histogram of the one shape.
pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("valid histogram bounds")
}

/// Record `d` in µs, clamped into the histogram's range.
pub fn record(h: &mut Hist, d: Duration) {
    h.saturating_record((d.as_micros() as u64).clamp(LOWEST_US, HIGHEST_US));
}

pub fn latency(h: &Hist) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        p9999: h.value_at_quantile(0.9999),
        max: h.max(),
        mean: h.mean(),
        count: h.len(),
    }
}

pub fn percentiles(h: &Hist) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    }
}

/// Percentiles of plain values (per-connection counts, say).
pub fn percentile_of_sorted(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The percentile distribution as HdrHistogram's
/// `outputPercentileDistribution(out, 5, 1000.0)` prints it: values in
/// milliseconds (recorded in µs), five ticks per half distance.
pub fn write_hgrm(h: &Hist, out: &mut impl Write) -> io::Result<()> {
    const SCALE: f64 = 1000.0;
    writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")?;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / SCALE;
            if q < 1.0 {
                writeln!(out, "{value:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q))?;
            } else {
                writeln!(out, "{value:12.3} {q:2.12} {total:10}")?;
            }
        }
    }
    let (mean, stdev) = if h.is_empty() { (0.0, 0.0) } else { (h.mean() / SCALE, h.stdev() / SCALE) };
    writeln!(out, "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]")?;
    writeln!(out, "#[Max     = {:12.3}, Total count    = {:12}]", h.max() as f64 / SCALE, h.len())?;
    let sub_buckets = (2 * 10u64.pow(SIGFIG as u32)).next_power_of_two();
    writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), sub_buckets)?;
    Ok(())
}

/// One interval of the log: `(offset from the log's start time, length,
/// histogram, tag)`; a tag names one load generator among several (`--tag`).
pub type LogInterval<'a> = (Duration, Duration, &'a Hist, Option<&'a str>);

/// An HdrHistogram interval log, V2 compressed, values in µs (the max
/// column in ms, as HdrHistogram's tools print it), interval timestamps in
/// seconds since `start` (the log's StartTime and BaseTime).
pub fn write_hlog(start: SystemTime, intervals: &[LogInterval], out: &mut impl Write) -> io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    // Headers first, as HdrHistogram's HistogramLogWriter writes them...
    IntervalLogWriterBuilder::new()
        .add_comment("[Logged with iomodels loadgen run: latency in microseconds, one interval per second]")
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(out, &mut serializer)?;
    // ...then the column legend, which the crate's writer leaves out...
    writeln!(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")?;
    // ...then the intervals (this writer adds a `#[MaxValueDivisor: 1000.000]` comment).
    let mut log =
        IntervalLogWriterBuilder::new().with_max_value_divisor(1000.0).begin_log_with(out, &mut serializer)?;
    for &(offset, length, h, tag) in intervals {
        log.write_histogram(h, offset, length, tag.and_then(Tag::new)).map_err(|e| io::Error::other(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    fn sample() -> Hist {
        let mut h = new_hist();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        h
    }

    #[test]
    fn hgrm_has_the_table_and_footer() {
        let mut out = Vec::new();
        write_hgrm(&sample(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines[1], "");
        assert!(lines[2].trim_start().starts_with("0.010 0.000000000000"), "{}", lines[2]);
        let last_row = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert!(last_row.contains("1.000000000000      10000"), "{last_row}");
        let h = sample();
        let mean = format!("#[Mean    = {:12.3}, StdDeviation   = {:12.3}]", h.mean() / 1000.0, h.stdev() / 1000.0);
        assert!(text.contains(&mean), "{text}");
        assert!(text.contains("#[Mean    =       50.0"), "{text}");
        assert!(text.contains("#[Max     =      100.031, Total count    =        10000]"), "{text}");
        assert!(text.contains("#[Buckets =           16, SubBuckets     =         2048]"), "{text}");
    }

    #[test]
    fn hlog_round_trips() {
        let a = sample();
        let mut b = new_hist();
        b.record(123).unwrap();
        let mut out = Vec::new();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let one = Duration::from_secs(1);
        write_hlog(start, &[(Duration::ZERO, one, &a, None), (one, one, &b, None)], &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1700000000.000 (seconds since epoch)]"), "{text}");
        assert!(text.contains("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\""), "{text}");
        let mut got = Vec::new();
        for e in IntervalLogIterator::new(&out) {
            if let LogEntry::Interval(i) = e.unwrap() {
                let bytes = base64_decode(i.encoded_histogram());
                let h: Hist = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                got.push((i.start_timestamp(), h));
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, a);
        assert_eq!(got[1], (one, b));
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        } as u32;
        let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut acc = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                acc |= val(c) << (18 - 6 * i);
            }
            for i in 0..chunk.len() - 1 {
                out.push((acc >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    #[test]
    fn summaries() {
        let h = sample();
        let l = latency(&h);
        assert_eq!(l.count, 10_000);
        assert!((49_900..=50_100).contains(&l.p50), "{l:?}");
        assert!(l.p99 <= l.p999 && l.p999 <= l.max);
        assert_eq!(latency(&new_hist()), Latency::default());
        assert_eq!(percentile_of_sorted(&[1, 2, 3, 4], 0.5), 2);
        assert_eq!(percentile_of_sorted(&[5], 0.01), 5);
        assert_eq!(percentile_of_sorted(&[], 0.5), 0);
    }
}
