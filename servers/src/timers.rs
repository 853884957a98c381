//! A timer heap for an event loop: things due at an instant, earliest first.
//!
//! An event loop cannot sleep for a DELAY, since it serves every other
//! connection meanwhile. So it pushes the answer here with its deadline,
//! passes [`Timers::timeout`] to `poll` (sleep at most until the earliest
//! deadline), and after each poll pops what is due. Both mio models keep
//! one heap per loop thread, so no lock is ever taken.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Items waiting for their deadline. Ties leave first-in first-out.
pub struct Timers<T> {
    heap: BinaryHeap<Reverse<Timer<T>>>,
    seq: u64,
}

struct Timer<T> {
    deadline: Instant,
    /// Orders ties, so that `T` need not be ordered.
    seq: u64,
    item: T,
}

impl<T> Timers<T> {
    pub fn new() -> Timers<T> {
        Timers { heap: BinaryHeap::new(), seq: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn push(&mut self, deadline: Instant, item: T) {
        self.seq += 1;
        self.heap.push(Reverse(Timer { deadline, seq: self.seq, item }));
    }

    /// The earliest item due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.heap.peek()?.0.deadline > now {
            return None;
        }
        self.heap.pop().map(|Reverse(t)| t.item)
    }

    /// How long `poll` may sleep: until the earliest deadline, or `None`.
    pub fn timeout(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse(t)| t.deadline.saturating_duration_since(Instant::now()))
    }
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers::new()
    }
}

impl<T> Ord for Timer<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}
impl<T> PartialOrd for Timer<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> PartialEq for Timer<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Timer<T> {}

/// The earlier of two optional poll timeouts.
pub fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    a.into_iter().chain(b).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_pop_in_deadline_order_then_fifo() {
        let mut t = Timers::new();
        let now = Instant::now();
        let ms = Duration::from_millis;
        t.push(now + ms(30), 1);
        t.push(now + ms(10), 2);
        t.push(now + ms(10), 3);
        t.push(now + ms(20), 4);
        assert!(t.pop_due(now).is_none(), "nothing is due yet");
        let due: Vec<_> = std::iter::from_fn(|| t.pop_due(now + ms(20))).collect();
        assert_eq!(due, [2, 3, 4]);
        assert_eq!(t.pop_due(now + ms(30)), Some(1));
        assert!(t.pop_due(now + ms(1000)).is_none());
        assert!(t.is_empty() && t.timeout().is_none());
    }

    #[test]
    fn earliest_ignores_missing_timeouts() {
        let s = Duration::from_secs;
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(s(2)), None), Some(s(2)));
        assert_eq!(earliest(None, Some(s(1))), Some(s(1)));
        assert_eq!(earliest(Some(s(2)), Some(s(1))), Some(s(1)));
    }
}
