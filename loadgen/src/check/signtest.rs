//! How sure a head/base ratio is: the median of the per-pair ratios and a
//! distribution-free interval around it (the sign test's order-statistic
//! interval), so that the A/B check needs no assumption about how a noisy
//! machine spreads its figures.
//!
//! With n pairs, the interval [r₍k₎, r₍n+1−k₎] of the sorted ratios covers
//! the true median ratio with probability 1 − 2·P(Bin(n, ½) < k). Its lower
//! end is a one-sided bound at half that error: with 5 pairs k = 1, and
//! "every pair worse than the tolerance" happens by chance with probability
//! 1/32 for a figure whose true ratio sits exactly at the tolerance, and far
//! less for one that did not move.

/// The error allowed on each side of the interval (one-sided 5%).
pub const ALPHA: f64 = 0.05;

/// A median ratio and its interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Interval {
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// The interval's coverage, two-sided (0.9375 for 5 pairs).
    pub confidence: f64,
}

/// P(Bin(n, ½) ≤ j).
fn binomial_cdf(n: usize, j: usize) -> f64 {
    let mut term = 0.5f64.powi(n as i32); // C(n,0) / 2^n
    let mut sum = 0.0;
    for i in 0..=j.min(n) {
        sum += term;
        term = term * (n - i) as f64 / (i + 1) as f64;
    }
    sum
}

/// The largest k ≥ 1 with P(Bin(n, ½) ≤ k − 1) ≤ ALPHA, or None when n is
/// too small for any (fewer than 5 pairs).
pub fn rank(n: usize) -> Option<usize> {
    (1..=n / 2).take_while(|&k| binomial_cdf(n, k - 1) <= ALPHA).last()
}

/// The fewest pairs for which an interval exists.
pub fn min_pairs() -> usize {
    (1..).find(|&n| rank(n).is_some()).expect("some n works")
}

/// Median and sign-test interval of `ratios`; None with too few of them.
pub fn interval(ratios: &[f64]) -> Option<Interval> {
    let mut r: Vec<f64> = ratios.iter().copied().filter(|x| x.is_finite()).collect();
    let n = r.len();
    let k = rank(n)?;
    r.sort_by(f64::total_cmp);
    let median = crate::stats::median(&r)?;
    Some(Interval { median, low: r[k - 1], high: r[n - k], confidence: 1.0 - 2.0 * binomial_cdf(n, k - 1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_binomial() {
        assert_eq!(rank(4), None);
        assert_eq!(min_pairs(), 5);
        assert_eq!(rank(5), Some(1));
        assert_eq!(rank(7), Some(1));
        assert_eq!(rank(8), Some(2));
        assert_eq!(rank(20), Some(6));
        assert!((binomial_cdf(5, 0) - 1.0 / 32.0).abs() < 1e-12);
        assert!((binomial_cdf(10, 10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn interval_is_order_statistics() {
        let i = interval(&[1.3, 1.1, 1.2, 1.5, 1.4]).unwrap();
        assert_eq!((i.median, i.low, i.high), (1.3, 1.1, 1.5));
        assert!((i.confidence - 0.9375).abs() < 1e-12);
        let i = interval(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        assert_eq!((i.median, i.low, i.high), (4.5, 2.0, 7.0));
        assert!(interval(&[1.0, 1.0, 1.0, 1.0]).is_none());
        assert!(interval(&[1.0, f64::NAN, 1.0, 1.0, 1.0]).is_none(), "a NaN is not a pair");
    }
}
