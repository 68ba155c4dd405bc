//! The error returned when a job cannot be handed to the pool.

use std::fmt;
use std::io;

/// Why a job was not accepted by a [`WorkerPool`](super::WorkerPool) or
/// [`SerialQueue`](super::SerialQueue).
///
/// Every variant gives the rejected job back, so the caller can run it
/// inline, retry later, or answer "busy" on its connection.
///
/// # Examples
///
/// ```
/// use netloom::pool::{PoolError, WorkerPool};
///
/// let pool = WorkerPool::builder().max_workers(1).build();
/// pool.shutdown();
/// match pool.try_submit(|| ()) {
///     Err(PoolError::Closed(job)) => job(), // run it ourselves instead
///     other => panic!("expected Closed, got {other:?}"),
/// }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PoolError<J> {
    /// Every worker is busy and the queue is at capacity.
    #[error("worker pool is full: all workers are busy and the queue is at capacity")]
    Full(J),
    /// No room became available before the timeout expired.
    #[error("timed out waiting for room in the worker pool")]
    Timeout(J),
    /// The pool has been shut down and accepts no more jobs.
    #[error("worker pool is shut down")]
    Closed(J),
    /// The job needed a new worker thread, none could be spawned, and no
    /// other worker is alive to run it.
    #[error("could not spawn a worker thread")]
    Spawn {
        /// The rejected job.
        job: J,
        /// The error from [`std::thread::Builder::spawn`].
        #[source]
        source: io::Error,
    },
}

impl<J> PoolError<J> {
    /// Returns the rejected job.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = WorkerPool::builder().build();
    /// pool.shutdown();
    /// let (tx, rx) = mpsc::channel();
    /// let job = pool.try_submit(move || tx.send(42).unwrap()).unwrap_err().into_job();
    /// job();
    /// assert_eq!(rx.recv().unwrap(), 42);
    /// ```
    pub fn into_job(self) -> J {
        match self {
            Self::Full(job) | Self::Timeout(job) | Self::Closed(job) | Self::Spawn { job, .. } => {
                job
            }
        }
    }
}

// Jobs are closures, which are not `Debug`; show the variant only.
impl<J> fmt::Debug for PoolError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Spawn { source, .. } => f
                .debug_struct("Spawn")
                .field("source", source)
                .finish_non_exhaustive(),
        }
    }
}
