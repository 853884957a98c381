//! Rate-limited logging to stderr, for errors that keep happening.
//!
//! A server that runs out of file descriptors fails every accept; logging
//! each failure would flood stderr and cost more than the failure itself.
//! [`RateLimited`] prints the first occurrence, then at most one line per
//! interval with the count of what it held back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimited {
    what: &'static str,
    interval: Duration,
    state: Mutex<State>,
}

struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub const fn new(what: &'static str, interval: Duration) -> RateLimited {
        RateLimited { what, interval, state: Mutex::new(State { last: None, suppressed: 0 }) }
    }

    /// Log `detail` unless a line was printed less than an interval ago.
    /// Returns whether it printed.
    pub fn log(&self, detail: impl std::fmt::Display) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if s.last.is_some_and(|t| now.duration_since(t) < self.interval) {
            s.suppressed += 1;
            return false;
        }
        if s.suppressed > 0 {
            eprintln!("{}: {detail} ({} more since the last line)", self.what, s.suppressed);
        } else {
            eprintln!("{}: {detail}", self.what);
        }
        s.last = Some(now);
        s.suppressed = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_repeats_within_the_interval() {
        let l = RateLimited::new("test", Duration::from_secs(3600));
        assert!(l.log("first"));
        assert!(!l.log("second"));
        assert!(!l.log("third"));
        assert_eq!(l.state.lock().unwrap().suppressed, 2);
    }
}
