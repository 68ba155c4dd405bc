//! What the loops of one engine share, and their threads: the stop flag
//! and the wakers that make every loop notice it, each loop's connection
//! count (read by the least-connections balancer and `Engine::conn_count`),
//! each loop's counters (`Engine::stats`), how many loops still run, and
//! the threads to join.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::stats::{LoopCounters, LoopStats};
use crate::sys::Waker;
use crate::{Error, Result};

pub(crate) struct LoopGroup {
    stopping: AtomicBool,
    /// No more accepting: the loops serve their connections until they are
    /// gone, then stop (`Engine::drain`).
    draining: AtomicBool,
    /// One per loop: wakes it to notice a stop.
    wakers: Vec<Arc<Waker>>,
    /// Connections each loop serves, counted from the moment one is
    /// assigned to it (still in its inbox included).
    pub(crate) loads: Vec<AtomicUsize>,
    /// One per loop, written by that loop.
    pub(crate) counters: Vec<Arc<LoopCounters>>,
    live_loops: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<Result<()>>>>,
}

impl LoopGroup {
    /// The group of the loops woken by `wakers` and counting in
    /// `counters`, one each.
    pub(crate) fn new(wakers: Vec<Arc<Waker>>, counters: Vec<Arc<LoopCounters>>) -> LoopGroup {
        let loops = wakers.len();
        LoopGroup {
            stopping: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            wakers,
            loads: (0..loops).map(|_| AtomicUsize::new(0)).collect(),
            counters,
            live_loops: AtomicUsize::new(loops),
            threads: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn loops(&self) -> usize {
        self.wakers.len()
    }

    /// Asks every loop to stop. True for the first call only.
    pub(crate) fn stop(&self) -> bool {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.wake_all("stop");
        true
    }

    /// Asks every loop to drain. True for the first call only.
    pub(crate) fn drain(&self) -> bool {
        if self.draining.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.wake_all("drain");
        true
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    fn wake_all(&self, why: &str) {
        for waker in &self.wakers {
            if let Err(e) = waker.wake() {
                log::error!("netloom: waking a loop to {why} failed: {e}");
            }
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// A loop exited; true for the last one.
    pub(crate) fn loop_exited(&self) -> bool {
        self.live_loops.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Connections per loop.
    pub(crate) fn conn_counts(&self) -> impl Iterator<Item = usize> + '_ {
        self.loads.iter().map(|l| l.load(Ordering::Relaxed))
    }

    /// Each loop's counters now.
    pub(crate) fn stats(&self) -> impl Iterator<Item = LoopStats> + '_ {
        let loads = self.loads.iter();
        self.counters
            .iter()
            .zip(loads)
            .map(|(c, load)| c.snapshot(load))
    }

    /// Runs `run(seed)` on a thread per seed, named `netloom-loop-<i>`. If
    /// a thread cannot be started, the loops already running are stopped
    /// and joined before the error is returned.
    pub(crate) fn spawn<S: Send + 'static>(
        &self,
        seeds: Vec<S>,
        run: impl Fn(S) -> Result<()> + Clone + Send + 'static,
    ) -> Result<()> {
        for (index, seed) in seeds.into_iter().enumerate() {
            let run = run.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("netloom-loop-{index}"))
                .spawn(move || run(seed));
            match spawned {
                Ok(thread) => self.lock_threads().push(thread),
                Err(e) => {
                    self.stop();
                    let _ = self.wait();
                    return Err(Error::Io(e));
                }
            }
        }
        Ok(())
    }

    /// Joins every loop thread; the first loop error, if any. Later calls
    /// return at once.
    pub(crate) fn wait(&self) -> Result<()> {
        let threads = std::mem::take(&mut *self.lock_threads());
        let mut first_error = None;
        for thread in threads {
            let outcome = thread.join().unwrap_or_else(|_| {
                Err(Error::Io(std::io::Error::other(
                    "an event loop thread panicked",
                )))
            });
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<Result<()>>>> {
        // Pushing and taking a vector cannot leave it inconsistent.
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
