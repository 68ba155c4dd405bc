//! Behaviour of `netloom::pool` under saturation, expiry, panics, shutdown
//! and per-connection ordering. Every wait is bounded so a bug fails the
//! test instead of hanging it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use netloom::pool::{PoolError, WorkerPool};

const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds; panics after `PATIENCE`.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Holds jobs until the test lets them through, one permit per job.
#[derive(Default)]
struct Gate {
    permits: Mutex<usize>,
    opened: Condvar,
}

impl Gate {
    fn release(&self, permits: usize) {
        *self.permits.lock().unwrap() += permits;
        self.opened.notify_all();
    }

    fn open(&self) {
        self.release(usize::MAX / 2);
    }

    fn pass(&self) {
        let permits = self.permits.lock().unwrap();
        let (mut permits, wait) = self
            .opened
            .wait_timeout_while(permits, PATIENCE, |permits| *permits == 0)
            .unwrap();
        assert!(!wait.timed_out(), "gate never opened");
        *permits -= 1;
    }
}

#[cfg(target_os = "linux")]
/// Runs `submit` on a new thread and returns once that thread is asleep in
/// the kernel inside it (a futex wait: the pool's condition variable), so
/// the caller knows the submitter really is blocked, not merely slow to
/// start. Also returns whether the submit has returned, checked right then.
fn spawn_blocked_submitter<T: Send + 'static>(
    submit: impl FnOnce() -> T + Send + 'static,
) -> (thread::JoinHandle<T>, Arc<AtomicBool>) {
    let returned = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = mpsc::channel();
    let submitter = thread::spawn({
        let returned = Arc::clone(&returned);
        move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let result = submit();
            returned.store(true, Ordering::SeqCst);
            result
        }
    });
    let tid = tid_rx.recv_timeout(PATIENCE).unwrap();
    wait_until("the submitter sleeps in a futex wait", || {
        returned.load(Ordering::SeqCst) || in_futex_wait(tid)
    });
    (submitter, returned)
}

#[cfg(target_os = "linux")]
/// Whether thread `tid` of this process is blocked in the futex syscall.
fn in_futex_wait(tid: libc::pid_t) -> bool {
    let path = format!("/proc/self/task/{tid}/syscall");
    let Ok(syscall) = std::fs::read_to_string(path) else {
        return false;
    };
    syscall.split_whitespace().next() == Some(&libc::SYS_futex.to_string())
}

fn blocked_job(gate: &Arc<Gate>) -> impl FnOnce() + Send + 'static {
    let gate = Arc::clone(gate);
    move || gate.pass()
}

#[test]
fn try_submit_is_full_when_workers_and_queue_are_full_until_a_job_finishes() {
    let pool = WorkerPool::builder()
        .max_workers(2)
        .queue_capacity(1)
        .build();
    let gate = Arc::new(Gate::default());
    pool.try_submit(blocked_job(&gate)).unwrap();
    pool.try_submit(blocked_job(&gate)).unwrap();
    pool.try_submit(blocked_job(&gate)).unwrap();
    wait_until("both workers run", || pool.running() == 2);
    assert_eq!(pool.queued(), 1);

    let (ran, ran_rx) = mpsc::channel();
    let rejected = pool.try_submit(move || ran.send(()).unwrap());
    let Err(PoolError::Full(job)) = rejected else {
        panic!("expected Full, got {rejected:?}");
    };
    // The job comes back intact.
    job();
    ran_rx.try_recv().unwrap();

    gate.release(1);
    wait_until("one job finished", || pool.completed() == 1);
    pool.try_submit(blocked_job(&gate)).unwrap();
    assert!(matches!(pool.try_submit(|| ()), Err(PoolError::Full(_))));

    gate.open();
    assert!(pool.shutdown_timeout(PATIENCE));
    assert_eq!(pool.completed(), 4);
}

#[test]
#[cfg(target_os = "linux")] // reads /proc for the futex wait
fn blocking_submit_waits_for_room_then_proceeds() {
    let pool = WorkerPool::builder()
        .max_workers(1)
        .queue_capacity(0)
        .build();
    let gate = Arc::new(Gate::default());
    pool.submit(blocked_job(&gate)).unwrap();
    wait_until("the worker is busy", || pool.running() == 1);

    let (submitter, returned) = spawn_blocked_submitter({
        let pool = pool.clone();
        move || pool.submit(|| ())
    });
    assert!(!returned.load(Ordering::SeqCst), "submit did not wait");
    assert_eq!(pool.queued(), 0, "nothing was admitted meanwhile");

    gate.release(1);
    submitter.join().unwrap().unwrap();
    assert!(pool.shutdown_timeout(PATIENCE));
    assert_eq!(pool.completed(), 2);
}

#[test]
fn submit_timeout_gives_up_after_the_timeout() {
    let pool = WorkerPool::builder()
        .max_workers(1)
        .queue_capacity(0)
        .build();
    let gate = Arc::new(Gate::default());
    pool.submit(blocked_job(&gate)).unwrap();
    wait_until("the worker is busy", || pool.running() == 1);

    let started = Instant::now();
    let result = pool.submit_timeout(|| (), Duration::from_millis(50));
    let waited = started.elapsed();
    assert!(matches!(result, Err(PoolError::Timeout(_))), "{result:?}");
    assert!(
        waited >= Duration::from_millis(50),
        "gave up after {waited:?}"
    );
    assert!(waited < PATIENCE);

    gate.open();
    wait_until("the worker is idle", || pool.idle() == 1);
    pool.submit_timeout(|| (), Duration::from_millis(50))
        .unwrap();
    assert!(pool.shutdown_timeout(PATIENCE));
}

#[test]
fn workers_spawn_lazily_and_expire_after_idle_timeout() {
    let pool = WorkerPool::builder()
        .max_workers(4)
        .idle_timeout(Duration::from_millis(100))
        .build();
    assert_eq!(pool.workers(), 0);
    let gate = Arc::new(Gate::default());
    for _ in 0..4 {
        pool.submit(blocked_job(&gate)).unwrap();
    }
    wait_until("four jobs run", || pool.running() == 4);
    assert_eq!(pool.workers(), 4);

    gate.open();
    wait_until("idle workers expire", || pool.workers() == 0);
    assert_eq!(pool.idle(), 0);
    assert_eq!(pool.completed(), 4);

    // An expired pool still spawns on demand.
    let (done, done_rx) = mpsc::channel();
    pool.submit(move || done.send(()).unwrap()).unwrap();
    done_rx.recv_timeout(PATIENCE).unwrap();
}

#[test]
fn idle_workers_stay_until_the_idle_timeout() {
    let pool = WorkerPool::builder()
        .max_workers(2)
        .idle_timeout(Duration::from_secs(60))
        .build();
    let gate = Arc::new(Gate::default());
    pool.submit(blocked_job(&gate)).unwrap();
    pool.submit(blocked_job(&gate)).unwrap();
    gate.open();
    wait_until("both jobs finish", || pool.completed() == 2);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(pool.workers(), 2);
    assert_eq!(pool.idle(), 2);
}

#[test]
fn idle_expiry_stops_at_min_workers() {
    let pool = WorkerPool::builder()
        .max_workers(3)
        .min_workers(1)
        .idle_timeout(Duration::from_millis(100))
        .build();
    let gate = Arc::new(Gate::default());
    for _ in 0..3 {
        pool.submit(blocked_job(&gate)).unwrap();
    }
    wait_until("three jobs run", || pool.running() == 3);
    gate.open();
    wait_until("expiry down to min_workers", || pool.workers() == 1);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(pool.workers(), 1);

    // The retained worker serves the next job without a new spawn.
    let (done, done_rx) = mpsc::channel();
    pool.submit(move || done.send(()).unwrap()).unwrap();
    done_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(pool.workers(), 1);
}

#[test]
fn panicking_job_is_contained_counted_and_reported() {
    let messages = Arc::new(Mutex::new(Vec::new()));
    let pool = WorkerPool::builder()
        .max_workers(1)
        .panic_handler({
            let messages = Arc::clone(&messages);
            move |message| messages.lock().unwrap().push(message)
        })
        .build();
    pool.submit(|| panic!("request {} failed", 7)).unwrap();
    wait_until("the handler ran", || !messages.lock().unwrap().is_empty());
    assert_eq!(*messages.lock().unwrap(), ["request 7 failed"]);
    assert_eq!(pool.panicked(), 1);
    assert_eq!(pool.completed(), 0);

    // The single worker survived and keeps serving.
    let (done, done_rx) = mpsc::channel();
    pool.submit(move || {
        done.send(thread::current().name().map(str::to_owned))
            .unwrap()
    })
    .unwrap();
    let worker_name = done_rx.recv_timeout(PATIENCE).unwrap().unwrap();
    assert!(worker_name.starts_with("netloom-worker-"), "{worker_name}");
    wait_until("the job is counted", || pool.completed() == 1);
    assert_eq!(pool.workers(), 1);
    wait_until("the worker is idle", || pool.idle() == 1);
    assert_eq!(pool.running(), 0);
    assert_eq!(pool.panicked(), 1);
}

#[test]
fn panicking_panic_handler_does_not_kill_the_worker() {
    let pool = WorkerPool::builder()
        .max_workers(1)
        .panic_handler(|message| panic!("handler failed on {message}"))
        .build();
    pool.submit(|| panic!("job failed")).unwrap();
    let (done, done_rx) = mpsc::channel();
    pool.submit(move || done.send(()).unwrap()).unwrap();
    done_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(pool.panicked(), 1);
    assert_eq!(pool.workers(), 1);
}

#[test]
fn counts_reflect_running_queued_and_idle_work() {
    let pool = WorkerPool::builder()
        .max_workers(2)
        .queue_capacity(4)
        .build();
    let gate = Arc::new(Gate::default());
    for _ in 0..5 {
        pool.try_submit(blocked_job(&gate)).unwrap();
    }
    wait_until("two jobs run", || pool.running() == 2);
    assert_eq!(pool.queued(), 3);
    assert_eq!(pool.workers(), 2);
    assert_eq!(pool.idle(), 0);
    assert_eq!(pool.completed(), 0);

    gate.open();
    wait_until("all jobs finish", || pool.completed() == 5);
    wait_until("workers go idle", || pool.idle() == 2);
    assert_eq!(pool.running(), 0);
    assert_eq!(pool.queued(), 0);
    assert_eq!(pool.workers(), 2);
    assert_eq!(pool.panicked(), 0);
}

#[test]
fn shutdown_runs_queued_jobs_and_joins_workers() {
    let pool = WorkerPool::builder()
        .max_workers(1)
        .queue_capacity(10)
        .build();
    let gate = Arc::new(Gate::default());
    let ran = Arc::new(AtomicUsize::new(0));
    pool.submit(blocked_job(&gate)).unwrap();
    for _ in 0..5 {
        let ran = Arc::clone(&ran);
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let opener = thread::spawn({
        let gate = Arc::clone(&gate);
        move || {
            thread::sleep(Duration::from_millis(30));
            gate.open();
        }
    });
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 5);
    assert_eq!(pool.completed(), 6);
    assert_eq!(pool.workers(), 0);
    opener.join().unwrap();
}

#[test]
fn shutdown_timeout_reports_whether_workers_finished() {
    let pool = WorkerPool::builder().max_workers(1).build();
    let gate = Arc::new(Gate::default());
    pool.submit(blocked_job(&gate)).unwrap();
    assert!(!pool.shutdown_timeout(Duration::from_millis(30)));
    assert!(pool.is_closed());
    gate.open();
    assert!(pool.shutdown_timeout(PATIENCE));
    assert_eq!(pool.workers(), 0);
}

#[test]
fn every_submit_fails_with_closed_after_shutdown() {
    let pool = WorkerPool::builder().build();
    let connection = pool.serial();
    pool.shutdown();
    assert!(matches!(pool.try_submit(|| ()), Err(PoolError::Closed(_))));
    assert!(matches!(pool.submit(|| ()), Err(PoolError::Closed(_))));
    assert!(matches!(
        pool.submit_timeout(|| (), Duration::from_secs(1)),
        Err(PoolError::Closed(_))
    ));
    assert!(matches!(
        connection.submit(|| ()),
        Err(PoolError::Closed(_))
    ));
    assert_eq!(pool.completed(), 0);
}

#[test]
#[cfg(target_os = "linux")] // reads /proc for the futex wait
fn shutdown_wakes_blocked_submitters_with_closed() {
    let pool = WorkerPool::builder()
        .max_workers(1)
        .queue_capacity(0)
        .build();
    let gate = Arc::new(Gate::default());
    pool.submit(blocked_job(&gate)).unwrap();
    wait_until("the worker is busy", || pool.running() == 1);
    let (submitter, returned) = spawn_blocked_submitter({
        let pool = pool.clone();
        move || pool.submit(|| ()).map_err(|error| error.to_string())
    });
    assert!(!returned.load(Ordering::SeqCst), "submit did not wait");
    let closer = thread::spawn({
        let pool = pool.clone();
        move || pool.shutdown()
    });
    assert_eq!(
        submitter.join().unwrap(),
        Err("worker pool is shut down".to_owned())
    );
    gate.open();
    closer.join().unwrap();
}

#[test]
fn dropping_the_last_handle_inside_a_job_does_not_deadlock() {
    let pool = WorkerPool::builder().max_workers(1).build();
    let gate = Arc::new(Gate::default());
    let (events, events_rx) = mpsc::channel();
    let last_handle = pool.clone();
    pool.submit({
        let gate = Arc::clone(&gate);
        let events = events.clone();
        move || {
            gate.pass();
            drop(last_handle);
            events.send("dropped").unwrap();
        }
    })
    .unwrap();
    pool.submit(move || events.send("queued job ran").unwrap())
        .unwrap();
    // Not the last handle: returns without shutting down.
    drop(pool);
    gate.open();
    assert_eq!(events_rx.recv_timeout(PATIENCE).unwrap(), "dropped");
    assert_eq!(events_rx.recv_timeout(PATIENCE).unwrap(), "queued job ran");
}

#[test]
fn dropping_the_last_handle_outside_waits_for_queued_jobs() {
    let pool = WorkerPool::builder().max_workers(2).build();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let ran = Arc::clone(&ran);
        pool.submit(move || {
            thread::sleep(Duration::from_millis(1));
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), 10);
}

/// Small deterministic generator for sleep jitter.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn serial_queues_keep_order_and_never_overlap_under_concurrency() {
    const QUEUES: usize = 4;
    const JOBS: usize = 500;
    let pool = WorkerPool::builder()
        .max_workers(3)
        .queue_capacity(64)
        .build();
    let results: Arc<Vec<Mutex<Vec<usize>>>> =
        Arc::new((0..QUEUES).map(|_| Mutex::default()).collect());
    let in_job: Arc<Vec<AtomicBool>> =
        Arc::new((0..QUEUES).map(|_| AtomicBool::default()).collect());
    let overlaps = Arc::new(AtomicUsize::new(0));
    let threads_used = Arc::new(Mutex::new(HashSet::new()));

    let producers: Vec<_> = (0..QUEUES)
        .map(|queue| {
            let connection = pool.serial();
            let results = Arc::clone(&results);
            let in_job = Arc::clone(&in_job);
            let overlaps = Arc::clone(&overlaps);
            let threads_used = Arc::clone(&threads_used);
            thread::spawn(move || {
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ queue as u64;
                for index in 0..JOBS {
                    let pause = Duration::from_micros(xorshift(&mut seed) % 200);
                    let results = Arc::clone(&results);
                    let in_job = Arc::clone(&in_job);
                    let overlaps = Arc::clone(&overlaps);
                    let threads_used = Arc::clone(&threads_used);
                    // Blocking submit: the queue (64) is far smaller than the
                    // 2000 jobs, so backpressure is exercised too.
                    connection
                        .submit(move || {
                            if in_job[queue].swap(true, Ordering::SeqCst) {
                                overlaps.fetch_add(1, Ordering::SeqCst);
                            }
                            threads_used.lock().unwrap().insert(thread::current().id());
                            thread::sleep(pause);
                            results[queue].lock().unwrap().push(index);
                            in_job[queue].store(false, Ordering::SeqCst);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    assert!(pool.shutdown_timeout(PATIENCE));

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "jobs of one queue overlapped"
    );
    for (queue, result) in results.iter().enumerate() {
        let result = result.lock().unwrap();
        assert_eq!(
            *result,
            (0..JOBS).collect::<Vec<_>>(),
            "queue {queue} out of order"
        );
    }
    assert_eq!(pool.completed(), (QUEUES * JOBS) as u64);
    assert!(
        threads_used.lock().unwrap().len() > 1,
        "only one worker was used"
    );
}

#[test]
fn serial_queue_runs_on_workers_while_other_work_proceeds() {
    let pool = WorkerPool::builder().max_workers(2).build();
    let gate = Arc::new(Gate::default());
    let connection = pool.serial();
    connection.submit(blocked_job(&gate)).unwrap();
    let (later, later_rx) = mpsc::channel();
    connection.submit(move || later.send(()).unwrap()).unwrap();
    wait_until("the serial job runs", || pool.running() == 1);
    assert_eq!(connection.pending(), 1);

    // The second serial job waits for the first, but a plain job does not.
    let (plain, plain_rx) = mpsc::channel();
    pool.submit(move || plain.send(()).unwrap()).unwrap();
    plain_rx.recv_timeout(PATIENCE).unwrap();
    assert!(
        later_rx.try_recv().is_err(),
        "serial job overtook its predecessor"
    );

    gate.open();
    later_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(connection.pending(), 0);
}

#[test]
fn serial_queue_continues_after_a_panicking_job() {
    let pool = WorkerPool::builder().max_workers(2).build();
    let connection = pool.serial();
    let (order, order_rx) = mpsc::channel();
    connection
        .submit(|| panic!("first request failed"))
        .unwrap();
    connection
        .submit(move || order.send("second request").unwrap())
        .unwrap();
    assert_eq!(order_rx.recv_timeout(PATIENCE).unwrap(), "second request");
    wait_until("the panic is counted", || pool.panicked() == 1);
}

#[test]
fn serial_try_submit_shares_the_pool_capacity() {
    let pool = WorkerPool::builder()
        .max_workers(1)
        .queue_capacity(1)
        .build();
    let gate = Arc::new(Gate::default());
    let connection = pool.serial();
    connection.try_submit(blocked_job(&gate)).unwrap();
    connection.try_submit(blocked_job(&gate)).unwrap();
    assert!(matches!(
        connection.try_submit(|| ()),
        Err(PoolError::Full(_))
    ));
    assert!(matches!(pool.try_submit(|| ()), Err(PoolError::Full(_))));
    assert_eq!(pool.queued() + pool.running(), 2);
    gate.open();
    assert!(pool.shutdown_timeout(PATIENCE));
    assert_eq!(pool.completed(), 2);
}

#[test]
fn handles_are_send_sync_and_debug_formatting_reads_counts() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<WorkerPool>();
    assert_send_sync::<netloom::pool::SerialQueue>();

    let pool = WorkerPool::builder().max_workers(1).build();
    let connection = pool.serial();
    assert!(format!("{pool:?}").contains("workers: 0"));
    assert!(format!("{connection:?}").contains("pending: 0"));
    pool.shutdown();
    let error = pool.try_submit(|| ()).unwrap_err();
    assert_eq!(format!("{error:?}"), "Closed(..)");
    assert_eq!(error.to_string(), "worker pool is shut down");
}
