//! The loop-local executor: one [`Core`] per loop thread, no work stealing.
//!
//! A `Core` owns the loop's poller, its per-descriptor records
//! ([`ScheduledIo`]), its timers, its tasks and its run queue. It lives in a
//! thread-local while the loop runs, so futures polled on the loop reach it
//! without locks; only the inbox and the task headers are shared with other
//! threads.
//!
//! Every event loop of the engine hosts a `Core` on its own thread and in
//! its own epoll set: the core registers its descriptors with a duplicate
//! of the loop's selector, under tokens that carry `Token::EXECUTOR_FLAG`,
//! and its inbox wakes the loop's own eventfd (one coalesced write for
//! commands and task wake-ups alike). One turn of the loop, for the core's
//! part:
//!
//! | step | what | method | why first |
//! |------|------|--------|-----------|
//! | 1 | `epoll_wait`, timeout at most [`Core::next_timeout`] (0 if work is queued) | | |
//! | 2 | each executor event sets readiness bits and takes the reader / writer waker | [`Core::on_event`] | readiness before tasks run |
//! | 3 | drain the inbox (remote wake-ups, spawns, releases) if the eventfd fired | [`Core::after_events`] | |
//! | 4 | fire due timers (deadlines, sleeps, the shutdown grace) | | so a timed-out task runs this turn |
//! | 5 | poll up to [`POLLS_PER_TURN`] queued tasks | | bounded so I/O is never starved |
//!
//! The loop does steps 2 to 5 after its own events, timers and commands.
//! `block_on` drives a core of its own on the calling thread with the same
//! steps ([`Core::run_root`]).
//!
//! A task's waker is an `Arc<TaskHeader>` (`std::task::Wake`, no unsafe).
//! Waking on the task's own loop pushes its token on the run queue; waking
//! from any other thread sends `Remote::Wake` through the loop's inbox, whose
//! eventfd write is coalesced. The `notified` flag makes a burst of wake-ups
//! cost one queue entry:
//!
//! | `notified` | meaning | set by | cleared by |
//! |------------|---------|--------|------------|
//! | false | not queued; a wake-up must queue it | the loop, just before polling | |
//! | true | queued (or finished: never queued again) | the first `wake` | the loop, when it polls |

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::record::{Direction, Fired, ScheduledIo};
use super::RuntimeShared;
use crate::reactor::inbox::{InboxReceiver, InboxSender, Lane};
use crate::reactor::timer::TimerHeap;
use crate::reactor::token::{Slab, Token};
use crate::stats::LoopCounters;
use crate::sys::{Event, Events, Interest, PollerKind, Selector, Trigger, Waker as EventFd};
use crate::unwind::{lock, panic_message};

/// Tasks polled per turn before the poller is consulted again.
pub(crate) const POLLS_PER_TURN: usize = 256;
/// I/O operations one task may complete per poll before it must yield
/// (cooperative scheduling: a connection that is always ready cannot starve
/// the others on its loop).
const COOP_BUDGET: u32 = 128;
/// The run-queue token of `block_on`'s root future (never a slab entry).
const ROOT: Token = Token::WAKER;

static NEXT_LOOP_ID: AtomicUsize = AtomicUsize::new(1);

/// Messages to a loop from other threads.
pub(crate) enum Remote {
    /// A task of this loop was woken elsewhere.
    Wake(Token),
    /// A task spawned onto this loop from elsewhere, with its join state.
    Spawn(
        Pin<Box<dyn Future<Output = ()> + Send>>,
        Arc<dyn TaskLink + Send + Sync>,
    ),
    /// A descriptor registered here was dropped on another thread.
    Release(Token, RawFd),
}

/// The part of a loop other threads may touch.
pub(crate) struct LoopShared {
    /// Unique over the process; tells a loop from a `block_on` driver.
    pub(crate) id: usize,
    pub(crate) inbox: InboxSender<Remote>,
}

/// Keys of the loop's timers; each is validated when it fires.
pub(crate) enum TimerKey {
    /// A read or write deadline of a descriptor record, with the sequence
    /// number it was armed under.
    Deadline(Token, Direction, u32),
    /// A `sleep`; the slot is gone if the sleep was dropped.
    Sleep(Token),
    /// The end of the shutdown grace period.
    Grace,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Runs `f` with the loop of this thread; `None` off any loop.
pub(crate) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.borrow().as_deref().map(f))
        .ok()
        .flatten()
}

/// Installs `core` as this thread's loop until the guard drops.
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        assert!(
            current.is_none(),
            "netloom: a runtime loop is already running on this thread"
        );
        *current = Some(core);
    });
    EnterGuard(())
}

/// Uninstalls the thread's loop; the core is dropped after the slot is
/// cleared so that destructors running then see no loop.
pub(crate) struct EnterGuard(());

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let core = CURRENT.with(|current| current.borrow_mut().take());
        drop(core);
    }
}

/// What a task's wakers point at.
pub(crate) struct TaskHeader {
    token: Token,
    notified: AtomicBool,
    /// Set by [`JoinHandle::abort`]: the loop drops the task instead of
    /// polling it. Here rather than in the join state because the loop
    /// touches the header anyway when it polls.
    aborted: AtomicBool,
    /// `home.id`, kept inline: compared on every wake-up.
    home_id: usize,
    home: Arc<LoopShared>,
}

impl Wake for TaskHeader {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.notified.swap(true, Ordering::AcqRel) {
            return;
        }
        let queued_here = with_core(|core| {
            let here = core.id == self.home_id;
            if here {
                core.schedule(self.token);
            }
            here
        });
        if queued_here != Some(true) {
            // A closed inbox means the loop has exited: nothing to wake.
            let _ = self.home.inbox.send(Lane::Urgent, Remote::Wake(self.token));
        }
    }
}

/// Why a task produced no output.
///
/// ```
/// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let handle = rt.spawn(async { panic!("boom") });
/// let err = rt.block_on(handle).unwrap_err();
/// assert!(matches!(err, netloom::rt::JoinError::Panicked(ref msg) if msg == "boom"));
/// assert!(err.is_panic() && !err.is_cancelled());
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was dropped before it finished: it was aborted
    /// ([`JoinHandle::abort`]), the runtime shut down (the grace period ran
    /// out) or its loop had already exited.
    #[error("task cancelled")]
    Cancelled,
    /// The task panicked, or its future's destructor did once it had
    /// finished (its output is then dropped, as in tokio); the message is
    /// the panic's payload.
    #[error("task panicked: {0}")]
    Panicked(String),
}

impl JoinError {
    /// Whether the task was cancelled (aborted, or dropped by a stopping
    /// runtime) rather than panicking.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.spawn(netloom::rt::sleep(std::time::Duration::from_secs(60)));
    /// handle.abort();
    /// assert!(rt.block_on(handle).unwrap_err().is_cancelled());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.spawn(async { panic!("boom") });
    /// assert!(rt.block_on(handle).unwrap_err().is_panic());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }
}

pub(crate) struct JoinState<T> {
    inner: Mutex<JoinInner<T>>,
}

struct JoinInner<T> {
    finished: bool,
    result: Option<Result<T, JoinError>>,
    /// The handle's waker, woken when the task finishes.
    waiter: Option<Waker>,
    /// The task's header, attached when the task reaches its loop, so
    /// `abort` can flag and queue a task parked on I/O or a timer.
    task: Option<Arc<TaskHeader>>,
    /// `abort` came before the task reached its loop.
    aborted: bool,
}

impl<T> JoinState<T> {
    fn complete(&self, result: Result<T, JoinError>) {
        let waiter = {
            let mut inner = lock(&self.inner);
            if inner.finished {
                return;
            }
            inner.finished = true;
            inner.result = Some(result);
            inner.task = None;
            inner.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }

    fn abort(&self) {
        let task = {
            let mut inner = lock(&self.inner);
            if inner.finished {
                return;
            }
            // Under the lock: a task attaching right now sees the flag.
            inner.aborted = true;
            inner.task.take()
        };
        if let Some(header) = task {
            header.aborted.store(true, Ordering::Release);
            header.wake_by_ref();
        }
    }
}

/// How a task's join state learns the task's header when the task reaches
/// its loop (output type erased).
pub(crate) trait TaskLink {
    fn attach(&self, header: &Arc<TaskHeader>);
}

impl<T> TaskLink for JoinState<T> {
    fn attach(&self, header: &Arc<TaskHeader>) {
        let mut inner = lock(&self.inner);
        if inner.aborted {
            // Its first turn drops it.
            header.aborted.store(true, Ordering::Release);
        } else if !inner.finished {
            inner.task = Some(header.clone());
        }
    }
}

/// What an [`AbortHandle`] aborts, with the output type erased.
trait Abort: Send + Sync {
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

impl<T: Send> Abort for JoinState<T> {
    fn abort(&self) {
        JoinState::abort(self);
    }

    fn is_finished(&self) -> bool {
        lock(&self.inner).finished
    }
}

/// Marks the task cancelled if its future is dropped unfinished (it is
/// created before the first poll, so an unpolled task counts too).
struct CancelOnDrop<T>(Arc<JoinState<T>>);

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.0.complete(Err(JoinError::Cancelled));
    }
}

/// Awaits a spawned task's output. Dropping it detaches the task, which keeps
/// running; [`abort`](JoinHandle::abort) cancels it.
///
/// ```
/// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let handle: netloom::rt::JoinHandle<u32> = rt.spawn(async { 7 });
/// assert_eq!(rt.block_on(handle), Ok(7));
/// # Ok::<(), netloom::Error>(())
/// ```
pub struct JoinHandle<T> {
    state: Arc<JoinState<T>>,
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished (with output, panic or cancellation).
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.spawn(async {});
    /// let _ = handle.is_finished();
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        lock(&self.state.inner).finished
    }

    /// Cancels the task, from any thread: its loop drops the task's future
    /// at the task's next turn, even if it is waiting for I/O or a timer
    /// (what the future owns, such as a socket, is released then), and the
    /// handle resolves to [`JoinError::Cancelled`]. A task that has already
    /// finished keeps its output; aborting it does nothing.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.spawn(netloom::rt::sleep(std::time::Duration::from_secs(60)));
    /// handle.abort();
    /// assert_eq!(rt.block_on(handle), Err(netloom::rt::JoinError::Cancelled));
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn abort(&self) {
        self.state.abort();
    }
}

impl<T: Send + 'static> JoinHandle<T> {
    /// A handle that can [`abort`](AbortHandle::abort) the task but not
    /// await it; `Send + Sync + Clone`. Only for outputs that are `Send`
    /// (every [`spawn`](crate::rt::spawn)ed task's): the handle shares the
    /// slot the output is kept in, which may then be dropped on any thread.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.spawn(netloom::rt::sleep(std::time::Duration::from_secs(60)));
    /// let abort = handle.abort_handle();
    /// std::thread::spawn(move || abort.abort()).join().unwrap();
    /// assert!(rt.block_on(handle).unwrap_err().is_cancelled());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle {
            task: self.state.clone(),
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = lock(&self.state.inner);
        if let Some(result) = inner.result.take() {
            return Poll::Ready(result);
        }
        if inner.finished {
            // Polled again after it returned its output.
            return Poll::Ready(Err(JoinError::Cancelled));
        }
        match &inner.waiter {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Cancels a task without owning its [`JoinHandle`]; see
/// [`JoinHandle::abort_handle`].
///
/// ```
/// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let handle = rt.spawn(std::future::pending::<()>());
/// let abort: netloom::rt::AbortHandle = handle.abort_handle();
/// abort.clone().abort();
/// assert!(rt.block_on(handle).unwrap_err().is_cancelled());
/// assert!(abort.is_finished());
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    task: Arc<dyn Abort>,
}

impl AbortHandle {
    /// As [`JoinHandle::abort`].
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let abort = rt.spawn(async {}).abort_handle();
    /// abort.abort();
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn abort(&self) {
        self.task.abort();
    }

    /// As [`JoinHandle::is_finished`].
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let abort = rt.spawn(async {}).abort_handle();
    /// let _ = abort.is_finished();
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl std::fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbortHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A spawned future and the guard that reports its outcome: one struct,
/// not an `async` wrapper, so polling a task touches the future where it
/// lies instead of a copy of it inside a second state machine (at 1,000
/// connections every extra cache line a poll touches is a miss).
struct Task<F: Future> {
    /// `None` once finished: dropped in place before the handle hears the
    /// outcome, so whoever awaits a task finds the sockets it owned closed.
    future: Option<F>,
    /// Declared after `future`, so it drops after it too: an aborted or
    /// shut-down task's future is gone before its handle hears `Cancelled`.
    guard: CancelOnDrop<F::Output>,
}

impl<F: Future> Future for Task<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // the task (it is only polled in place and dropped in place by
        // `Pin::set`), and `Task` has no `Drop` of its own. `guard` is not
        // pinned and only read through a shared reference.
        let (mut future, guard) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.future), &this.guard)
        };
        let Some(running) = future.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let outcome = match catch_unwind(AssertUnwindSafe(|| running.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(panic) => {
                let msg = panic_message(&*panic);
                log::error!("netloom: task panicked: {msg}");
                Err(JoinError::Panicked(msg))
            }
        };
        // A destructor that panics is the task's panic too (as in tokio):
        // the output is dropped, the handle gets the panic. A task that
        // panicked already keeps its first panic.
        let outcome = match catch_unwind(AssertUnwindSafe(|| future.set(None))) {
            Err(panic) if outcome.is_ok() => {
                let msg = panic_message(&*panic);
                log::error!("netloom: dropping a finished task panicked: {msg}");
                Err(JoinError::Panicked(msg))
            }
            Err(_) => {
                log::error!("netloom: dropping a panicked task panicked again");
                outcome
            }
            Ok(()) => outcome,
        };
        guard.0.complete(outcome);
        Poll::Ready(())
    }
}

/// Wraps `future` so its output, its panic or its cancellation reaches a
/// [`JoinHandle`]; an aborted task is dropped by its loop
/// (`Core::poll_task`). The panic is caught around each poll of `future`,
/// so it never unwinds through the loop.
pub(crate) fn wrap<F>(future: F) -> (impl Future<Output = ()>, Arc<JoinState<F::Output>>)
where
    F: Future + 'static,
{
    let state = Arc::new(JoinState {
        inner: Mutex::new(JoinInner {
            finished: false,
            result: None,
            waiter: None,
            task: None,
            aborted: false,
        }),
    });
    let task = Task {
        future: Some(future),
        guard: CancelOnDrop(state.clone()),
    };
    (task, state)
}

pub(crate) fn join_handle<T>(state: Arc<JoinState<T>>) -> JoinHandle<T> {
    JoinHandle { state }
}

/// A task's future, as the loop stores it.
type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

struct TaskSlot {
    /// The future and its waker; taken out (`None`) while the task is being
    /// polled, so polling needs no clone and the slab is not borrowed.
    runnable: Option<(LocalFuture, Waker)>,
    header: Arc<TaskHeader>,
}

/// Counts of one loop's live objects, for monitoring and tests.
///
/// ```
/// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let metrics = rt.block_on(async { netloom::rt::metrics() }).unwrap();
/// assert_eq!(metrics.tasks, 0); // the root future of block_on is not a task
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopMetrics {
    /// Spawned tasks not yet finished.
    pub tasks: usize,
    /// Registered descriptors (per-descriptor records).
    pub io_records: usize,
    /// Tasks parked in a record's reader or writer slot.
    pub parked_waiters: usize,
    /// Sleeps waiting for their timer.
    pub sleeps: usize,
}

/// One loop's state. Only its own thread touches it.
pub(crate) struct Core {
    /// `shared.id`, kept inline: compared on every I/O operation.
    id: usize,
    shared: Arc<LoopShared>,
    runtime: Arc<RuntimeShared>,
    selector: Selector,
    inbox: InboxReceiver<Remote>,
    /// The eventfd fired: the inbox has messages.
    inbox_ready: Cell<bool>,
    ios: RefCell<Slab<ScheduledIo>>,
    timers: RefCell<TimerHeap<TimerKey>>,
    sleeps: RefCell<Slab<Option<Waker>>>,
    tasks: RefCell<Slab<TaskSlot>>,
    run_queue: RefCell<VecDeque<Token>>,
    budget: Cell<u32>,
    root_woken: Cell<bool>,
    bulk_pending: Cell<bool>,
    stopping: Cell<bool>,
    grace_over: Cell<bool>,
}

/// A core's poller handle and inbox, before its thread starts.
pub(crate) struct CoreSeed {
    pub(crate) shared: Arc<LoopShared>,
    /// The eventfd the core's inbox wakes.
    waker: Arc<EventFd>,
    selector: Selector,
    inbox: InboxReceiver<Remote>,
}

impl CoreSeed {
    /// A core hosted by an engine loop: in the loop's epoll set, and woken
    /// through the loop's own eventfd, so a burst of commands and task
    /// wake-ups costs one eventfd write. The loop reports that eventfd's
    /// events with [`Core::inbox_woken`]. Its queue counts in the loop's
    /// inbox depth (`counters`).
    pub(crate) fn hosted(
        selector: &Selector,
        waker: Arc<EventFd>,
        counters: Arc<LoopCounters>,
    ) -> io::Result<CoreSeed> {
        Ok(CoreSeed::with_waker(
            selector.try_clone()?,
            waker,
            Some(counters),
        ))
    }

    /// A core with a poller (of `kind`) and an eventfd of its own
    /// (a runtime loop's, `block_on`'s).
    pub(crate) fn standalone(kind: PollerKind) -> io::Result<CoreSeed> {
        let selector = Selector::open(kind)?;
        let waker = Arc::new(EventFd::new()?);
        selector.register(
            waker.as_raw_fd(),
            Token::EXECUTOR_WAKER.raw(),
            Interest::READABLE,
            Trigger::Level,
        )?;
        Ok(CoreSeed::with_waker(selector, waker, None))
    }

    /// The eventfd that wakes the core.
    pub(crate) fn waker(&self) -> Arc<EventFd> {
        self.waker.clone()
    }

    fn with_waker(
        selector: Selector,
        waker: Arc<EventFd>,
        counters: Option<Arc<LoopCounters>>,
    ) -> CoreSeed {
        let (tx, rx) = crate::reactor::inbox::inbox(waker.clone(), counters);
        CoreSeed {
            shared: Arc::new(LoopShared {
                id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
                inbox: tx,
            }),
            waker,
            selector,
            inbox: rx,
        }
    }
}

impl Core {
    pub(crate) fn new(seed: CoreSeed, runtime: Arc<RuntimeShared>) -> Core {
        Core {
            id: seed.shared.id,
            shared: seed.shared,
            runtime,
            selector: seed.selector,
            inbox: seed.inbox,
            inbox_ready: Cell::new(false),
            ios: RefCell::new(Slab::new()),
            timers: RefCell::new(TimerHeap::new()),
            sleeps: RefCell::new(Slab::new()),
            tasks: RefCell::new(Slab::new()),
            run_queue: RefCell::new(VecDeque::new()),
            budget: Cell::new(COOP_BUDGET),
            root_woken: Cell::new(false),
            bulk_pending: Cell::new(false),
            stopping: Cell::new(false),
            grace_over: Cell::new(false),
        }
    }

    /// Watches `fd` for both directions, edge-triggered, and creates its
    /// record. Edge-triggered registration happens once per descriptor (as
    /// in Go's netpoller): readiness is remembered in the record, so no
    /// `epoll_ctl` is needed when a task parks or resumes.
    pub(crate) fn register(&self, fd: i32, listener: bool) -> io::Result<Token> {
        let mut ios = self.ios.borrow_mut();
        let token = ios.next_token();
        self.selector.register(
            fd,
            token.raw() | Token::EXECUTOR_FLAG,
            Interest::READABLE.with(Interest::WRITABLE),
            Trigger::Edge,
        )?;
        Ok(ios.insert(ScheduledIo::new(listener)))
    }

    /// Forgets a record and takes `fd`, which stays open, out of the
    /// loop's epoll set.
    pub(crate) fn unregister(&self, fd: i32, token: Token) {
        if let Err(e) = self.selector.deregister(fd) {
            log::error!("netloom: cannot stop watching fd {fd}: {e}");
        }
        self.drop_record(token);
    }

    /// Forgets a record. The descriptor `fd` is not deregistered: it is
    /// about to be closed (or was, by another thread), which removes it
    /// from an epoll set (io_uring's poll is cancelled by `forget`), and an
    /// event that still arrives for it names a stale token and is dropped.
    pub(crate) fn release(&self, token: Token, fd: RawFd) {
        self.selector.forget(fd, token.raw() | Token::EXECUTOR_FLAG);
        self.drop_record(token);
    }

    fn drop_record(&self, token: Token) {
        let record = self.ios.borrow_mut().remove(token);
        // Wakers are dropped outside the borrow: a waker's drop may run
        // arbitrary code.
        drop(record);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// This loop's identity among all cores.
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// What other threads reach this loop by.
    pub(crate) fn home(&self) -> &Arc<LoopShared> {
        &self.shared
    }

    /// The runtime whose tasks this core runs.
    pub(crate) fn runtime(&self) -> &Arc<RuntimeShared> {
        &self.runtime
    }

    /// Runs `f` on the record of `token`, if it is still registered. The
    /// record stays borrowed during `f`: drop wakers after it returns.
    pub(crate) fn with_record<R>(
        &self,
        token: Token,
        f: impl FnOnce(&mut ScheduledIo) -> R,
    ) -> Option<R> {
        self.ios.borrow_mut().get_mut(token).map(f)
    }

    /// Arms the timer of a record's deadline (`seq` tells a stale one).
    pub(crate) fn arm_deadline(&self, at: Instant, token: Token, direction: Direction, seq: u32) {
        self.timers
            .borrow_mut()
            .schedule(at, TimerKey::Deadline(token, direction, seq));
    }

    /// Parks a sleep's waker until `at`; the slot is freed when it fires.
    pub(crate) fn add_sleep(&self, at: Instant, waker: Waker) -> Token {
        let token = self.sleeps.borrow_mut().insert(Some(waker));
        self.timers
            .borrow_mut()
            .schedule(at, TimerKey::Sleep(token));
        token
    }

    /// Keeps `waker` in a pending sleep's slot. False once the timer fired
    /// (the slot is free then).
    pub(crate) fn renew_sleep(&self, token: Token, waker: &Waker) -> bool {
        let mut sleeps = self.sleeps.borrow_mut();
        let Some(slot) = sleeps.get_mut(token) else {
            return false;
        };
        let old = match slot {
            Some(w) if w.will_wake(waker) => None,
            _ => slot.replace(waker.clone()),
        };
        drop(sleeps);
        drop(old);
        true
    }

    /// Forgets a sleep that was dropped before it fired.
    pub(crate) fn cancel_sleep(&self, token: Token) {
        let slot = self.sleeps.borrow_mut().remove(token);
        drop(slot);
    }

    /// Whether the runtime whose tasks this core runs was told to stop
    /// (`rt::Handle::stop`): a hosting loop stops its engine then.
    pub(crate) fn runtime_is_stopping(&self) -> bool {
        self.runtime.is_stopping()
    }

    /// Whether the running task may complete another I/O operation now.
    pub(crate) fn has_budget(&self) -> bool {
        self.budget.get() > 0
    }

    pub(crate) fn spend_budget(&self) {
        self.budget.set(self.budget.get().saturating_sub(1));
    }

    pub(crate) fn schedule(&self, token: Token) {
        if token == ROOT {
            self.root_woken.set(true);
        } else {
            self.run_queue.borrow_mut().push_back(token);
        }
    }

    /// Adds a task to this loop and queues its first poll.
    pub(crate) fn spawn_task(&self, future: LocalFuture, link: &dyn TaskLink) {
        let mut tasks = self.tasks.borrow_mut();
        let token = tasks.next_token();
        let header = Arc::new(TaskHeader {
            token,
            notified: AtomicBool::new(true),
            aborted: AtomicBool::new(false),
            home_id: self.id,
            home: self.shared.clone(),
        });
        link.attach(&header);
        let waker = Waker::from(header.clone());
        tasks.insert(TaskSlot {
            runnable: Some((future, waker)),
            header,
        });
        drop(tasks);
        self.run_queue.borrow_mut().push_back(token);
    }

    pub(crate) fn metrics(&self) -> LoopMetrics {
        let ios = self.ios.borrow();
        LoopMetrics {
            tasks: self.tasks.borrow().len(),
            io_records: ios.len(),
            parked_waiters: ios.values().map(ScheduledIo::parked_waiters).sum(),
            sleeps: self.sleeps.borrow().len(),
        }
    }

    /// How long the loop may sleep for the core's sake: zero if work is
    /// queued, else until its nearest timer (`None`: no timer).
    pub(crate) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.root_woken.get() || self.bulk_pending.get() || !self.run_queue.borrow().is_empty() {
            Some(Duration::ZERO)
        } else {
            self.timers.borrow().next_timeout(now)
        }
    }

    /// Step 2: an event whose token carries `Token::EXECUTOR_FLAG`.
    pub(crate) fn on_event(&self, event: &Event) {
        let raw = event.token();
        if raw == Token::EXECUTOR_WAKER.raw() {
            self.shared.inbox.waker().reset();
            self.inbox_woken();
        } else {
            self.dispatch(
                Token::from_raw(raw & !Token::EXECUTOR_FLAG),
                event.is_readable() || event.is_read_closed(),
                event.is_writable(),
                event.is_read_closed(),
                event.is_error(),
            );
        }
    }

    /// The eventfd this core's inbox wakes has fired (and was reset).
    pub(crate) fn inbox_woken(&self) {
        self.inbox_ready.set(true);
    }

    /// Steps 3 to 5, once the turn's events are handled.
    pub(crate) fn after_events(&self, now: Instant) {
        self.check_stop(now);
        if self.inbox_ready.replace(false) || self.bulk_pending.get() {
            self.drain_inbox();
        }
        self.fire_timers(now);
        self.run_tasks();
    }

    /// One turn of a `block_on` driver (see the module table).
    fn turn(&self, events: &mut Events) -> io::Result<()> {
        self.selector
            .wait(events, self.next_timeout(Instant::now()))?;
        for i in 0..events.len() {
            self.on_event(&events.get(i));
        }
        events.after_wait();
        self.after_events(Instant::now());
        Ok(())
    }

    /// Records readiness on a descriptor and wakes the tasks waiting for it.
    fn dispatch(
        &self,
        token: Token,
        readable: bool,
        writable: bool,
        read_closed: bool,
        error: bool,
    ) {
        let woken = match self.ios.borrow_mut().get_mut(token) {
            Some(record) => record.on_event(readable, writable, read_closed, error),
            // A record released earlier in this batch.
            None => return,
        };
        for waker in woken.into_iter().flatten() {
            waker.wake();
        }
    }

    fn drain_inbox(&self) {
        let more = self.inbox.drain(|message| match message {
            Remote::Wake(token) => self.schedule(token),
            Remote::Spawn(future, link) => self.spawn_task(future, &*link),
            Remote::Release(token, fd) => self.release(token, fd),
        });
        self.bulk_pending.set(more);
    }

    fn fire_timers(&self, now: Instant) {
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            match due {
                None => return,
                Some(TimerKey::Deadline(token, direction, seq)) => {
                    let fired = self
                        .ios
                        .borrow_mut()
                        .get_mut(token)
                        .map(|record| record.deadline_fired(direction, seq, now));
                    match fired {
                        Some(Fired::Expired(Some(waiter))) => waiter.wake(),
                        Some(Fired::Rearm(at, seq)) => self
                            .timers
                            .borrow_mut()
                            .schedule(at, TimerKey::Deadline(token, direction, seq)),
                        _ => {}
                    }
                }
                Some(TimerKey::Sleep(token)) => {
                    let waker = self.sleeps.borrow_mut().remove(token).flatten();
                    if let Some(w) = waker {
                        w.wake();
                    }
                }
                Some(TimerKey::Grace) => self.grace_over.set(true),
            }
        }
    }

    fn run_tasks(&self) {
        for _ in 0..POLLS_PER_TURN {
            let next = self.run_queue.borrow_mut().pop_front();
            match next {
                Some(token) => self.poll_task(token),
                None => return,
            }
        }
    }

    fn poll_task(&self, token: Token) {
        let (mut future, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            // A wake-up for a task that has finished since.
            let Some(slot) = tasks.get_mut(token) else {
                return;
            };
            let Some(runnable) = slot.runnable.take() else {
                return;
            };
            slot.header.notified.store(false, Ordering::Release);
            if slot.header.aborted.load(Ordering::Acquire) {
                let slot = tasks.remove(token);
                drop(tasks);
                // Dropping the future reports the cancellation.
                self.drop_task(runnable.0, slot);
                return;
            }
            runnable
        };
        self.budget.set(COOP_BUDGET);
        let mut cx = Context::from_waker(&waker);
        let outcome = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
        match outcome {
            Ok(Poll::Pending) => {
                if let Some(slot) = self.tasks.borrow_mut().get_mut(token) {
                    slot.runnable = Some((future, waker));
                }
            }
            Ok(Poll::Ready(())) => {
                let slot = self.tasks.borrow_mut().remove(token);
                self.drop_task(future, slot);
            }
            Err(panic) => {
                // The task's own panic and its future's destructor's are
                // caught inside its wrapper; this is another destructor
                // (the output's) that panicked while the task finished.
                let msg = panic_message(&*panic);
                log::error!("netloom: task panicked while finishing: {msg}");
                let slot = self.tasks.borrow_mut().remove(token);
                self.drop_task(future, slot);
            }
        }
    }

    /// Forgets a finished, panicked or aborted task: it is never queued
    /// again, and a destructor that panics does not take the loop down.
    fn drop_task(&self, future: LocalFuture, slot: Option<TaskSlot>) {
        if let Some(slot) = &slot {
            slot.header.notified.store(true, Ordering::Release);
        }
        drop(slot);
        if catch_unwind(AssertUnwindSafe(|| drop(future))).is_err() {
            log::error!("netloom: dropping a task panicked");
        }
    }

    /// Drops every task (their futures first, while the loop is still
    /// installed so their descriptors are released here).
    fn drop_tasks(&self) {
        loop {
            let futures: Vec<_> = {
                let mut tasks = self.tasks.borrow_mut();
                let tokens = tasks.tokens();
                tokens.into_iter().filter_map(|t| tasks.remove(t)).collect()
            };
            if futures.is_empty() {
                return;
            }
            for slot in futures {
                slot.header.notified.store(true, Ordering::Release);
                if catch_unwind(AssertUnwindSafe(|| drop(slot))).is_err() {
                    log::error!("netloom: dropping a task panicked");
                }
            }
        }
    }

    /// Graceful stop: listeners fail their pending `accept` at once, tasks
    /// get `shutdown_grace` to finish.
    fn begin_stop(&self, now: Instant) {
        self.stopping.set(true);
        // Tasks spawned before the stop get the grace period too.
        self.drain_inbox();
        let woken: Vec<Waker> = {
            let mut ios = self.ios.borrow_mut();
            ios.values_mut()
                .filter(|r| r.is_listener())
                .filter_map(|r| r.take_waiter(Direction::Read))
                .collect()
        };
        for w in woken {
            w.wake();
        }
        self.timers
            .borrow_mut()
            .schedule(now + self.runtime.grace, TimerKey::Grace);
    }

    pub(crate) fn check_stop(&self, now: Instant) {
        if !self.stopping.get() && self.runtime.is_stopping() {
            self.begin_stop(now);
        }
    }

    /// Whether a stopping loop may exit for the core's sake: its tasks are
    /// done or the grace period is over.
    pub(crate) fn is_done(&self) -> bool {
        self.stopping.get() && (self.tasks.borrow().len() == 0 || self.grace_over.get())
    }

    /// Drops the tasks left; spawns that arrive from now on fail and are
    /// cancelled by their sender.
    pub(crate) fn finish(&self) {
        self.drop_tasks();
        while self.inbox.drain(drop) {}
    }

    /// A loop of a [`Runtime`](super::Runtime), which has no engine: the
    /// `block_on` driver's turns until the runtime has stopped and the
    /// tasks are done or their grace period is over; what is left is dropped.
    pub(crate) fn run_loop(self: Rc<Self>) -> io::Result<()> {
        let _entered = enter(self.clone());
        let mut events = Events::new();
        while !self.is_done() {
            self.turn(&mut events)?;
        }
        self.finish();
        Ok(())
    }

    /// `block_on`: polls `root` on this thread, running local tasks and I/O
    /// in between, until it completes. Tasks left behind are dropped.
    pub(crate) fn run_root<F: Future>(self: Rc<Self>, root: F) -> F::Output {
        let _entered = enter(self.clone());
        let root_header = Arc::new(TaskHeader {
            token: ROOT,
            notified: AtomicBool::new(true),
            aborted: AtomicBool::new(false),
            home_id: self.id,
            home: self.shared.clone(),
        });
        let waker = Waker::from(root_header.clone());
        let mut cx = Context::from_waker(&waker);
        let mut root = std::pin::pin!(root);
        let mut events = Events::new();
        self.root_woken.set(true);
        let output = loop {
            if self.root_woken.replace(false) {
                root_header.notified.store(false, Ordering::Release);
                self.budget.set(COOP_BUDGET);
                if let Poll::Ready(output) = root.as_mut().poll(&mut cx) {
                    break output;
                }
            }
            if let Err(e) = self.turn(&mut events) {
                panic!("netloom: block_on's poller failed: {e}");
            }
        };
        root_header.notified.store(true, Ordering::Release);
        self.finish();
        output
    }
}
