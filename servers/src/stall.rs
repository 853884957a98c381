//! The two time limits against hostile clients, for the event-driven
//! models: a frame whose bytes stop arriving (`--partial-frame-timeout-ms`,
//! a slowloris) and answers that cannot be written (`--write-timeout-ms`,
//! a client that sends but never reads). The blocking models leave both
//! to the kernel (SO_RCVTIMEO, SO_SNDTIMEO); libevent to its bufferevent
//! timeouts.
//!
//! An event loop does not arm a timer per read and per write for this:
//! that would cost the benchmarks a timer operation per request for a
//! limit they never reach. Instead each connection keeps a [`Watch`] per
//! direction, which a read or write that moves bytes marks with one store,
//! and the loop looks at every connection's watches once per
//! [`Timeouts::period`] (half the shorter limit: one wake-up every 15 s by
//! default). A direction that is waiting (a frame has started, or answers
//! are unsent) and made no progress for enough periods in a row to cover
//! its limit, and one more (the first may have begun just before the wait
//! did), has stalled: its connection is closed and counted in STATS. So a
//! stall is caught between its limit and its limit plus two periods, and
//! never before its limit.

use std::time::Duration;

use crate::CommonOptions;

/// Both limits, and how often a loop checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub partial_frame: Duration,
    pub write: Duration,
}

impl Default for Timeouts {
    /// The flags' defaults, from the limits table.
    fn default() -> Timeouts {
        Timeouts { partial_frame: crate::limits::PARTIAL_FRAME_TIMEOUT, write: crate::limits::WRITE_TIMEOUT }
    }
}

impl Timeouts {
    pub fn of(common: &CommonOptions) -> Timeouts {
        Timeouts { partial_frame: common.partial_frame_timeout(), write: common.write_timeout() }
    }

    /// How often a loop looks at its connections' watches.
    pub fn period(self) -> Duration {
        (self.partial_frame.min(self.write) / 2).max(Duration::from_millis(1))
    }

    /// Periods without progress that make a partial frame stalled.
    pub fn partial_frame_periods(self) -> u32 {
        periods(self.partial_frame, self.period())
    }

    /// Periods without progress that make a write stalled.
    pub fn write_periods(self) -> u32 {
        periods(self.write, self.period())
    }
}

/// Whole periods that cover `limit`: a direction idle for that many
/// checks in a row has waited at least `limit`.
fn periods(limit: Duration, period: Duration) -> u32 {
    limit.as_nanos().div_ceil(period.as_nanos()).max(1) as u32
}

/// One direction of one connection: has it moved bytes since the last
/// check, and for how many checks in a row has it waited without.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    progressed: bool,
    stale: u32,
}

impl Watch {
    /// Bytes moved in this direction.
    pub fn progress(&mut self) {
        self.progressed = true;
    }

    /// A periodic check: `waiting` says whether this direction waits for
    /// bytes now (a frame started; answers unsent). True once it has
    /// waited without progress for more than `periods` checks in a row,
    /// so for at least `periods` whole periods.
    pub fn stalled(&mut self, waiting: bool, periods: u32) -> bool {
        let progressed = std::mem::take(&mut self.progressed);
        if !waiting || progressed {
            self.stale = 0;
            return false;
        }
        self.stale += 1;
        self.stale > periods
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_fires_only_after_enough_idle_checks_while_waiting() {
        let mut w = Watch::default();
        w.progress();
        assert!(!w.stalled(true, 2), "progress since the last check");
        assert!(!w.stalled(true, 2), "one idle check is not enough");
        assert!(!w.stalled(true, 2), "the first idle period may have begun before the wait");
        assert!(w.stalled(true, 2), "two whole idle periods cover the limit");
        let mut idle = Watch::default();
        assert!((0..10).all(|_| !idle.stalled(false, 2)), "not waiting: never stalled");
        let mut slow = Watch::default();
        assert!((0..10).all(|_| {
            slow.progress();
            !slow.stalled(true, 2)
        }));
    }

    #[test]
    fn the_periods_cover_each_limit() {
        let ms = Duration::from_millis;
        let t = Timeouts { partial_frame: ms(30_000), write: ms(1000) };
        assert_eq!(t.period(), ms(500));
        assert_eq!((t.partial_frame_periods(), t.write_periods()), (60, 2));
    }
}
