//! Per-connection sequencing on top of the shared workers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::error::PoolError;
use super::shared::{Job, Shared, Wait};
use super::WorkerPool;
use crate::unwind::lock;

/// Jobs of one serial queue and who is running them.
///
/// Every job has exactly one ticket in the pool queue. A worker taking a
/// ticket runs the strand's oldest job, unless another worker is already
/// running this strand: then it leaves the job to that worker (`owed`) and
/// goes back to the queue instead of blocking.
#[derive(Default)]
pub(super) struct Strand {
    state: Mutex<StrandState>,
}

#[derive(Default)]
struct StrandState {
    jobs: VecDeque<Job>,
    running: bool,
    /// Tickets taken by other workers while this strand was running.
    owed: usize,
}

impl Strand {
    // Jobs run outside this lock, so poisoning cannot leave it inconsistent.
    fn lock(&self) -> MutexGuard<'_, StrandState> {
        lock(&self.state)
    }

    pub(super) fn push(&self, job: Job) {
        self.lock().jobs.push_back(job);
    }

    /// Handles one ticket of this strand on the calling worker.
    pub(super) fn run(&self, shared: &Shared) {
        let mut state = self.lock();
        if state.running {
            state.owed += 1;
            return;
        }
        state.running = true;
        loop {
            let job = state
                .jobs
                .pop_front()
                .expect("a strand holds one job per ticket handed out");
            drop(state);
            shared.run_serial_job(job);
            state = self.lock();
            if state.owed == 0 {
                state.running = false;
                return;
            }
            state.owed -= 1;
        }
    }
}

/// A sequencer over a [`WorkerPool`]: jobs submitted through one
/// `SerialQueue` run one at a time, in submission order, on the pool's
/// workers — the strand you give each connection so that its replies leave
/// in request order.
///
/// No worker ever blocks waiting for another job of the queue; a queue
/// occupies at most one worker at a time, the others keep serving other
/// queues. Each submitted job takes one slot of the pool's queue capacity
/// until it starts, so serial and plain submissions share the same
/// backpressure. Clones share the same sequence; a `SerialQueue` is also a
/// pool handle and keeps the pool alive.
///
/// # Examples
///
/// ```
/// use netloom::pool::WorkerPool;
/// use std::sync::{mpsc, Arc, Mutex};
///
/// let pool = WorkerPool::builder().max_workers(4).build();
/// let connection = pool.serial();
/// let replies = Arc::new(Mutex::new(Vec::new()));
/// let (done, finished) = mpsc::channel();
/// for request in 0..10 {
///     let replies = Arc::clone(&replies);
///     let done = done.clone();
///     connection
///         .submit(move || {
///             replies.lock().unwrap().push(request);
///             done.send(()).unwrap();
///         })
///         .unwrap();
/// }
/// for _ in 0..10 {
///     finished.recv().unwrap();
/// }
/// assert_eq!(*replies.lock().unwrap(), (0..10).collect::<Vec<_>>());
/// ```
#[derive(Clone)]
pub struct SerialQueue {
    pool: WorkerPool,
    strand: Arc<Strand>,
}

impl SerialQueue {
    pub(super) fn new(pool: WorkerPool) -> Self {
        Self {
            pool,
            strand: Arc::default(),
        }
    }

    fn enqueue<F>(&self, job: F, wait: Wait) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared().enqueue(job, Some(&self.strand), wait)
    }

    fn shared(&self) -> &Arc<Shared> {
        self.pool.shared()
    }

    /// Queues `job` behind this queue's earlier jobs without waiting.
    ///
    /// # Errors
    ///
    /// [`PoolError::Full`] if the pool has no room,
    /// [`PoolError::Closed`] after shutdown, [`PoolError::Spawn`] if no
    /// worker could be started. The job is given back.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// let connection = pool.serial();
    /// connection.try_submit(|| println!("first reply")).unwrap();
    /// connection.try_submit(|| println!("second reply")).unwrap();
    /// ```
    pub fn try_submit<F>(&self, job: F) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(job, Wait::Never)
    }

    /// Queues `job` behind this queue's earlier jobs, blocking until the
    /// pool has room.
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
    /// pool.serial().submit(|| println!("reply")).unwrap();
    /// ```
    pub fn submit<F>(&self, job: F) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(job, Wait::Forever)
    }

    /// Queues `job` behind this queue's earlier jobs, waiting at most
    /// `timeout` for the pool to have room.
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
    /// pool.serial()
    ///     .submit_timeout(|| println!("reply"), Duration::from_millis(10))
    ///     .unwrap();
    /// ```
    pub fn submit_timeout<F>(&self, job: F, timeout: Duration) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        let wait = Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until);
        self.enqueue(job, wait)
    }

    /// Number of jobs submitted through this queue that have not started.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// assert_eq!(pool.serial().pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.strand.lock().jobs.len()
    }

    /// The pool this queue runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().build();
    /// let connection = pool.serial();
    /// assert!(!connection.pool().is_closed());
    /// ```
    pub fn pool(&self) -> &WorkerPool {
        &self.pool
    }
}

impl fmt::Debug for SerialQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialQueue")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}
