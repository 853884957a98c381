//! How loadgen writes numbers for people: latencies in their best unit,
//! rates with thousands separators, three significant digits, MiB, a
//! cell's median with its range. The run's summary, the sweep's progress
//! lines, the tables, the charts' notes and the regression check all write
//! their figures through these, so that one figure reads the same
//! everywhere.

use crate::stats::Spread;

/// A latency in µs, in the unit that reads best.
pub fn us(v: u64) -> String {
    match v {
        0..=999 => format!("{v} µs"),
        1_000..=9_999 => format!("{:.2} ms", v as f64 / 1e3),
        10_000..=999_999 => format!("{:.1} ms", v as f64 / 1e3),
        _ => format!("{:.2} s", v as f64 / 1e6),
    }
}

/// A latency figure (µs, maybe a median between two) in its best unit.
pub fn us_f(v: f64) -> String {
    us(v.round().max(0.0) as u64)
}

/// 12345.6 -> "12,346".
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Three significant digits (whole numbers from 100 on).
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

/// A p-value, the same in every table and verdict: 3 decimals (4 below
/// 0.01), or `< 0.0001`.
pub fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("{:.*}", if p >= 0.01 { 3 } else { 4 }, p)
    }
}

/// One, two or three decimals by size: 123.4, 12.34, 0.123 (the
/// regression check's figures, whose small values matter).
pub fn decimals(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A signed change as a whole percentage: 0.25 -> "+25%".
pub fn signed_percent(f: f64) -> String {
    format!("{:+.0}%", f * 100.0)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// A figure's median, and its (min–max) when more than one run measured it.
pub fn spread_text(s: &Spread, fmt: impl Fn(f64) -> String) -> String {
    if s.n < 2 {
        fmt(s.median)
    } else {
        format!("{} ({}–{})", fmt(s.median), fmt(s.min), fmt(s.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(us(950), "950 µs");
        assert_eq!(us(5_019), "5.02 ms");
        assert_eq!(us(12_345), "12.3 ms");
        assert_eq!(us(2_500_000), "2.50 s");
        assert_eq!(num(0.5123), "0.512");
        assert_eq!(num(0.0095), "0.00950");
        assert_eq!(num(36.94), "36.9");
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(0.0), "0");
        assert_eq!(
            (decimals(123.45), decimals(12.345), decimals(0.12345)),
            ("123.5".into(), "12.35".into(), "0.123".into())
        );
        assert_eq!(
            [p_value(0.37), p_value(0.05), p_value(0.0031), p_value(0.00025), p_value(0.0)],
            ["0.370", "0.050", "0.0031", "0.0003", "< 0.0001"]
        );
        assert_eq!(signed_percent(0.254), "+25%");
        assert_eq!(mib(3 << 20), "3.0 MiB");
    }
}
