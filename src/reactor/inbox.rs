//! The per-loop cross-thread inbox: two lock-free queues and the loop's waker.
//!
//! Urgent work (writes, closes and wake-ups addressed to a connection, and
//! newly accepted connections) goes on one lane; bulk tasks on the other. The
//! loop drains the urgent lane completely and then at most
//! [`BULK_BATCH`] bulk tasks per turn, so a flood of tasks never delays a
//! write or a registration by more than one batch.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;

use crate::stats::LoopCounters;
use crate::sys::Waker;

/// Bulk tasks run per loop turn before I/O is polled again.
pub(crate) const BULK_BATCH: usize = 256;

/// The sending side, shared by every thread that talks to one loop.
pub(crate) struct InboxSender<M> {
    urgent: Sender<M>,
    bulk: Sender<M>,
    waker: Arc<Waker>,
    /// Where the inbox depth is counted, if it is reported.
    counters: Option<Arc<LoopCounters>>,
}

/// The loop's side.
pub(crate) struct InboxReceiver<M> {
    urgent: Receiver<M>,
    bulk: Receiver<M>,
    counters: Option<Arc<LoopCounters>>,
}

/// Which lane a message travels on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lane {
    Urgent,
    Bulk,
}

/// The inbox of the loop woken by `waker`, counting its depth in
/// `counters` if given.
pub(crate) fn inbox<M>(
    waker: Arc<Waker>,
    counters: Option<Arc<LoopCounters>>,
) -> (InboxSender<M>, InboxReceiver<M>) {
    let (urgent_tx, urgent_rx) = mpsc::channel();
    let (bulk_tx, bulk_rx) = mpsc::channel();
    (
        InboxSender {
            urgent: urgent_tx,
            bulk: bulk_tx,
            waker,
            counters: counters.clone(),
        },
        InboxReceiver {
            urgent: urgent_rx,
            bulk: bulk_rx,
            counters,
        },
    )
}

impl<M> InboxSender<M> {
    /// Queues `msg` and wakes the loop. Fails (returning the message) once the
    /// loop has exited.
    pub(crate) fn send(&self, lane: Lane, msg: M) -> Result<(), M> {
        let queue = match lane {
            Lane::Urgent => &self.urgent,
            Lane::Bulk => &self.bulk,
        };
        // Counted before it can be taken, so the depth never looks negative.
        if let Some(counters) = &self.counters {
            counters.enqueuing();
        }
        if let Err(e) = queue.send(msg) {
            if let Some(counters) = &self.counters {
                counters.not_enqueued();
            }
            return Err(e.0);
        }
        if let Err(e) = self.waker.wake() {
            // The message is queued; the loop will see it on its next turn.
            log::error!("netloom: waking event loop failed: {e}");
        }
        Ok(())
    }

    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }
}

impl<M> InboxReceiver<M> {
    /// Delivers queued messages to `f`: all urgent ones, then up to
    /// [`BULK_BATCH`] bulk ones. Returns true if bulk messages remain.
    pub(crate) fn drain(&self, mut f: impl FnMut(M)) -> bool {
        let Some(counters) = &self.counters else {
            return self.drain_uncounted(f);
        };
        let mut taken = 0;
        let more = self.drain_uncounted(|m| {
            taken += 1;
            f(m)
        });
        counters.dequeued(taken);
        more
    }

    fn drain_uncounted(&self, mut f: impl FnMut(M)) -> bool {
        while let Ok(m) = self.urgent.try_recv() {
            f(m);
        }
        for _ in 0..BULK_BATCH {
            match self.bulk.try_recv() {
                Ok(m) => f(m),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
            }
            // A write queued while bulk work runs still goes out this turn.
            while let Ok(m) = self.urgent.try_recv() {
                f(m);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_messages_overtake_a_bulk_flood() {
        let waker = Arc::new(Waker::new().unwrap());
        let counters = Arc::new(LoopCounters::default());
        let (tx, rx) = inbox::<(Lane, u32)>(waker, Some(counters.clone()));
        for i in 0..1000 {
            tx.send(Lane::Bulk, (Lane::Bulk, i)).unwrap();
        }
        tx.send(Lane::Urgent, (Lane::Urgent, 0)).unwrap();
        let mut seen = Vec::new();
        let more = rx.drain(|m| seen.push(m));
        assert!(more, "bulk work is bounded per turn");
        assert_eq!(
            counters.snapshot(&Default::default()).inbox_depth,
            1001 - seen.len() as u64
        );
        assert_eq!(seen[0], (Lane::Urgent, 0));
        assert_eq!(seen.len(), 1 + BULK_BATCH);
        let bulk: Vec<u32> = seen[1..].iter().map(|m| m.1).collect();
        assert_eq!(
            bulk,
            (0..BULK_BATCH as u32).collect::<Vec<_>>(),
            "order kept per lane"
        );
    }
}
