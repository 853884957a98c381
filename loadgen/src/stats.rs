//! The statistics the project's verdicts rest on, in one place: the
//! median and a figure's [`Spread`] over repeated runs, Student's t
//! distribution, a paired t-test on log ratios with Holm's step-down
//! correction for a family of tests (the sweep's tables), and the sign
//! test's interval around a median ratio (the A/B regression check).
//!
//! Why these. Two models that ran in the same pass of a sweep met the same
//! machine (the same drift, the same noisy neighbour), so the comparison of
//! A with B uses the ratios A/B *pass by pass*: whatever the pass did to
//! both cancels. A ratio is judged on its logarithm (a 2× and a ½× are the
//! same distance from 1), and on that scale the passes' log ratios are
//! treated as a normal sample: the paired t-test then gives an exact
//! interval and p-value with n − 1 degrees of freedom. With the 3 to 5
//! passes a sweep affords, the alternatives do worse: a sign test cannot
//! reject anything below 6 pairs (its smallest two-sided p with 5 is 1/16),
//! and a bootstrap of 5 values is overconfident.
//!
//! One table makes many comparisons, so each is not held to α alone: Holm's
//! correction ([`holm`]) keeps the chance of *any* false verdict in the
//! family at most α (under the t-test's assumptions), and is never less
//! powerful than Bonferroni's.
//!
//! The A/B check asks a different question of one figure: how sure is the
//! median head/base ratio? There the sign test's interval
//! ([`sign_interval`]) needs no assumption about how a noisy machine
//! spreads its figures. With n pairs, the interval [r₍k₎, r₍n+1−k₎] of the
//! sorted ratios covers the true median ratio with probability
//! 1 − 2·P(Bin(n, ½) < k). Its lower end is a one-sided bound at half that
//! error: with 5 pairs k = 1, and "every pair worse than the tolerance"
//! happens by chance with probability 1/32 for a figure whose true ratio
//! sits exactly at the tolerance, and far less for one that did not move.
//!
//! No statistics crate: the t distribution's CDF is the regularized
//! incomplete beta function (continued fraction, as in Numerical Recipes),
//! and its quantile is found by bisection on the CDF.

/// The median of the finite values; `None` if there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// One figure over repeated runs: the median of the runs that measured it,
/// the smallest and the largest value, and how many runs measured it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Runs that measured it.
    pub n: usize,
}

impl Spread {
    /// The median, min and max of the finite values; `None` if there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let median = median(values)?;
        let finite = || values.iter().copied().filter(|x| x.is_finite());
        let min = finite().fold(f64::INFINITY, f64::min);
        let max = finite().fold(f64::NEG_INFINITY, f64::max);
        Some(Spread { median, min, max, n: finite().count() })
    }

    /// Whether the two min–max ranges share a value.
    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }

    /// Every value divided by `by` (a figure against a reference).
    pub fn over(&self, by: f64) -> Spread {
        Spread { median: self.median / by, min: self.min / by, max: self.max / by, ..*self }
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum: f64 = G[0] + G.iter().enumerate().skip(1).map(|(i, g)| g / (x + i as f64)).sum::<f64>();
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let off_zero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / off_zero(1.0 - qab * x / qap);
    let mut h = d;
    // One step of the fraction with coefficient `aa`: the factor it puts on h.
    let mut step = |aa: f64| {
        d = 1.0 / off_zero(1.0 + aa * d);
        c = off_zero(1.0 + aa / c);
        d * c
    };
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2))); // the even step
        let odd = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)));
        h *= odd;
        if (odd - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b), 0 ≤ x ≤ 1.
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast on this side of the mean; the other side
    // by symmetry, I_x(a, b) = 1 − I_{1−x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    // P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2).
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The t with P(T ≤ t) = `p`, for 0 < p < 1 (bisection on [`t_cdf`]).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "a quantile of probability {p}");
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let mut high = 1.0;
    while t_cdf(high, df) < p {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if t_cdf(mid, df) < p {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-12 * high {
            break;
        }
    }
    0.5 * (low + high)
}

/// The fewest pairs a paired test is made on: with 2 the single degree of
/// freedom gives intervals too wide to mean anything.
pub const MIN_PAIRS: usize = 3;

/// A paired t-test of A against B on the logarithms of their ratios.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PairedTest {
    /// Pairs the test was made on.
    pub n: usize,
    /// The geometric mean of the ratios A/B.
    pub ratio: f64,
    /// Its two-sided (1 − α) interval, for the α the test was asked for
    /// (not corrected for the family).
    pub low: f64,
    pub high: f64,
    /// Two-sided p-value of "the ratio is 1", before any correction.
    pub p: f64,
}

/// Whether the pair (a, b) has a log ratio: both finite and above zero. A
/// figure that measured nothing in a pass (no context switch at all in the
/// window) has none, and [`paired_log_t`] leaves that pass out.
pub fn has_log_ratio(a: f64, b: f64) -> bool {
    let usable = |x: f64| x.is_finite() && x > 0.0;
    usable(a) && usable(b)
}

/// The paired t-test of `pairs` (a, b): on ln(a/b), two-sided, the
/// interval at level 1 − `alpha`. A pair with a value that is not finite
/// and positive has no log ratio and is left out. `None` with fewer than
/// [`MIN_PAIRS`] pairs left.
pub fn paired_log_t(pairs: &[(f64, f64)], alpha: f64) -> Option<PairedTest> {
    let d: Vec<f64> = pairs.iter().filter(|&&(a, b)| has_log_ratio(a, b)).map(|(a, b)| (a / b).ln()).collect();
    let n = d.len();
    if n < MIN_PAIRS {
        return None;
    }
    let nf = n as f64;
    let mean = d.iter().sum::<f64>() / nf;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let se = (var / nf).sqrt();
    let df = nf - 1.0;
    // Every pass gave exactly the same ratio: no spread, so the verdict is
    // the ratio itself (p 0 where it differs from 1, 1 where it is 1).
    let p = match (se > 0.0, mean != 0.0) {
        (true, _) => 2.0 * (1.0 - t_cdf((mean / se).abs(), df)),
        (false, true) => 0.0,
        (false, false) => 1.0,
    };
    let half = t_quantile(1.0 - alpha / 2.0, df) * se;
    Some(PairedTest { n, ratio: mean.exp(), low: (mean - half).exp(), high: (mean + half).exp(), p: p.clamp(0.0, 1.0) })
}

/// Holm's step-down adjusted p-values, in the order given: the i-th
/// smallest of m p-values is multiplied by m − i + 1, and the adjusted
/// values are made non-decreasing in that order (capped at 1). A test is
/// rejected at family-wise level α where its adjusted p ≤ α.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The error the sign test's interval allows on each side (one-sided 5%).
pub const SIGN_ALPHA: f64 = 0.05;

/// A median ratio and its sign-test interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MedianInterval {
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

/// The largest k ≥ 1 with P(Bin(n, ½) ≤ k − 1) ≤ [`SIGN_ALPHA`], or None
/// when n is too small for any (fewer than 5 pairs).
fn sign_rank(n: usize) -> Option<usize> {
    (1..=n / 2).take_while(|&k| binomial_cdf(n, k - 1) <= SIGN_ALPHA).last()
}

/// The fewest pairs for which a sign-test interval exists.
pub fn sign_min_pairs() -> usize {
    (1..).find(|&n| sign_rank(n).is_some()).expect("some n works")
}

/// The median of `ratios` and its sign-test interval; None with too few.
pub fn sign_interval(ratios: &[f64]) -> Option<MedianInterval> {
    let mut r: Vec<f64> = ratios.iter().copied().filter(|x| x.is_finite()).collect();
    let n = r.len();
    let k = sign_rank(n)?;
    r.sort_by(f64::total_cmp);
    let median = median(&r)?;
    Some(MedianInterval { median, low: r[k - 1], high: r[n - k], confidence: 1.0 - 2.0 * binomial_cdf(n, k - 1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn a_spread_is_median_min_max_and_count_of_the_finite_values() {
        let s = Spread::of(&[3.0, f64::NAN, 1.0, 10.0]).unwrap();
        assert_eq!(s, Spread { median: 3.0, min: 1.0, max: 10.0, n: 3 });
        assert!(Spread::of(&[f64::INFINITY]).is_none());
        assert!(s.overlaps(&Spread::of(&[10.0, 12.0]).unwrap()) && !s.overlaps(&Spread::of(&[11.0]).unwrap()));
        assert_eq!(s.over(2.0), Spread { median: 1.5, min: 0.5, max: 5.0, n: 3 });
    }

    /// Values from the standard t tables.
    #[test]
    fn t_distribution_matches_the_tables() {
        // df 1 is the Cauchy distribution: P(T ≤ 1) = 3/4.
        assert!(close(t_cdf(1.0, 1.0), 0.75, 1e-12), "{}", t_cdf(1.0, 1.0));
        assert!(close(t_cdf(0.0, 7.0), 0.5, 1e-15));
        assert!(close(t_cdf(-2.0, 3.0), 1.0 - t_cdf(2.0, 3.0), 1e-15));
        // df 2 has a closed form: P(T ≤ t) = ½ + t / (2 √(2 + t²)).
        for t in [0.3f64, 1.0, 2.5, 9.0] {
            let exact = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert!(close(t_cdf(t, 2.0), exact, 1e-12), "t {t}: {} vs {exact}", t_cdf(t, 2.0));
        }
        for (p, df, table) in [
            (0.975, 2.0, 4.302_653),
            (0.975, 4.0, 2.776_445),
            (0.975, 10.0, 2.228_139),
            (0.95, 4.0, 2.131_847),
            (0.995, 2.0, 9.924_843),
            (0.975, 1.0, 12.706_205),
            (0.975, 1000.0, 1.962_339),
        ] {
            let q = t_quantile(p, df);
            assert!(close(q, table, 1e-5), "t({p}, {df}) = {q}, the table says {table}");
        }
        assert!(close(t_quantile(0.025, 4.0), -2.776_445, 1e-5));
    }

    #[test]
    fn paired_test_on_log_ratios() {
        // Ratios 2, 2, 2 × small noise: a geometric mean near 2, p tiny.
        let pairs = [(200.0, 100.0), (210.0, 100.0), (190.0, 100.0), (205.0, 100.0), (198.0, 100.0)];
        let t = paired_log_t(&pairs, 0.05).unwrap();
        assert_eq!(t.n, 5);
        assert!(close(t.ratio, 2.005, 0.01), "{t:?}");
        assert!(t.low < t.ratio && t.ratio < t.high && t.low > 1.9 && t.high < 2.11, "{t:?}");
        assert!(t.p < 1e-5, "{t:?}");
        // A hand computation: log ratios ln 1.1, ln 1.2, ln 1.0.
        let t = paired_log_t(&[(1.1, 1.0), (1.2, 1.0), (1.0, 1.0)], 0.05).unwrap();
        let d = [1.1f64.ln(), 1.2f64.ln(), 0.0];
        let mean = d.iter().sum::<f64>() / 3.0;
        let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let stat = mean / (sd / 3f64.sqrt());
        assert!(close(t.p, 2.0 * (1.0 - t_cdf(stat, 2.0)), 1e-12));
        assert!(close(t.high, (mean + 4.302_653 * sd / 3f64.sqrt()).exp(), 1e-5), "{t:?}");
        assert!(t.p > 0.05, "1.1, 1.2, 1.0 over 3 passes is not a difference: {t:?}");
        // Too few usable pairs.
        assert!(paired_log_t(&[(1.0, 2.0), (1.0, 2.0)], 0.05).is_none());
        assert!(paired_log_t(&[(1.0, 2.0), (0.0, 2.0), (f64::NAN, 1.0), (1.0, 2.0)], 0.05).is_none());
        // The same ratio every pass: no spread, a certain difference.
        let t = paired_log_t(&[(2.0, 1.0), (4.0, 2.0), (6.0, 3.0)], 0.05).unwrap();
        assert_eq!((t.p, t.ratio, t.low, t.high), (0.0, 2.0, 2.0, 2.0));
        assert_eq!(paired_log_t(&[(1.0, 1.0); 3], 0.05).unwrap().p, 1.0);
    }

    #[test]
    fn holm_steps_down() {
        // The textbook example: 0.01, 0.04, 0.03, 0.005 → ×4, ×2, ×3, ×1 by rank.
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!(close(*a, e, 1e-12), "{adjusted:?}");
        }
        assert_eq!(holm(&[0.9, 0.3]), vec![0.9, 0.6]);
        assert_eq!(holm(&[0.6, 0.7]), vec![1.0, 1.0], "capped at 1");
        assert_eq!(holm(&[0.04, 0.01, 0.011]), vec![0.04, 0.03, 0.03], "made monotone");
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn sign_ranks_follow_the_binomial() {
        for (n, k) in [(4, None), (5, Some(1)), (7, Some(1)), (8, Some(2)), (20, Some(6))] {
            assert_eq!(sign_rank(n), k, "{n} pairs");
        }
        assert_eq!(sign_min_pairs(), 5);
        assert!((binomial_cdf(5, 0) - 1.0 / 32.0).abs() < 1e-12);
        assert!((binomial_cdf(10, 10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_sign_interval_is_order_statistics() {
        let i = sign_interval(&[1.3, 1.1, 1.2, 1.5, 1.4]).unwrap();
        assert_eq!((i.median, i.low, i.high), (1.3, 1.1, 1.5));
        assert!((i.confidence - 0.9375).abs() < 1e-12);
        let i = sign_interval(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        assert_eq!((i.median, i.low, i.high), (4.5, 2.0, 7.0));
        assert!(sign_interval(&[1.0, 1.0, 1.0, 1.0]).is_none());
        assert!(sign_interval(&[1.0, f64::NAN, 1.0, 1.0, 1.0]).is_none(), "a NaN is not a pair");
    }
}
