//! The async front-end: Go's goroutine-per-connection model as one `async`
//! task per connection, on netloom's own poller, descriptor records, timers
//! and inbox.
//!
//! | piece | where | Go's counterpart |
//! |-------|-------|------------------|
//! | [`Runtime`], [`Builder`], [`Handle`] | `rt/mod.rs` | the scheduler's Ms and Ps |
//! | loop-local executor, no stealing | `rt/executor.rs` | a P's run queue |
//! | per-descriptor record, deadlines | `rt/scheduled_io.rs` | `pollDesc`, `rseq`/`wseq` |
//! | [`net`] sockets | `rt/net/` | `net.Conn`, `net.Listener` |
//! | [`sleep`], [`timeout`], [`interval`] | `rt/time.rs` | `time.Sleep`, `time.Ticker` |
//!
//! Each loop hosts a `Core` (a local executor) on its own thread
//! (thread-per-core). A [`Runtime`]'s loops run only their cores; every
//! [`Engine`](crate::Engine) and [`Client`](crate::Client) runs tasks too,
//! each of its event loops hosting a core in its own epoll set:
//! [`Engine::runtime`](crate::Engine::runtime) spawns onto its loops, and a
//! callback may call [`spawn_local`] to run a task on its own loop, beside
//! its connections.
//! A task stays on the loop it was spawned on, so it need not be `Send`
//! ([`spawn_local`]); [`spawn`] places a `Send` task on a loop in turn and
//! [`Handle::spawn_on`] on a chosen one. Sockets register with the loop that
//! first uses them. A task woken from another thread is queued through that
//! loop's inbox, which wakes the loop with one coalesced eventfd write.
//!
//! Rules worth knowing:
//!
//! | rule | why |
//! |------|-----|
//! | a socket is bound to the loop that first uses it; using it from another loop fails with an error | its record lives in that loop's slab, untouched by other threads |
//! | stream reads and writes take `&mut self`; split a stream for a reader task and a writer task | one waiter per direction, as Go's `pollDesc` |
//! | on a shared `&self` socket (listener, UDP), a second task waiting in the same direction gets an error | no waiter list to grow per descriptor |
//! | a task completes at most 128 I/O operations per poll before it yields | a connection that is always ready cannot starve its loop |
//! | `block_on` drops the local tasks it still has when its future completes | its loop lives only as long as the call |
//!
//! ```no_run
//! use netloom::rt::{self, net::TcpListener, Runtime};
//!
//! let rt = Runtime::builder().loops(2).stop_on_signals(true).build()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:9000")?;
//!     loop {
//!         let (mut stream, _) = listener.accept().await?;
//!         rt::spawn(async move {
//!             let mut buf = vec![0; 16 * 1024];
//!             loop {
//!                 let n = stream.read(&mut buf).await?;
//!                 if n == 0 {
//!                     return Ok::<_, std::io::Error>(());
//!                 }
//!                 stream.write_all(&buf[..n]).await?;
//!             }
//!         });
//!     }
//!     #[allow(unreachable_code)]
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(any(feature = "tokio-io", feature = "futures-io"))]
mod compat;
mod executor;
pub mod net;
mod record;
mod scheduled_io;
mod time;

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub(crate) use executor::{enter, Core, CoreSeed};
pub use executor::{AbortHandle, JoinError, JoinHandle, LoopMetrics};
pub use time::{interval, sleep, sleep_until, timeout, Elapsed, Interval, Sleep};

use crate::reactor::group::LoopGroup;
use crate::reactor::inbox::Lane;
use crate::sys::PollerKind;
use crate::unwind::lock;
use crate::Result;
use executor::{with_core, LoopShared, Remote};

/// Runtime settings; build with [`Runtime::builder`].
///
/// ```
/// use std::time::Duration;
/// let rt = netloom::rt::Runtime::builder()
///     .loops(2)
///     .shutdown_grace(Duration::from_secs(1))
///     .build()?;
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    /// The options of the engine the runtime is (one without listeners);
    /// only those the setters below reach are used.
    options: crate::Options,
}

impl Builder {
    /// Number of loop threads; 0 (the default) means one per available core.
    ///
    /// ```
    /// let builder = netloom::rt::Runtime::builder().loops(4);
    /// ```
    pub fn loops(mut self, loops: usize) -> Self {
        self.options = self.options.loops(loops);
        self
    }

    /// Pins loop `i` to core `i % cores`.
    ///
    /// ```
    /// let builder = netloom::rt::Runtime::builder().pin_loops(true);
    /// ```
    pub fn pin_loops(mut self, pin: bool) -> Self {
        self.options = self.options.pin_loops(pin);
        self
    }

    /// Stops the runtime gracefully on SIGINT or SIGTERM (blocks both in
    /// the building thread and the loops, and watches them with a signalfd
    /// on loop 0), as the engine's option of the same name does.
    ///
    /// ```
    /// let builder = netloom::rt::Runtime::builder().stop_on_signals(true);
    /// ```
    pub fn stop_on_signals(mut self, stop: bool) -> Self {
        self.options = self.options.stop_on_signals(stop);
        self
    }

    /// How long tasks may keep running after [`Handle::stop`] before they
    /// are dropped (default 5 s).
    ///
    /// ```
    /// let builder = netloom::rt::Runtime::builder().shutdown_grace(std::time::Duration::ZERO);
    /// ```
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.options = self.options.shutdown_grace(grace);
        self
    }

    /// The kernel interface the loops wait on (as the engine's
    /// [`Options::backend`](crate::Options::backend); default `Auto`).
    ///
    /// ```
    /// let builder = netloom::rt::Runtime::builder().backend(netloom::Backend::Epoll);
    /// ```
    pub fn backend(mut self, backend: crate::Backend) -> Self {
        self.options = self.options.backend(backend);
        self
    }

    /// Takes `loops`, `pin_loops`, `stop_on_signals`, `shutdown_grace` and
    /// `backend` from the engine's [`Options`](crate::Options), so one set
    /// of flags configures either front-end.
    ///
    /// ```
    /// let options = netloom::Options::default().loops(2).pin_loops(true);
    /// let builder = netloom::rt::Runtime::builder().options(&options);
    /// ```
    pub fn options(self, options: &crate::Options) -> Self {
        self.loops(options.loops)
            .pin_loops(options.pin_loops)
            .stop_on_signals(options.stop_on_signals)
            .shutdown_grace(options.shutdown_grace)
            .backend(options.backend)
    }

    /// Starts the loop threads.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for more than 4096 loops;
    /// [`Error::BackendUnavailable`](crate::Error::BackendUnavailable) for a
    /// backend the kernel does not offer; the kernel's error
    /// if a poller, eventfd, signalfd or thread cannot be created.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn build(self) -> Result<Runtime> {
        let options = self.options;
        options.validate()?;
        let loops = match options.loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let poller = crate::sys::resolve_backend(options.backend)?;
        let seeds = (0..loops)
            .map(|_| CoreSeed::standalone(poller))
            .collect::<std::io::Result<Vec<_>>>()?;
        let cores = seeds.iter().map(|seed| seed.shared.clone()).collect();
        let shared = Arc::new(RuntimeShared::new(cores, options.shutdown_grace, poller));
        let (signals, stop_signals) = if options.stop_on_signals {
            let (fd, blocked) = crate::sys::signal::block_stop_signals()?;
            (Some(fd), Some(blocked))
        } else {
            (None, None)
        };
        // A runtime's loops serve no callback connections: nothing counts.
        let counters = (0..loops).map(|_| Arc::default()).collect();
        let wakers = seeds.iter().map(CoreSeed::waker).collect();
        let group = Arc::new(LoopGroup::new(wakers, counters));
        let (runtime, pin) = (shared.clone(), options.pin_loops);
        group.spawn(
            seeds.into_iter().enumerate().collect(),
            move |(index, seed)| {
                if pin {
                    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                    if let Err(e) = crate::sys::socket::pin_current_thread(index % cores) {
                        log::warn!("netloom: runtime loop {index}: pinning failed: {e}");
                    }
                }
                Ok(Rc::new(Core::new(seed, runtime.clone())).run_loop()?)
            },
        )?;
        if let Some(fd) = signals {
            shared.spawn_on(0, stop_on_signal(fd, Handle::from(shared.clone())));
        }
        Ok(Runtime {
            group,
            shared,
            stop_signals,
        })
    }
}

/// Stops the runtime at the first SIGINT or SIGTERM, read from the
/// signalfd `fd` by a task like any other descriptor.
async fn stop_on_signal(fd: std::os::fd::OwnedFd, runtime: Handle) {
    let source = scheduled_io::IoSource::new(fd);
    let signal = scheduled_io::IoOp::new(
        &source,
        scheduled_io::Direction::Read,
        scheduled_io::Waiter::shared(),
        |fd: &std::os::fd::OwnedFd| crate::sys::signal::take_signal(fd),
        |_: &()| false,
    );
    match signal.await {
        Ok(()) => log::info!("netloom: stop signal received, shutting down"),
        Err(e) => log::error!("netloom: watching stop signals failed: {e}"),
    }
    runtime.stop();
}

/// What every loop of one runtime shares.
pub(crate) struct RuntimeShared {
    loops: Vec<Arc<LoopShared>>,
    /// `block_on` drivers running now (woken on stop too).
    drivers: Mutex<Vec<Weak<LoopShared>>>,
    stopping: AtomicBool,
    stop_waiters: Mutex<Vec<Waker>>,
    next_loop: AtomicUsize,
    pub(crate) grace: Duration,
    /// The poller of the loops, and of `block_on`'s drivers.
    poller: PollerKind,
}

impl RuntimeShared {
    /// The runtime of an engine whose loops host these cores.
    pub(crate) fn new(
        loops: Vec<Arc<LoopShared>>,
        grace: Duration,
        poller: PollerKind,
    ) -> RuntimeShared {
        RuntimeShared {
            poller,
            loops,
            drivers: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            stop_waiters: Mutex::new(Vec::new()),
            next_loop: AtomicUsize::new(0),
            grace,
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let drivers: Vec<_> = lock(&self.drivers)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for lp in self.loops.iter().chain(&drivers) {
            if let Err(e) = lp.inbox.waker().wake() {
                log::error!("netloom: waking a runtime loop to stop failed: {e}");
            }
        }
        let waiters = std::mem::take(&mut *lock(&self.stop_waiters));
        for w in waiters {
            w.wake();
        }
    }

    fn spawn_on<F>(&self, index: usize, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let target = &self.loops[index % self.loops.len()];
        let (task, state) = executor::wrap(future);
        let handle = executor::join_handle(state.clone());
        let task = Box::pin(task);
        let local = with_core(|core| core.id() == target.id).unwrap_or(false);
        if local {
            with_core(|core| core.spawn_task(task, &*state));
        } else if let Err(message) = target
            .inbox
            .send(Lane::Bulk, Remote::Spawn(task, state.clone()))
        {
            // The loop has exited: dropping the task marks it cancelled.
            drop(message);
        }
        handle
    }

    fn pick_loop(&self) -> usize {
        self.next_loop.fetch_add(1, Ordering::Relaxed) % self.loops.len()
    }
}

/// A running set of loops. Dropping it shuts it down (see
/// [`Runtime::shutdown`]).
///
/// ```
/// let rt = netloom::rt::Runtime::builder().loops(2).build()?;
/// let answer = rt.block_on(async { rt.spawn(async { 6 * 7 }).await });
/// assert_eq!(answer, Ok(42));
/// rt.shutdown();
/// # Ok::<(), netloom::Error>(())
/// ```
pub struct Runtime {
    /// The loop threads.
    group: Arc<LoopGroup>,
    shared: Arc<RuntimeShared>,
    /// SIGINT/SIGTERM blocked in the building thread (`stop_on_signals`),
    /// unblocked there once the loops are joined.
    stop_signals: Option<crate::sys::signal::BlockedStopSignals>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("loops", &self.shared().loops.len())
            .finish()
    }
}

impl Runtime {
    /// A builder with default settings (one loop per core).
    ///
    /// ```
    /// let builder = netloom::rt::Runtime::builder();
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A handle for spawning and stopping from anywhere.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.handle();
    /// std::thread::spawn(move || handle.stop());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn handle(&self) -> Handle {
        self.shared.clone().into()
    }

    fn shared(&self) -> &Arc<RuntimeShared> {
        &self.shared
    }

    /// Number of loop threads.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(3).build()?;
    /// assert_eq!(rt.loops(), 3);
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn loops(&self) -> usize {
        self.shared().loops.len()
    }

    /// Runs `future` to completion on the calling thread, which becomes a
    /// loop of its own for as long as it runs: sockets first used in it
    /// register here, [`spawn_local`] puts tasks here, [`spawn`] puts them
    /// on the runtime's loops. Local tasks still running when `future`
    /// completes are dropped.
    ///
    /// # Panics
    /// If called on a runtime loop (inside another `block_on` or a task), or
    /// if this thread's poller fails.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let n = rt.block_on(async {
    ///     netloom::rt::sleep(std::time::Duration::from_millis(1)).await;
    ///     5
    /// });
    /// assert_eq!(n, 5);
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle().block_on(future)
    }

    /// Spawns a `Send` task on the next loop in turn.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(2).build()?;
    /// let handle = rt.spawn(async { "done" });
    /// assert_eq!(rt.block_on(handle), Ok("done"));
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(future)
    }

    /// Spawns a `Send` task on loop `index % loops`.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(2).build()?;
    /// let handle = rt.spawn_on(1, async { 1 });
    /// assert_eq!(rt.block_on(handle), Ok(1));
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn spawn_on<F>(&self, index: usize, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared().spawn_on(index, future)
    }

    /// Begins a graceful stop (see [`Handle::stop`]) and returns at once.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// rt.stop();
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Stops gracefully and waits for every loop thread: listeners fail
    /// their pending `accept` at once, tasks get the shutdown grace period
    /// to finish, and those still running then are dropped (their
    /// [`JoinHandle`]s report [`JoinError::Cancelled`]).
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// rt.spawn(async { netloom::rt::sleep(std::time::Duration::from_secs(60)).await });
    /// rt.shutdown(); // returns after the grace period (5 s by default)
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shared.stop();
        // Dropped by one of its own tasks: the loops exit on their own.
        let on_own_loop = with_core(|core| Arc::ptr_eq(core.runtime(), self.shared()));
        if on_own_loop == Some(true) {
            return;
        }
        if let Err(e) = self.group.wait() {
            log::error!("netloom: a runtime loop failed: {e}");
        }
        self.stop_signals = None;
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A cheap, `Send + Sync` reference to a runtime.
///
/// ```
/// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let handle = rt.handle();
/// let t = std::thread::spawn(move || handle.block_on(async { 3 }));
/// assert_eq!(t.join().unwrap(), 3);
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<RuntimeShared>,
}

impl From<Arc<RuntimeShared>> for Handle {
    fn from(shared: Arc<RuntimeShared>) -> Handle {
        Handle { shared }
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("loops", &self.shared.loops.len())
            .finish()
    }
}

impl Handle {
    /// The runtime of the loop this code runs on.
    ///
    /// # Panics
    /// Off any runtime loop.
    ///
    /// ```
    /// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let loops = rt.block_on(async { netloom::rt::Handle::current().loops() });
    /// assert_eq!(loops, 1);
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn current() -> Handle {
        Handle::try_current().expect("netloom: not on a runtime loop")
    }

    /// [`Handle::current`], or `None` off any runtime loop.
    ///
    /// ```
    /// assert!(netloom::rt::Handle::try_current().is_none());
    /// ```
    pub fn try_current() -> Option<Handle> {
        with_core(|core| Handle {
            shared: core.runtime().clone(),
        })
    }

    /// Number of loop threads.
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(2).build()?;
    /// assert_eq!(rt.handle().loops(), 2);
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn loops(&self) -> usize {
        self.shared.loops.len()
    }

    /// As [`Runtime::block_on`].
    ///
    /// # Panics
    /// As [`Runtime::block_on`].
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// assert_eq!(rt.handle().block_on(async { 1 }), 1);
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert!(
            with_core(|_| ()).is_none(),
            "netloom: block_on called on a runtime loop"
        );
        let seed = CoreSeed::standalone(self.shared.poller)
            .unwrap_or_else(|e| panic!("netloom: block_on cannot create its poller: {e}"));
        let driver = seed.shared.clone();
        lock(&self.shared.drivers).push(Arc::downgrade(&driver));
        let core = Core::new(seed, self.shared.clone());
        // Unlisted even if `future` panics.
        struct Unlist<'a>(&'a RuntimeShared, Arc<LoopShared>);
        impl Drop for Unlist<'_> {
            fn drop(&mut self) {
                lock(&self.0.drivers)
                    .retain(|d| d.upgrade().is_some_and(|d| !Arc::ptr_eq(&d, &self.1)));
            }
        }
        let _unlist = Unlist(&self.shared, driver);
        Rc::new(core).run_root(future)
    }

    /// As [`Runtime::spawn`].
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.handle().spawn(async { 2 });
    /// assert_eq!(rt.block_on(handle), Ok(2));
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn_on(self.shared.pick_loop(), future)
    }

    /// As [`Runtime::spawn_on`].
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(2).build()?;
    /// let handle = rt.handle().spawn_on(0, async { 0 });
    /// assert_eq!(rt.block_on(handle), Ok(0));
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn spawn_on<F>(&self, index: usize, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn_on(index, future)
    }

    /// Begins a graceful stop from any thread: pending and later `accept`s
    /// fail at once, tasks get the shutdown grace period to finish, then
    /// each loop drops what is left and exits. Calling it again does
    /// nothing.
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// rt.handle().stop();
    /// assert!(rt.handle().is_stopping());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Whether [`Handle::stop`] was called (or a stop signal arrived).
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// assert!(!rt.handle().is_stopping());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.shared.is_stopping()
    }

    /// Completes once the runtime begins to stop.
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let handle = rt.handle();
    /// handle.stop();
    /// rt.block_on(handle.stopped());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn stopped(&self) -> Stopped {
        Stopped {
            shared: self.shared.clone(),
        }
    }
}

/// The future of [`Handle::stopped`].
///
/// ```
/// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let stopped: netloom::rt::Stopped = rt.handle().stopped();
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Stopped {
    shared: Arc<RuntimeShared>,
}

impl std::fmt::Debug for RuntimeShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeShared")
            .field("stopping", &self.is_stopping())
            .finish()
    }
}

impl Future for Stopped {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.is_stopping() {
            return Poll::Ready(());
        }
        {
            let mut waiters = lock(&self.shared.stop_waiters);
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
        }
        // `stop` may have taken the list just before the push.
        if self.shared.is_stopping() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Spawns a `Send` task on the current runtime's next loop in turn.
///
/// # Panics
/// Off any runtime loop (use [`Runtime::spawn`] or [`Handle::spawn`] there).
///
/// ```
/// let rt = netloom::rt::Runtime::builder().loops(2).build()?;
/// let out = rt.block_on(async { netloom::rt::spawn(async { 9 }).await });
/// assert_eq!(out, Ok(9));
/// # Ok::<(), netloom::Error>(())
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Handle::current().spawn(future)
}

/// Spawns a task on the current loop; it never leaves it, so it need not be
/// `Send`.
///
/// # Panics
/// Off any runtime loop.
///
/// ```
/// use std::rc::Rc;
/// let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let out = rt.block_on(async {
///     let shared = Rc::new(5); // !Send
///     netloom::rt::spawn_local(async move { *shared + 1 }).await
/// });
/// assert_eq!(out, Ok(6));
/// # Ok::<(), netloom::Error>(())
/// ```
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (task, state) = executor::wrap(future);
    let handle = executor::join_handle(state.clone());
    with_core(|core| core.spawn_task(Box::pin(task), &*state))
        .expect("netloom: spawn_local called off a runtime loop");
    handle
}

/// Counts of the current loop's tasks, descriptor records, parked wakers
/// and sleeps; `None` off any runtime loop.
///
/// ```
/// assert!(netloom::rt::metrics().is_none());
/// ```
pub fn metrics() -> Option<LoopMetrics> {
    with_core(Core::metrics)
}
