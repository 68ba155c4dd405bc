//! State shared by pool handles and worker threads, and the worker loop.
//!
//! One mutex guards every count that admission and spawning decisions read,
//! so those decisions see a consistent picture; jobs never run under it.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::error::PoolError;
use super::serial::Strand;
use crate::unwind::{self, lock, panic_message};

/// A type-erased job as stored in the queues.
pub(super) type Job = Box<dyn FnOnce() + Send + 'static>;

/// User callback receiving the message of a panicking job.
pub(super) type PanicHandler = Box<dyn Fn(String) + Send + Sync + 'static>;

/// Settings fixed at build time.
pub(super) struct Config {
    pub(super) max_workers: usize,
    pub(super) min_workers: usize,
    pub(super) queue_capacity: usize,
    pub(super) idle_timeout: Duration,
    pub(super) name: String,
    pub(super) panic_handler: Option<PanicHandler>,
}

/// An entry of the pool queue.
enum Task {
    Job(Job),
    /// A ticket to run the next job of a serial queue; the job itself waits
    /// in the strand so that submission order is kept whichever worker
    /// picks up which ticket.
    Serial(Arc<Strand>),
}

/// How long a submitter is willing to wait for room.
pub(super) enum Wait {
    Never,
    Forever,
    Until(Instant),
}

#[derive(Default)]
struct State {
    tasks: VecDeque<Task>,
    /// Jobs accepted but not started: `tasks` plus serial jobs whose ticket
    /// was already absorbed by the worker running their strand.
    waiting: usize,
    workers: usize,
    /// Workers not executing anything, including freshly spawned ones that
    /// have not reached the queue yet (they are about to take a task, so
    /// admission must count them as available).
    idle: usize,
    running: usize,
    closed: bool,
    spawned_total: u64,
    threads: Vec<JoinHandle<()>>,
}

impl State {
    /// A job may enter if some worker (idle or still spawnable) can start it
    /// or a queue slot is free.
    fn has_room(&self, config: &Config) -> bool {
        let available_workers = self.idle + (config.max_workers - self.workers);
        self.waiting < available_workers + config.queue_capacity
    }

    /// Whether one more task would find no idle worker while a new one may
    /// still be spawned.
    fn needs_worker_for_next_task(&self, config: &Config) -> bool {
        self.tasks.len() >= self.idle && self.workers < config.max_workers
    }

    /// Joins threads that already exited, so expired workers do not pile up.
    fn reap_exited_threads(&mut self) {
        let (exited, alive): (Vec<_>, Vec<_>) = std::mem::take(&mut self.threads)
            .into_iter()
            .partition(JoinHandle::is_finished);
        self.threads = alive;
        for thread in exited {
            if thread.join().is_err() {
                log::error!("worker pool thread panicked outside of a job");
            }
        }
    }
}

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Id of the pool whose worker this thread is, so a pool never waits
    /// for (or joins) the thread it is running on.
    static WORKER_OF_POOL: Cell<Option<u64>> = const { Cell::new(None) };
}

pub(super) struct Shared {
    id: u64,
    config: Config,
    state: Mutex<State>,
    /// Signalled when a task is queued or the pool closes.
    task_ready: Condvar,
    /// Signalled when admission room may have grown or the pool closes.
    room: Condvar,
    /// Signalled when the last worker exits.
    workers_gone: Condvar,
    // Atomics rather than `state` fields so that they are updated before the
    // panic handler runs, without another lock round trip.
    completed: AtomicU64,
    panicked: AtomicU64,
}

impl Shared {
    pub(super) fn new(config: Config) -> Self {
        Self {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            config,
            state: Mutex::default(),
            task_ready: Condvar::new(),
            room: Condvar::new(),
            workers_gone: Condvar::new(),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
        }
    }

    // Jobs run outside the lock and panics are caught, so a poisoned mutex
    // can only come from a bug in this module; the counts are still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(super) fn running(&self) -> usize {
        self.lock().running
    }

    pub(super) fn queued(&self) -> usize {
        self.lock().waiting
    }

    pub(super) fn workers(&self) -> usize {
        self.lock().workers
    }

    pub(super) fn idle(&self) -> usize {
        self.lock().idle
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(super) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    pub(super) fn panicked(&self) -> u64 {
        self.panicked.load(Ordering::Relaxed)
    }

    /// Admits `job` (into `strand` when given), spawning a worker if needed.
    pub(super) fn enqueue<F>(
        self: &Arc<Self>,
        job: F,
        strand: Option<&Arc<Strand>>,
        wait: Wait,
    ) -> Result<(), PoolError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(PoolError::Closed(job));
            }
            if state.has_room(&self.config) {
                break;
            }
            state = match wait {
                Wait::Never => return Err(PoolError::Full(job)),
                Wait::Forever => unwind::wait(&self.room, state),
                Wait::Until(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(PoolError::Timeout(job));
                    }
                    unwind::wait_timeout(&self.room, state, deadline - now)
                }
            };
        }
        // Spawn before queueing: on failure the job is still ours to return.
        if state.needs_worker_for_next_task(&self.config) {
            if let Err(source) = self.spawn_worker(&mut state) {
                if state.workers == 0 {
                    return Err(PoolError::Spawn { job, source });
                }
                log::warn!("worker pool could not grow, queueing on existing workers: {source}");
            }
        }
        let job: Job = Box::new(job);
        let task = match strand {
            None => Task::Job(job),
            Some(strand) => {
                // Under the pool lock, so strand order matches ticket order.
                strand.push(job);
                Task::Serial(Arc::clone(strand))
            }
        };
        state.tasks.push_back(task);
        state.waiting += 1;
        drop(state);
        self.task_ready.notify_one();
        Ok(())
    }

    fn spawn_worker(self: &Arc<Self>, state: &mut State) -> io::Result<()> {
        state.reap_exited_threads();
        let shared = Arc::clone(self);
        let thread = thread::Builder::new()
            .name(format!("{}-{}", self.config.name, state.spawned_total))
            .spawn(move || shared.work())?;
        state.spawned_total += 1;
        state.workers += 1;
        state.idle += 1;
        state.threads.push(thread);
        Ok(())
    }

    fn work(self: Arc<Self>) {
        WORKER_OF_POOL.with(|pool| pool.set(Some(self.id)));
        let mut state = self.lock();
        let mut idle_since = Instant::now();
        loop {
            if let Some(task) = state.tasks.pop_front() {
                state.idle -= 1;
                state = match task {
                    Task::Job(job) => {
                        state.waiting -= 1;
                        state.running += 1;
                        drop(state);
                        self.execute(job);
                        let mut state = self.lock();
                        state.running -= 1;
                        state
                    }
                    Task::Serial(strand) => {
                        drop(state);
                        strand.run(&self);
                        self.lock()
                    }
                };
                state.idle += 1;
                self.room.notify_one();
                idle_since = Instant::now();
                continue;
            }
            if state.closed {
                break;
            }
            if state.workers <= self.config.min_workers {
                // Retained workers never expire, so they need no timer.
                state = unwind::wait(&self.task_ready, state);
            } else {
                let expiry = idle_since + self.config.idle_timeout;
                let now = Instant::now();
                if now >= expiry {
                    break;
                }
                state = unwind::wait_timeout(&self.task_ready, state, expiry - now);
            }
        }
        state.idle -= 1;
        state.workers -= 1;
        if state.workers == 0 {
            self.workers_gone.notify_all();
        }
    }

    /// Runs a serial job whose ticket was already taken off the queue.
    pub(super) fn run_serial_job(&self, job: Job) {
        {
            let mut state = self.lock();
            state.waiting -= 1;
            state.running += 1;
        }
        self.room.notify_one();
        self.execute(job);
        self.lock().running -= 1;
    }

    fn execute(&self, job: Job) {
        match panic::catch_unwind(AssertUnwindSafe(job)) {
            Ok(()) => {
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(payload) => {
                self.panicked.fetch_add(1, Ordering::Relaxed);
                self.report_panic(panic_message(payload.as_ref()));
            }
        }
    }

    fn report_panic(&self, message: String) {
        let thread = thread::current();
        let worker = thread.name().unwrap_or("unnamed worker");
        log::error!("job panicked on {worker}: {message}");
        if let Some(handler) = &self.config.panic_handler {
            // The handler is user code too; it must not take the worker down.
            if panic::catch_unwind(AssertUnwindSafe(|| handler(message))).is_err() {
                log::error!("panic handler itself panicked on {worker}");
            }
        }
    }

    /// Closes the pool, then waits until `deadline` for queued jobs to finish
    /// and the workers to exit. Returns whether they all exited.
    pub(super) fn shutdown(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.lock();
        state.closed = true;
        self.task_ready.notify_all();
        self.room.notify_all();
        if WORKER_OF_POOL.with(Cell::get) == Some(self.id) {
            // Waiting here would wait for ourselves; the other workers still
            // drain the queue and exit on their own.
            return false;
        }
        while state.workers > 0 {
            state = match deadline {
                None => unwind::wait(&self.workers_gone, state),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    unwind::wait_timeout(&self.workers_gone, state, deadline - now)
                }
            };
        }
        let threads = std::mem::take(&mut state.threads);
        drop(state);
        // Every worker has left its loop; these joins return promptly.
        for thread in threads {
            if thread.join().is_err() {
                log::error!("worker pool thread panicked outside of a job");
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_workers: usize, queue_capacity: usize) -> Config {
        Config {
            max_workers,
            min_workers: 0,
            queue_capacity,
            idle_timeout: Duration::from_secs(1),
            name: "test".to_owned(),
            panic_handler: None,
        }
    }

    #[test]
    fn room_counts_spawnable_and_idle_workers_plus_queue() {
        let config = config(2, 1);
        let mut state = State::default();
        assert!(state.has_room(&config));
        // Two busy workers, one queued job: full.
        state.workers = 2;
        state.waiting = 1;
        assert!(!state.has_room(&config));
        // One of them goes idle: room for one more.
        state.idle = 1;
        assert!(state.has_room(&config));
    }

    #[test]
    fn spawns_only_when_no_idle_worker_is_left_for_the_task() {
        let config = config(2, 4);
        let mut state = State::default();
        assert!(state.needs_worker_for_next_task(&config));
        state.workers = 1;
        state.idle = 1;
        assert!(!state.needs_worker_for_next_task(&config));
        state.tasks.push_back(Task::Job(Box::new(|| ())));
        assert!(state.needs_worker_for_next_task(&config));
        state.workers = 2;
        assert!(!state.needs_worker_for_next_task(&config));
    }
}
