//! The rule every waker follows: only the first of many wake-ups makes the
//! syscall (Go's `netpollWakeSig`), whatever the kernel object behind it.

use std::sync::atomic::{AtomicBool, Ordering};

/// A flag that lets one `wake` through until the loop resets it.
#[derive(Debug, Default)]
pub(crate) struct WakeGate {
    pending: AtomicBool,
}

impl WakeGate {
    /// True for the one caller that must make the wake-up syscall; false
    /// while a wake-up is already pending.
    pub(crate) fn claim(&self) -> bool {
        // SeqCst pairs with `reset`: a producer that finds the flag set knows
        // the loop has not yet cleared it, so the loop will look at the inbox
        // after this producer's push.
        self.pending
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Called by the loop once it has consumed the wake-up, before it drains
    /// its inbox, and by a `wake` whose syscall failed: the next `wake` makes
    /// a syscall again.
    pub(crate) fn reset(&self) {
        self.pending.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_reset_across_threads() {
        let gate = WakeGate::default();
        let claims: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..1000).filter(|_| gate.claim()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(claims, 1);
        gate.reset();
        assert!(gate.claim());
        assert!(!gate.claim());
    }

    #[test]
    fn a_failed_wake_is_retried() {
        let gate = WakeGate::default();
        assert!(gate.claim());
        gate.reset();
        assert!(gate.claim(), "the claim of a failed syscall is given back");
    }
}
