//! A bounded, elastic thread pool for blocking work (netloom's counterpart
//! of gnet's `ants` goroutine pool).
//!
//! Event loops must never block; they hand blocking work (file I/O, DNS,
//! database calls) to a [`WorkerPool`] and carry on. Worker threads are
//! spawned lazily up to a maximum and expire when idle, the queue is
//! bounded so overload shows up as [`PoolError::Full`] instead of unbounded
//! memory, and a panicking job is contained and reported. When the replies
//! of one connection must keep request order, submit through that
//! connection's [`SerialQueue`].
//!
//! # Examples
//!
//! ```
//! use netloom::pool::{PoolError, WorkerPool};
//! use std::sync::mpsc;
//!
//! let pool = WorkerPool::builder().max_workers(4).queue_capacity(16).build();
//! let (reply, replies) = mpsc::channel();
//! match pool.try_submit(move || reply.send("looked up").unwrap()) {
//!     Ok(()) => assert_eq!(replies.recv().unwrap(), "looked up"),
//!     Err(PoolError::Full(_job)) => { /* overloaded: answer "busy" */ }
//!     Err(other) => panic!("{other}"),
//! }
//! pool.shutdown();
//! ```

mod builder;
mod error;
mod serial;
mod shared;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use builder::WorkerPoolBuilder;
pub use error::PoolError;
pub use serial::SerialQueue;

use shared::{Shared, Wait};

/// Handle to a pool of worker threads running blocking jobs.
///
/// `WorkerPool` is a cheap, cloneable handle (`Send + Sync`, one `Arc`
/// inside); clones — including every [`SerialQueue`] — refer to the same
/// pool. When the last handle is dropped the pool shuts down like
/// [`shutdown`](Self::shutdown): queued jobs still run, and the dropping
/// thread waits for them — unless it is one of the pool's own workers, in
/// which case it only closes the pool and the remaining workers finish on
/// their own.
///
/// Jobs run without any pool lock held; the pool's bookkeeping uses a
/// mutex and condition variables, no spinning.
///
/// # Examples
///
/// ```
/// use netloom::pool::WorkerPool;
/// use std::sync::mpsc;
///
/// let pool = WorkerPool::builder().max_workers(2).build();
/// let (tx, rx) = mpsc::channel();
/// for n in 0..4 {
///     let tx = tx.clone();
///     pool.submit(move || tx.send(n * n).unwrap()).unwrap();
/// }
/// let mut squares: Vec<i32> = rx.iter().take(4).collect();
/// squares.sort();
/// assert_eq!(squares, [0, 1, 4, 9]);
/// ```
#[derive(Clone)]
pub struct WorkerPool {
    handle: Arc<PoolHandle>,
}

/// Shuts the pool down when the last user handle goes away. Workers hold
/// `Shared` directly, so they do not keep the pool open.
struct PoolHandle {
    shared: Arc<Shared>,
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.shared.shutdown(None);
    }
}

impl WorkerPool {
    /// Starts configuring a pool; see [`WorkerPoolBuilder`] for defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().max_workers(2).build();
    /// # drop(pool);
    /// ```
    pub fn builder() -> WorkerPoolBuilder {
        WorkerPoolBuilder::new()
    }

    fn from_shared(shared: Arc<Shared>) -> Self {
        Self {
            handle: Arc::new(PoolHandle { shared }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Queues `job` if a worker or a queue slot is free, without waiting.
    ///
    /// # Errors
    ///
    /// [`PoolError::Full`] if all workers are busy and the queue is full,
    /// [`PoolError::Closed`] after shutdown, [`PoolError::Spawn`] if no
    /// worker could be started. The job is given back.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// pool.try_submit(|| println!("off the event loop")).unwrap();
    /// ```
    pub fn try_submit<F>(&self, job: F) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared().enqueue(job, None, Wait::Never)
    }

    /// Queues `job`, blocking until a worker or a queue slot is free.
    ///
    /// Do not call it from a job of the same pool when the pool may be full:
    /// the worker would wait for room that only workers can make.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the pool is or gets shut down while waiting,
    /// [`PoolError::Spawn`] if no worker could be started. The job is given
    /// back.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// pool.submit(|| println!("off the event loop")).unwrap();
    /// ```
    pub fn submit<F>(&self, job: F) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared().enqueue(job, None, Wait::Forever)
    }

    /// Queues `job`, waiting at most `timeout` for a worker or a queue slot.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if no room appeared in time,
    /// [`PoolError::Closed`] after shutdown, [`PoolError::Spawn`] if no
    /// worker could be started. The job is given back.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().build();
    /// pool.submit_timeout(|| (), Duration::from_millis(10)).unwrap();
    /// ```
    pub fn submit_timeout<F>(&self, job: F, timeout: Duration) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        let wait = Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until);
        self.shared().enqueue(job, None, wait)
    }

    /// Creates a [`SerialQueue`]: its jobs run one at a time, in submission
    /// order, on this pool's workers. Create one per connection (or per key).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// let connection = pool.serial();
    /// connection.submit(|| println!("reply 1")).unwrap();
    /// connection.submit(|| println!("reply 2")).unwrap();
    /// ```
    pub fn serial(&self) -> SerialQueue {
        SerialQueue::new(self.clone())
    }

    /// Number of jobs executing right now.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// assert_eq!(WorkerPool::builder().build().running(), 0);
    /// ```
    pub fn running(&self) -> usize {
        self.shared().running()
    }

    /// Number of accepted jobs (plain and serial) that have not started.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// assert_eq!(WorkerPool::builder().build().queued(), 0);
    /// ```
    pub fn queued(&self) -> usize {
        self.shared().queued()
    }

    /// Number of worker threads alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// // Workers are spawned lazily.
    /// assert_eq!(WorkerPool::builder().build().workers(), 0);
    /// ```
    pub fn workers(&self) -> usize {
        self.shared().workers()
    }

    /// Number of worker threads alive but not executing a job.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// assert!(pool.idle() <= pool.workers());
    /// ```
    pub fn idle(&self) -> usize {
        self.shared().idle()
    }

    /// Number of jobs that returned normally.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// pool.submit(|| ()).unwrap();
    /// pool.shutdown();
    /// assert_eq!(pool.completed(), 1);
    /// ```
    pub fn completed(&self) -> u64 {
        self.shared().completed()
    }

    /// Number of jobs that panicked (not included in
    /// [`completed`](Self::completed)).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// pool.submit(|| panic!("bad request")).unwrap();
    /// pool.shutdown();
    /// assert_eq!(pool.panicked(), 1);
    /// ```
    pub fn panicked(&self) -> u64 {
        self.shared().panicked()
    }

    /// Whether the pool has been shut down and rejects new jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// assert!(!pool.is_closed());
    /// pool.shutdown();
    /// assert!(pool.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared().is_closed()
    }

    /// Stops accepting jobs, lets every queued job run, and joins the
    /// worker threads. Idempotent.
    ///
    /// Called from one of this pool's own jobs, it only closes the pool and
    /// returns at once (a thread cannot join itself); the other workers
    /// still drain the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = WorkerPool::builder().max_workers(1).build();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..3 {
    ///     let done = Arc::clone(&done);
    ///     pool.submit(move || { done.fetch_add(1, Ordering::SeqCst); }).unwrap();
    /// }
    /// pool.shutdown();
    /// assert_eq!(done.load(Ordering::SeqCst), 3);
    /// assert_eq!(pool.workers(), 0);
    /// ```
    pub fn shutdown(&self) {
        self.shared().shutdown(None);
    }

    /// Like [`shutdown`](Self::shutdown) but waits at most `timeout`.
    /// Returns `true` if every worker exited in time; otherwise the pool
    /// stays closed and the workers finish in the background. Always
    /// `false` when called from one of this pool's own jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().build();
    /// pool.submit(|| ()).unwrap();
    /// assert!(pool.shutdown_timeout(Duration::from_secs(5)));
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> bool {
        self.shared().shutdown(Instant::now().checked_add(timeout))
    }
}

impl Default for WorkerPool {
    /// A pool with the [`WorkerPoolBuilder`] defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::default();
    /// pool.submit(|| ()).unwrap();
    /// ```
    fn default() -> Self {
        Self::builder().build()
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.workers())
            .field("idle", &self.idle())
            .field("running", &self.running())
            .field("queued", &self.queued())
            .field("completed", &self.completed())
            .field("panicked", &self.panicked())
            .field("closed", &self.is_closed())
            .finish()
    }
}
