//! How large a backend's event array is: doubled after a wait that filled it
//! (a burst of readiness costs one wait, not many), halved after a long run
//! of waits that used little of it (an idle loop holds little memory).

/// Smallest and largest sizes of the array.
pub(crate) const MIN_EVENTS: usize = 128;
pub(crate) const MAX_EVENTS: usize = 8192;
/// Consecutive waits using under a quarter of the array before it halves.
pub(crate) const SHRINK_AFTER: u32 = 256;

/// The resizing policy's memory: how many waits in a row used little.
#[derive(Debug, Default)]
pub(crate) struct EventCapacity {
    idle_waits: u32,
}

impl EventCapacity {
    /// After a wait that returned `filled` events into an array of
    /// `capacity`: the new capacity, if it should change.
    pub(crate) fn after_wait(&mut self, filled: usize, capacity: usize) -> Option<usize> {
        if filled == capacity && capacity < MAX_EVENTS {
            self.idle_waits = 0;
            return Some((capacity * 2).min(MAX_EVENTS));
        }
        if filled < capacity / 4 && capacity > MIN_EVENTS {
            self.idle_waits += 1;
            if self.idle_waits >= SHRINK_AFTER {
                self.idle_waits = 0;
                return Some((capacity / 2).max(MIN_EVENTS));
            }
        } else {
            self.idle_waits = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_when_full_up_to_the_maximum() {
        let mut policy = EventCapacity::default();
        assert_eq!(
            policy.after_wait(MIN_EVENTS, MIN_EVENTS),
            Some(MIN_EVENTS * 2)
        );
        assert_eq!(
            policy.after_wait(MAX_EVENTS / 2, MAX_EVENTS / 2),
            Some(MAX_EVENTS)
        );
        assert_eq!(policy.after_wait(MAX_EVENTS, MAX_EVENTS), None);
        assert_eq!(policy.after_wait(MIN_EVENTS - 1, MIN_EVENTS), None);
    }

    #[test]
    fn shrinks_only_after_a_long_quiet_run() {
        let mut policy = EventCapacity::default();
        let cap = MIN_EVENTS * 4;
        for _ in 1..SHRINK_AFTER {
            assert_eq!(policy.after_wait(1, cap), None);
        }
        // A busier wait restarts the count.
        assert_eq!(policy.after_wait(cap / 2, cap), None);
        for _ in 1..SHRINK_AFTER {
            assert_eq!(policy.after_wait(0, cap), None);
        }
        assert_eq!(policy.after_wait(0, cap), Some(cap / 2));
        for _ in 0..SHRINK_AFTER * 2 {
            assert_eq!(
                policy.after_wait(0, MIN_EVENTS),
                None,
                "never below the minimum"
            );
        }
    }
}
