//! The engine: options, listeners, loop start-up and shutdown.

mod addr;
mod balancer;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

pub(crate) use addr::ListenAddr;
pub use balancer::LoadBalancer;

use crate::event_loop::{EventLoop, LoopSeed, Peers};
use crate::inbox::inbox;
use crate::sys::{socket, Interest, Selector, Trigger, Waker};
use crate::token::Token;
use crate::{Action, Error, Handler, Result};

/// Engine settings. Every setter returns the options, so they chain.
///
/// ```
/// use std::time::Duration;
/// let options = netloom::Options::default()
///     .loops(2)
///     .reuseport(true)
///     .idle_timeout(Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) loops: usize,
    pub(crate) reuseport: bool,
    pub(crate) load_balancer: LoadBalancer,
    pub(crate) pin_loops: bool,
    pub(crate) ticker: bool,
    pub(crate) stop_on_signals: bool,
    pub(crate) read_buffer_size: usize,
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) async_write_cap: usize,
    pub(crate) max_inbound: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) tcp_nodelay: bool,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) backlog: Option<i32>,
    pub(crate) connect_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            loops: 0,
            reuseport: false,
            load_balancer: LoadBalancer::RoundRobin,
            pin_loops: false,
            ticker: false,
            stop_on_signals: false,
            read_buffer_size: 64 * 1024,
            high_water: 256 * 1024,
            low_water: 64 * 1024,
            async_write_cap: 4 * 1024 * 1024,
            max_inbound: 16 * 1024 * 1024,
            idle_timeout: None,
            close_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            tcp_nodelay: true,
            tcp_keepalive: None,
            backlog: None,
            connect_timeout: Some(Duration::from_secs(10)),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl Options {
    setter!(
        /// Number of event loops; 0 (the default) means one per available core.
        loops: usize
    );
    setter!(
        /// One listener per loop with `SO_REUSEPORT` (the kernel spreads
        /// connections) instead of one acceptor on loop 0 that hands them out.
        reuseport: bool
    );
    setter!(
        /// How the acceptor picks a loop (acceptor topology only).
        load_balancer: LoadBalancer
    );
    setter!(
        /// Pins loop `i` to core `i % cores`.
        pin_loops: bool
    );
    setter!(
        /// Calls [`Handler::on_tick`] on loop 0, first right after start.
        ticker: bool
    );
    setter!(
        /// Stops the engine gracefully on SIGINT or SIGTERM (blocks both
        /// signals in the starting thread and the loops, and watches them with
        /// a signalfd on loop 0).
        stop_on_signals: bool
    );
    setter!(
        /// Size of each loop's shared read buffer: the most one read takes.
        read_buffer_size: usize
    );
    setter!(
        /// Outbound bytes above which the loop stops reading the connection.
        high_water: usize
    );
    setter!(
        /// Outbound bytes at or below which reading resumes.
        low_water: usize
    );
    setter!(
        /// Hard cap on a connection's pending bytes for `ConnHandle` writes.
        async_write_cap: usize
    );
    setter!(
        /// Most unconsumed inbound bytes a connection may hold; past it the
        /// connection closes with [`Error::InboundOverflow`].
        max_inbound: usize
    );
    setter!(
        /// Closes connections with no traffic (read or written) for this long.
        idle_timeout: Option<Duration>
    );
    setter!(
        /// How long a closing connection may take to flush before it is dropped.
        close_timeout: Duration
    );
    setter!(
        /// How long [`Engine::stop`] waits for outbound data to flush.
        shutdown_grace: Duration
    );
    setter!(
        /// `TCP_NODELAY` on accepted connections (default on).
        tcp_nodelay: bool
    );
    setter!(
        /// TCP keep-alive idle time on accepted connections (default off).
        tcp_keepalive: Option<Duration>
    );
    setter!(
        /// The listen backlog; `None` uses the kernel's `somaxconn`.
        backlog: Option<i32>
    );
    setter!(
        /// How long an outbound connect may take before it fails with
        /// `Error::ConnectTimeout` (default 10 s; `None`: the kernel's own
        /// limit, minutes). Applies to `Client::dial`.
        ///
        /// ```
        /// # use std::time::Duration;
        /// let options = netloom::Options::default().connect_timeout(Some(Duration::from_secs(2)));
        /// ```
        connect_timeout: Option<Duration>
    );

    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidOption(what.to_string()));
        if self.loops > 4096 {
            return bad("loops must be at most 4096");
        }
        if self.read_buffer_size < 512 {
            return bad("read_buffer_size must be at least 512 bytes");
        }
        if self.high_water == 0 || self.low_water > self.high_water {
            return bad("need 0 < high_water and low_water <= high_water");
        }
        if self.max_inbound == 0 {
            return bad("max_inbound must be positive");
        }
        if self.async_write_cap == 0 {
            return bad("async_write_cap must be positive");
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return bad("idle_timeout must be positive (None disables it)");
        }
        if matches!(self.backlog, Some(b) if b <= 0) {
            return bad("backlog must be positive");
        }
        Ok(())
    }
}

/// Starts an engine on `addr` and blocks until it has stopped.
///
/// # Errors
/// Invalid options or addresses, and bind failures, before anything runs;
/// a fatal poller error while running.
///
/// ```no_run
/// # struct Echo;
/// # impl netloom::Handler for Echo {
/// #     type Context = ();
/// #     fn on_traffic(&self, c: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
/// # }
/// netloom::run(Echo, "tcp://127.0.0.1:9000", netloom::Options::default().loops(1))?;
/// # Ok::<(), netloom::Error>(())
/// ```
pub fn run<H: Handler>(handler: H, addr: &str, options: Options) -> Result<()> {
    Engine::builder().bind(addr).options(options).run(handler)
}

/// Builds an engine from addresses and [`Options`].
///
/// ```no_run
/// # struct Echo;
/// # impl netloom::Handler for Echo {
/// #     type Context = ();
/// #     fn on_traffic(&self, c: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
/// # }
/// let engine = netloom::Engine::builder()
///     .bind("tcp://127.0.0.1:9000")
///     .bind("tcp6://[::1]:9000")
///     .options(netloom::Options::default().loops(2))
///     .start(Echo)?;
/// println!("listening on {:?}", engine.local_addrs());
/// engine.wait()?;
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct EngineBuilder {
    addrs: Vec<String>,
    options: Options,
}

impl EngineBuilder {
    /// Adds an address to listen on (`tcp://`, `tcp4://` or `tcp6://`).
    ///
    /// ```
    /// let builder = netloom::Engine::builder().bind("tcp://127.0.0.1:0");
    /// ```
    pub fn bind(mut self, addr: &str) -> Self {
        self.addrs.push(addr.to_string());
        self
    }

    /// Replaces the options.
    ///
    /// ```
    /// let builder = netloom::Engine::builder().options(netloom::Options::default().loops(1));
    /// ```
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Binds, calls `on_boot`, starts the loops and returns at once.
    ///
    /// # Errors
    /// [`Error::UnknownScheme`], [`Error::InvalidAddress`],
    /// [`Error::InvalidOption`], or the kernel's error from binding.
    ///
    /// ```
    /// # struct Quiet;
    /// # impl netloom::Handler for Quiet {
    /// #     type Context = ();
    /// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
    /// # }
    /// let engine = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(Quiet)?;
    /// engine.stop();
    /// engine.wait()?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn start<H: Handler>(self, handler: H) -> Result<Engine> {
        start(self, handler)
    }

    /// [`EngineBuilder::start`], then [`Engine::wait`].
    ///
    /// # Errors
    /// As `start` and `wait`.
    ///
    /// ```no_run
    /// # struct Quiet;
    /// # impl netloom::Handler for Quiet {
    /// #     type Context = ();
    /// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
    /// # }
    /// netloom::Engine::builder().bind("tcp://127.0.0.1:9000").run(Quiet)?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn run<H: Handler>(self, handler: H) -> Result<()> {
        self.start(handler)?.wait()
    }
}

/// A running engine. Cheap to clone; `Send + Sync`.
///
/// ```
/// # struct Quiet;
/// # impl netloom::Handler for Quiet {
/// #     type Context = ();
/// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
/// # }
/// let engine = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(Quiet)?;
/// let remote = engine.clone();
/// std::thread::spawn(move || remote.stop());
/// engine.wait()?;
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    stopping: AtomicBool,
    wakers: Vec<Arc<Waker>>,
    /// Open connections per loop (counted from the moment one is assigned).
    pub(crate) loads: Vec<AtomicUsize>,
    local_addrs: Vec<SocketAddr>,
    threads: Mutex<Vec<JoinHandle<Result<()>>>>,
    pub(crate) live_loops: AtomicUsize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("local_addrs", &self.inner.local_addrs)
            .field("loops", &self.inner.wakers.len())
            .finish()
    }
}

impl Engine {
    /// A builder with default options and no address.
    ///
    /// ```
    /// let builder = netloom::Engine::builder();
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Stops gracefully, from any thread: listeners close at once, every
    /// connection flushes its outbound bytes (within `shutdown_grace`) and is
    /// closed with `on_close`, then `on_shutdown` runs once and [`Engine::wait`]
    /// returns. Calling it again does nothing.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// engine.stop();
    /// # }
    /// ```
    pub fn stop(&self) {
        if !self.inner.stopping.swap(true, Ordering::SeqCst) {
            for waker in &self.inner.wakers {
                if let Err(e) = waker.wake() {
                    log::error!("netloom: waking a loop to stop failed: {e}");
                }
            }
        }
    }

    /// Whether [`Engine::stop`] was called.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// assert!(!engine.is_stopping());
    /// # }
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    /// The bound address of each `bind`, in order (port 0 resolved).
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// let port = engine.local_addrs()[0].port();
    /// # }
    /// ```
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.inner.local_addrs
    }

    /// Number of event loops.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// println!("{} loops", engine.loops());
    /// # }
    /// ```
    pub fn loops(&self) -> usize {
        self.inner.wakers.len()
    }

    /// Open connections over all loops.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// println!("{} connections", engine.conn_count());
    /// # }
    /// ```
    pub fn conn_count(&self) -> usize {
        self.inner
            .loads
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .sum()
    }

    /// Open connections on each loop.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// let per_loop: Vec<usize> = engine.conn_counts();
    /// # }
    /// ```
    pub fn conn_counts(&self) -> Vec<usize> {
        self.inner
            .loads
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect()
    }

    /// Blocks until every loop has exited and `on_shutdown` has returned.
    /// Later calls return at once.
    ///
    /// # Errors
    /// The first fatal error of a loop (a failing `epoll_wait`, a panicking
    /// loop thread).
    ///
    /// ```no_run
    /// # fn f(engine: netloom::Engine) -> netloom::Result<()> {
    /// engine.wait()?;
    /// # Ok(()) }
    /// ```
    pub fn wait(&self) -> Result<()> {
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let mut first_error = None;
        for t in threads {
            let outcome = t.join().unwrap_or_else(|_| {
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
}

fn start<H: Handler>(builder: EngineBuilder, handler: H) -> Result<Engine> {
    if builder.addrs.is_empty() {
        return Err(Error::InvalidOption("no address to listen on".into()));
    }
    launch(&builder.addrs, builder.options, handler).map(|(engine, _)| engine)
}

/// Binds `addrs` (none for a client), starts the loops and returns the
/// engine with every loop's inbox.
pub(crate) fn launch<H: Handler>(
    addrs: &[String],
    options: Options,
    handler: H,
) -> Result<(Engine, Peers<H::Context>)> {
    options.validate()?;
    let addrs = addrs
        .iter()
        .map(|a| ListenAddr::parse(a))
        .collect::<Result<Vec<_>>>()?;
    let loops = match options.loops {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    // Listeners: per loop with SO_REUSEPORT, else all on loop 0 (the acceptor).
    let mut listeners: Vec<Vec<TcpListener>> = (0..loops).map(|_| Vec::new()).collect();
    let mut local_addrs = Vec::new();
    for addr in &addrs {
        let first = bind_listener(addr, addr.addr, &options)?;
        let bound = first.local_addr()?;
        local_addrs.push(bound);
        listeners[0].push(first);
        if options.reuseport {
            for per_loop in listeners.iter_mut().skip(1) {
                per_loop.push(bind_listener(addr, bound, &options)?);
            }
        }
    }

    let mut signal_fd = if options.stop_on_signals {
        Some(block_stop_signals()?)
    } else {
        None
    };

    let mut seeds = Vec::with_capacity(loops);
    let mut senders = Vec::with_capacity(loops);
    let mut wakers = Vec::with_capacity(loops);
    for (index, loop_listeners) in listeners.into_iter().enumerate() {
        let selector = Selector::new()?;
        let waker = Arc::new(Waker::new()?);
        selector.register(
            waker.as_raw_fd(),
            Token::WAKER.raw(),
            Interest::READABLE,
            Trigger::Level,
        )?;
        let (tx, rx) = inbox(waker.clone());
        senders.push(Arc::new(tx));
        wakers.push(waker);
        seeds.push(LoopSeed {
            index,
            selector,
            inbox: rx,
            listeners: loop_listeners,
            signal_fd: signal_fd.take(),
        });
    }

    let engine = Engine {
        inner: Arc::new(EngineInner {
            stopping: AtomicBool::new(false),
            wakers,
            loads: (0..loops).map(|_| AtomicUsize::new(0)).collect(),
            local_addrs,
            threads: Mutex::new(Vec::new()),
            live_loops: AtomicUsize::new(loops),
        }),
    };

    let handler = Arc::new(handler);
    if handler.on_boot(&engine) == Action::Shutdown {
        engine.stop();
    }
    let senders: Peers<H::Context> = senders.into();
    let options = Arc::new(options);
    let mut threads = Vec::with_capacity(loops);
    for seed in seeds {
        let (handler, engine2, senders, options) = (
            handler.clone(),
            engine.clone(),
            senders.clone(),
            options.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("netloom-loop-{}", seed.index))
            .spawn(move || EventLoop::new(seed, handler, engine2, senders, options).run());
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                // Loops already started must not outlive a failed start.
                engine.stop();
                *engine
                    .inner
                    .threads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = threads;
                let _ = engine.wait();
                return Err(Error::Io(e));
            }
        }
    }
    *engine
        .inner
        .threads
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = threads;
    Ok((engine, senders))
}

fn bind_listener(addr: &ListenAddr, at: SocketAddr, options: &Options) -> Result<TcpListener> {
    let bind_error = |e: std::io::Error| Error::InvalidAddress {
        addr: at.to_string(),
        reason: format!("cannot listen: {e}"),
    };
    let socket = Socket::new(
        Domain::for_address(at),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if options.reuseport {
        socket.set_reuse_port(true)?;
    }
    if at.is_ipv6() {
        socket.set_only_v6(addr.v6_only)?;
    }
    socket.bind(&at.into()).map_err(bind_error)?;
    socket
        .listen(options.backlog.unwrap_or_else(socket::somaxconn))
        .map_err(bind_error)?;
    Ok(socket.into())
}

/// Blocks SIGINT and SIGTERM and returns a signalfd that reports them.
fn block_stop_signals() -> Result<OwnedFd> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the mask is
    // changed for the calling thread only, and the loops spawned after this
    // inherit it, so SIGINT/SIGTERM are delivered only through the signalfd.
    let fd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(Error::Io(std::io::Error::from_raw_os_error(rc)));
        }
        libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(Error::Io(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a new signalfd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
