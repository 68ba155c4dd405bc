//! Configuration of a [`WorkerPool`].

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::shared::{Config, PanicHandler, Shared};
use super::WorkerPool;

/// Workers per available core by default: pool jobs are expected to block
/// (disk, DNS, databases), so more threads than cores pay off.
const WORKERS_PER_CORE: usize = 4;
const DEFAULT_QUEUE_CAPACITY: usize = 1024;
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_NAME: &str = "netloom-worker";

/// Builds a [`WorkerPool`]; obtained from [`WorkerPool::builder`].
///
/// Defaults: `max_workers` = 4 × [`available_parallelism`](thread::available_parallelism)
/// (4 if unknown), `min_workers` = 0, `queue_capacity` = 1024,
/// `idle_timeout` = 10 s, `name` = `"netloom-worker"`, no panic handler
/// (panics are still logged).
///
/// # Examples
///
/// ```
/// use netloom::pool::WorkerPool;
/// use std::time::Duration;
///
/// let pool = WorkerPool::builder()
///     .max_workers(8)
///     .queue_capacity(256)
///     .idle_timeout(Duration::from_secs(30))
///     .name("netloom-worker")
///     .panic_handler(|message| eprintln!("job panicked: {message}"))
///     .build();
/// pool.submit(|| ()).unwrap();
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkerPoolBuilder {
    max_workers: usize,
    min_workers: usize,
    queue_capacity: usize,
    idle_timeout: Duration,
    name: String,
    panic_handler: Option<PanicHandler>,
}

impl WorkerPoolBuilder {
    pub(super) fn new() -> Self {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        Self {
            max_workers: cores * WORKERS_PER_CORE,
            min_workers: 0,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            name: DEFAULT_NAME.to_owned(),
            panic_handler: None,
        }
    }

    /// Upper bound on worker threads; 0 is treated as 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().max_workers(2).build();
    /// # drop(pool);
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = max_workers.max(1);
        self
    }

    /// Workers kept alive when idle instead of expiring (capped at
    /// `max_workers`). They are still spawned lazily, on demand.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().min_workers(1).build();
    /// # drop(pool);
    /// ```
    pub fn min_workers(mut self, min_workers: usize) -> Self {
        self.min_workers = min_workers;
        self
    }

    /// How many jobs may wait beyond those that idle or not-yet-spawned
    /// workers can start at once. 0 means pure hand-off: a job is accepted
    /// only if a worker can take it.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().queue_capacity(64).build();
    /// # drop(pool);
    /// ```
    pub fn queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity;
        self
    }

    /// How long a worker above `min_workers` stays idle before its thread
    /// exits.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().idle_timeout(Duration::from_secs(1)).build();
    /// # drop(pool);
    /// ```
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Prefix of worker thread names; workers are named `{name}-{n}`.
    /// It must not contain NUL bytes (spawning would panic).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().name("resolver").build();
    /// # drop(pool);
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Called on the worker thread with the message of every panicking job,
    /// after the panic has been counted and logged. A panic inside the
    /// handler is caught and logged too.
    ///
    /// The process-wide panic hook still runs first (by default it prints to
    /// stderr); install your own hook to silence it.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder()
    ///     .panic_handler(|message| eprintln!("worker job failed: {message}"))
    ///     .build();
    /// # drop(pool);
    /// ```
    pub fn panic_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(String) + Send + Sync + 'static,
    {
        self.panic_handler = Some(Box::new(handler));
        self
    }

    /// Creates the pool. No thread is started until the first job arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// assert_eq!(pool.workers(), 0);
    /// ```
    pub fn build(self) -> WorkerPool {
        let config = Config {
            min_workers: self.min_workers.min(self.max_workers),
            max_workers: self.max_workers,
            queue_capacity: self.queue_capacity,
            idle_timeout: self.idle_timeout,
            name: self.name,
            panic_handler: self.panic_handler,
        };
        WorkerPool::from_shared(Arc::new(Shared::new(config)))
    }
}

impl fmt::Debug for WorkerPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("min_workers", &self.min_workers)
            .field("queue_capacity", &self.queue_capacity)
            .field("idle_timeout", &self.idle_timeout)
            .field("name", &self.name)
            .field("panic_handler", &self.panic_handler.is_some())
            .finish()
    }
}
