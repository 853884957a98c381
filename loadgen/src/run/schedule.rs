//! When things happen: the run's phases, and the open loop's intended send
//! times.
//!
//! Open loop (as wrk2): `--rate R` requests per second in total over N
//! connections gives each connection its own schedule, one request every
//! N/R seconds, and the connections are evenly phased, so the whole run
//! sends one request every 1/R seconds: connection i sends its request k at
//! `start + (i + k*N) / R`. A connection keeps one request in flight; if an
//! answer comes late, the next request goes out at once but its latency still
//! counts from its intended time. That is the coordinated-omission
//! correction: a server stall is charged to every request it delayed, not
//! only to the one request that was in flight.

use std::time::{Duration, Instant};

/// The phases of a run, all measured from `start` (when the load begins,
/// after every connection is open).
///
/// Per-second figures are kept in one-second buckets aligned on the start of
/// the window, so that no bucket mixes warm-up and window: bucket k covers
/// `[origin + k s, origin + (k+1) s)` clipped to `[start, window_end)`, with
/// `origin` = `warmup_end` minus the warm-up rounded up to whole seconds.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    pub start: Instant,
    pub warmup_end: Instant,
    pub window_end: Instant,
    /// After the window, answers to requests sent within it are still
    /// awaited until here; then the run ends whatever is outstanding.
    pub run_end: Instant,
    origin: Instant,
    warmup_buckets: usize,
}

impl Timeline {
    pub fn new(start: Instant, warmup: Duration, duration: Duration, drain: Duration) -> Timeline {
        let warmup_end = start + warmup;
        let window_end = warmup_end + duration;
        let warmup_buckets = ceil_secs(warmup);
        let origin = warmup_end - Duration::from_secs(warmup_buckets as u64);
        Timeline { start, warmup_end, window_end, run_end: window_end + drain, origin, warmup_buckets }
    }

    /// Whether a request sent (or, in the open loop, intended) at `t`
    /// belongs to the measured window.
    pub fn in_window(&self, t: Instant) -> bool {
        t >= self.warmup_end && t < self.window_end
    }

    /// What the run is doing at `now`: "warm-up", "window" or "drain".
    pub fn phase(&self, now: Instant) -> &'static str {
        if now < self.warmup_end {
            "warm-up"
        } else if now < self.window_end {
            "window"
        } else {
            "drain"
        }
    }

    /// The one-second bucket that `t` falls in.
    pub fn bucket(&self, t: Instant) -> usize {
        t.saturating_duration_since(self.origin).as_secs() as usize
    }

    /// Number of buckets over warm-up and window.
    pub fn buckets(&self) -> usize {
        self.warmup_buckets + ceil_secs(self.window_end - self.warmup_end)
    }

    /// Whether bucket `k` is part of the window (else of the warm-up).
    pub fn bucket_in_window(&self, k: usize) -> bool {
        k >= self.warmup_buckets
    }

    /// Where bucket `k` begins and ends, clipped to `[start, window_end]`.
    pub fn bucket_span(&self, k: usize) -> (Instant, Instant) {
        let from = (self.origin + Duration::from_secs(k as u64)).max(self.start);
        let to = (self.origin + Duration::from_secs(k as u64 + 1)).min(self.window_end);
        (from, to.max(from))
    }
}

fn ceil_secs(d: Duration) -> usize {
    d.as_secs() as usize + usize::from(d.subsec_nanos() > 0)
}

/// The open loop's schedule over `connections` connections.
#[derive(Clone, Copy, Debug)]
pub struct OpenSchedule {
    pub start: Instant,
    pub rate: f64,
    pub connections: u64,
}

impl OpenSchedule {
    /// When connection `conn` (0-based over the whole run) should send its
    /// request number `k` (0-based).
    pub fn intended(&self, conn: u64, k: u64) -> Instant {
        let slot = conn as f64 + k as f64 * self.connections as f64;
        self.start + Duration::from_nanos((slot * 1e9 / self.rate) as u64)
    }

    /// The numbers `k` of connection `conn`'s requests intended within
    /// `[from, to)`: the requests the schedule owes that span. Every one of
    /// them must end up answered, timed out or counted as unsent.
    pub fn within(&self, conn: u64, from: Instant, to: Instant) -> std::ops::Range<u64> {
        self.first_at_or_after(conn, from)..self.first_at_or_after(conn, to)
    }

    /// The first `k` whose intended time is at or after `t`: an estimate
    /// from the rate, then corrected by [`OpenSchedule::intended`] itself,
    /// so that rounding never moves a request across the boundary.
    fn first_at_or_after(&self, conn: u64, t: Instant) -> u64 {
        let secs = t.saturating_duration_since(self.start).as_secs_f64();
        let estimate = ((secs * self.rate - conn as f64) / self.connections as f64).ceil().max(0.0) as u64;
        let mut k = estimate.saturating_sub(1);
        while self.intended(conn, k) < t {
            k += 1;
        }
        while k > 0 && self.intended(conn, k - 1) >= t {
            k -= 1;
        }
        k
    }

    /// Each connection's gap between two requests.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.connections as f64 / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_spreads_requests_evenly() {
        let start = Instant::now();
        let s = OpenSchedule { start, rate: 1000.0, connections: 4 };
        // Each connection every 4 ms; the connections are phased 1 ms apart.
        assert_eq!(s.interval(), Duration::from_millis(4));
        assert_eq!(s.intended(0, 0), start);
        assert_eq!(s.intended(1, 0) - start, Duration::from_millis(1));
        assert_eq!(s.intended(3, 0) - start, Duration::from_millis(3));
        assert_eq!(s.intended(0, 1) - start, Duration::from_millis(4));
        assert_eq!(s.intended(2, 10) - start, Duration::from_millis(42));
        // Taken together: one request every 1/R seconds, none twice.
        let mut all: Vec<Duration> = (0..4).flat_map(|c| (0..25).map(move |k| s.intended(c, k) - start)).collect();
        all.sort();
        for (n, t) in all.iter().enumerate() {
            assert_eq!(*t, Duration::from_millis(n as u64));
        }
    }

    #[test]
    fn within_counts_exactly_the_requests_of_a_span() {
        let start = Instant::now();
        for (rate, n) in [(1000.0, 100u64), (2000.0, 5000), (3.0, 7), (777.7, 13)] {
            let s = OpenSchedule { start, rate, connections: n };
            let (from, to) = (start + Duration::from_millis(1234), start + Duration::from_millis(4321));
            let mut total = 0;
            for conn in 0..n {
                let ks = s.within(conn, from, to);
                // Brute force: every k the schedule intends in [from, to).
                let brute: Vec<u64> = (0..ks.end + 3).filter(|&k| (from..to).contains(&s.intended(conn, k))).collect();
                assert_eq!(brute, ks.clone().collect::<Vec<_>>(), "rate {rate} conn {conn}");
                total += ks.end - ks.start;
            }
            // The whole schedule intends rate × span requests (±1 at the edges).
            let expect = rate * 3.087;
            assert!((total as f64 - expect).abs() <= 1.0, "rate {rate}: {total} vs {expect}");
        }
    }

    #[test]
    fn fractional_rates_do_not_drift() {
        let start = Instant::now();
        let s = OpenSchedule { start, rate: 3.0, connections: 1 };
        let t = s.intended(0, 3_000_000) - start;
        assert!((t.as_secs_f64() - 1_000_000.0).abs() < 1e-6, "{t:?}");
    }

    #[test]
    fn phases() {
        let start = Instant::now();
        let t = Timeline::new(start, Duration::from_secs(1), Duration::from_millis(1500), Duration::from_millis(200));
        assert!(!t.in_window(start));
        assert!(t.in_window(start + Duration::from_secs(1)));
        assert!(t.in_window(start + Duration::from_millis(2499)));
        assert!(!t.in_window(start + Duration::from_millis(2500)));
        assert_eq!(t.run_end - start, Duration::from_millis(2700));
        // Buckets align on the window's start: warm-up 1 s = bucket 0, then
        // 1 s and a half second of window.
        assert_eq!(t.buckets(), 3);
        assert_eq!(t.bucket(start + Duration::from_millis(999)), 0);
        assert_eq!(t.bucket(start + Duration::from_millis(1999)), 1);
        assert!(!t.bucket_in_window(0) && t.bucket_in_window(1));
        assert_eq!(t.bucket_span(2), (start + Duration::from_secs(2), start + Duration::from_millis(2500)));
        // A fractional warm-up gives a short first bucket, not a mixed one.
        let t = Timeline::new(start, Duration::from_millis(300), Duration::from_secs(2), Duration::ZERO);
        assert_eq!(t.buckets(), 3);
        assert_eq!(t.bucket_span(0), (start, start + Duration::from_millis(300)));
        assert_eq!(t.bucket(start + Duration::from_millis(299)), 0);
        assert_eq!(t.bucket(start + Duration::from_millis(300)), 1);
        assert!(t.bucket_in_window(1));
    }
}
