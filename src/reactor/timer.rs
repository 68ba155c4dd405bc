//! The per-loop timer structure: a min-heap of deadlines.
//!
//! The ticker, idle timeouts, graceful-close limits, the acceptor's back-off
//! and (in the async front-end) deadlines all live here. Entries are never
//! removed early: each carries a key that the owner validates when it fires
//! (a connection's [`Token`](crate::Token) plus a sequence number), so
//! cancelling is O(1) and a stale entry simply does nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A min-heap of `(deadline, key)`.
pub(crate) struct TimerHeap<K> {
    heap: BinaryHeap<Reverse<Entry<K>>>,
    next_seq: u64,
}

struct Entry<K> {
    at: Instant,
    // Ties fire in scheduling order.
    seq: u64,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<K> Eq for Entry<K> {}
impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<K> TimerHeap<K> {
    pub(crate) fn new() -> TimerHeap<K> {
        TimerHeap {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn schedule(&mut self, at: Instant, key: K) {
        self.next_seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.next_seq,
            key,
        }));
    }

    /// Time until the earliest deadline (zero if already due), `None` if empty.
    pub(crate) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse(e)| e.at.saturating_duration_since(now))
    }

    /// Removes and returns one entry due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        if self.heap.peek()?.0.at <= now {
            self.heap.pop().map(|Reverse(e)| e.key)
        } else {
            None
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_then_schedule_order() {
        let now = Instant::now();
        let mut timers = TimerHeap::new();
        timers.schedule(now + Duration::from_millis(30), "c");
        timers.schedule(now + Duration::from_millis(10), "a");
        timers.schedule(now + Duration::from_millis(10), "b");
        timers.schedule(now + Duration::from_millis(50), "later");
        assert_eq!(timers.next_timeout(now), Some(Duration::from_millis(10)));
        assert_eq!(timers.pop_due(now), None);
        let due = now + Duration::from_millis(30);
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(due)).collect();
        assert_eq!(fired, vec!["a", "b", "c"]);
        assert_eq!(timers.len(), 1);
        assert_eq!(
            timers.next_timeout(now + Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
    }
}
