//! The engine, the callback front door: binds its addresses, starts the
//! callback loops (which host the async executors too) with a [`Handler`]
//! bound to it, and stops them.

mod handler;

pub use handler::Handler;

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::Socket;

use crate::event_loop::{Callbacks, EventLoop, LoopConfig, LoopSeed, Peers};
use crate::listen::{self, ListenAddr, Listener};
use crate::reactor::group::LoopGroup;
use crate::reactor::inbox::inbox;
use crate::reactor::token::Token;
use crate::rt::{CoreSeed, RuntimeShared};
use crate::sys::signal::BlockedStopSignals;
use crate::sys::{Interest, Selector, Trigger, Waker};
use crate::unwind::lock;
use crate::{Action, Addr, Conn, Error, Options, Result, Transport};

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
    binds: Vec<Bind>,
    options: Options,
}

/// One address to serve, and how.
#[derive(Debug)]
pub(crate) struct Bind {
    addr: String,
    /// Connections accepted there speak TLS.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    tls: Option<crate::tls::TlsAcceptor>,
}

impl EngineBuilder {
    /// Adds an address to serve: `tcp://`, `tcp4://`, `tcp6://`, `udp://`,
    /// `udp4://`, `udp6://` (`host:port`), `unix:///path/to/socket` or
    /// `unix://@abstract-name`. One engine serves any mix of them on the
    /// same loops.
    ///
    /// ```
    /// let builder = netloom::Engine::builder().bind("tcp://127.0.0.1:0");
    /// ```
    pub fn bind(mut self, addr: &str) -> Self {
        self.binds.push(Bind {
            addr: addr.to_string(),
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            tls: None,
        });
        self
    }

    /// Adds a TLS address (feature `tls`): a `tcp://` or `unix://` URL as
    /// for [`bind`](EngineBuilder::bind), whose connections run a TLS
    /// handshake through `acceptor` before `on_open` (bounded by
    /// `Options::tls_handshake_timeout`). The handler then reads and writes
    /// plaintext, as on a plain address; [`Conn::tls`] tells what was
    /// negotiated. Plain and TLS addresses mix in one engine.
    /// [`TlsAcceptor::reload`](crate::tls::TlsAcceptor::reload) affects
    /// the handshakes that start afterwards.
    ///
    /// A handshake that fails (a bad certificate, garbage, no common
    /// protocol, the timeout) closes the connection with only `on_close`,
    /// whose error says why, as a failed dial does.
    ///
    /// ```
    /// use netloom::tls::{TlsAcceptor, TlsServerConfig};
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// let acceptor = TlsAcceptor::new(TlsServerConfig::from_pem(
    ///     cert.cert.pem().as_bytes(),
    ///     cert.key_pair.serialize_pem().as_bytes(),
    /// )?)?;
    /// let builder = netloom::Engine::builder()
    ///     .bind("tcp://127.0.0.1:0")
    ///     .bind_tls("tcp://127.0.0.1:0", acceptor);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn bind_tls(mut self, addr: &str, acceptor: crate::tls::TlsAcceptor) -> Self {
        self.binds.push(Bind {
            addr: addr.to_string(),
            tls: Some(acceptor),
        });
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
    /// The loops: their stop flag, connection counts and threads.
    pub(crate) group: Arc<LoopGroup>,
    /// The executors the loops host (see [`Engine::runtime`]).
    pub(crate) runtime: Arc<RuntimeShared>,
    local_addrs: Arc<[Addr]>,
    /// SIGINT/SIGTERM blocked in the starting thread (`stop_on_signals`),
    /// unblocked when `wait` returns there.
    stop_signals: Arc<Mutex<Option<BlockedStopSignals>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("local_addrs", &self.local_addrs)
            .field("loops", &self.group.loops())
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
        if self.group.stop() {
            self.runtime.stop();
        }
    }

    /// A handle on the executors the engine's loops run: async tasks
    /// spawned through it run on these loops, beside the connections, and
    /// stop with the engine (they get the same
    /// [`shutdown_grace`](Options::shutdown_grace)). Inside a callback,
    /// [`rt::spawn_local`](crate::rt::spawn_local) puts a task on the
    /// callback's own loop.
    ///
    /// ```
    /// # struct Quiet;
    /// # impl netloom::Handler for Quiet {
    /// #     type Context = ();
    /// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
    /// # }
    /// let engine = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(Quiet)?;
    /// let task = engine.runtime().spawn_on(0, async { 6 * 7 });
    /// let answer = engine.runtime().block_on(task);
    /// assert_eq!(answer, Ok(42));
    /// engine.stop();
    /// engine.wait()?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn runtime(&self) -> crate::rt::Handle {
        self.runtime.clone().into()
    }

    /// Whether [`Engine::stop`] was called.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// assert!(!engine.is_stopping());
    /// # }
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.group.is_stopping()
    }

    /// The bound address of each `bind`, in order (port 0 resolved).
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// let port = engine.local_addrs()[0].inet().map(|a| a.port());
    /// # }
    /// ```
    pub fn local_addrs(&self) -> &[Addr] {
        &self.local_addrs
    }

    /// Number of event loops.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// println!("{} loops", engine.loops());
    /// # }
    /// ```
    pub fn loops(&self) -> usize {
        self.group.loops()
    }

    /// Open connections over all loops.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// println!("{} connections", engine.conn_count());
    /// # }
    /// ```
    pub fn conn_count(&self) -> usize {
        self.group.conn_counts().sum()
    }

    /// Open connections on each loop.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// let per_loop: Vec<usize> = engine.conn_counts();
    /// # }
    /// ```
    pub fn conn_counts(&self) -> Vec<usize> {
        self.group.conn_counts().collect()
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
        let outcome = self.group.wait();
        // A signal mask belongs to its thread: only the starting thread can
        // get SIGINT/SIGTERM back.
        let mut blocked = lock(&self.stop_signals);
        if blocked
            .as_ref()
            .is_some_and(BlockedStopSignals::is_current_thread)
        {
            *blocked = None;
        }
        outcome
    }
}

fn start<H: Handler>(builder: EngineBuilder, handler: H) -> Result<Engine> {
    if builder.binds.is_empty() {
        return Err(Error::InvalidOption("no address to listen on".into()));
    }
    launch(&builder.binds, builder.options, handler).map(|(engine, _)| engine)
}

/// Binds `binds` (none for a client), starts the loops and returns the
/// engine with every loop's inbox.
pub(crate) fn launch<H: Handler>(
    binds: &[Bind],
    options: Options,
    handler: H,
) -> Result<(Engine, Peers<H::Context>)> {
    options.validate()?;
    let addrs = binds
        .iter()
        .map(|b| ListenAddr::parse(&b.addr))
        .collect::<Result<Vec<_>>>()?;
    let loops = match options.loops {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    // Listeners: per loop with SO_REUSEPORT, else all on loop 0 (the
    // acceptor). UDP sockets: one per loop (SO_REUSEPORT), or one on loop 0
    // for a multicast group.
    let mut listeners: Vec<Vec<Listener>> = (0..loops).map(|_| Vec::new()).collect();
    let mut datagram_sockets: Vec<Vec<Socket>> = (0..loops).map(|_| Vec::new()).collect();
    let mut local_addrs = Vec::new();
    for (addr, _bind) in addrs.iter().zip(binds) {
        let at = if addr.transport() == Transport::Udp {
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            if _bind.tls.is_some() {
                return Err(Error::InvalidOption(format!(
                    "{}: TLS needs a stream address (tcp:// or unix://)",
                    _bind.addr
                )));
            }
            let (bound, at) = listen::bind_udp(addr, loops, &options)?;
            for (per_loop, socket) in datagram_sockets.iter_mut().zip(bound) {
                per_loop.push(socket);
            }
            at
        } else {
            #[allow(unused_mut)]
            let (mut bound, at) = listen::bind_stream(addr, loops, &options)?;
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            for listener in &mut bound {
                listener.tls = _bind.tls.clone();
            }
            for (per_loop, listener) in listeners.iter_mut().zip(bound) {
                per_loop.push(listener);
            }
            at
        };
        local_addrs.push(at);
    }

    let (mut signal_fd, stop_signals) = if options.stop_on_signals {
        let (fd, blocked) = crate::sys::signal::block_stop_signals()?;
        (Some(fd), Some(blocked))
    } else {
        (None, None)
    };

    let poller = crate::sys::resolve_backend(options.backend)?;
    let mut seeds = Vec::with_capacity(loops);
    let mut senders = Vec::with_capacity(loops);
    let mut wakers = Vec::with_capacity(loops);
    let mut cores = Vec::with_capacity(loops);
    let per_loop = listeners.into_iter().zip(datagram_sockets);
    for (index, (loop_listeners, loop_datagram_sockets)) in per_loop.enumerate() {
        let selector = Selector::open(poller)?;
        let waker = Arc::new(Waker::new()?);
        selector.register(
            waker.as_raw_fd(),
            Token::WAKER.raw(),
            Interest::READABLE,
            Trigger::Level,
        )?;
        let (tx, rx) = inbox(waker.clone());
        senders.push(Arc::new(tx));
        let core = CoreSeed::hosted(&selector, waker.clone())?;
        wakers.push(waker);
        cores.push(core.shared.clone());
        seeds.push(LoopSeed {
            index,
            core,
            selector,
            inbox: rx,
            listeners: loop_listeners,
            datagram_sockets: loop_datagram_sockets,
            signal_fd: signal_fd.take(),
        });
    }

    let runtime = Arc::new(RuntimeShared::new(cores, options.shutdown_grace, poller));
    let engine = Engine {
        group: Arc::new(LoopGroup::new(wakers)),
        runtime: runtime.clone(),
        local_addrs: local_addrs.into(),
        stop_signals: Arc::new(Mutex::new(stop_signals)),
    };

    let handler = Arc::new(handler);
    if handler.on_boot(&engine) == Action::Shutdown {
        engine.stop();
    }
    let callbacks = Arc::new(Bound {
        handler,
        engine: engine.clone(),
    });
    let senders: Peers<H::Context> = senders.into();
    let config = Arc::new(LoopConfig::new(&options));
    let (group, peers) = (engine.group.clone(), senders.clone());
    engine.group.spawn(seeds, move |seed| {
        let (callbacks, group, peers) = (callbacks.clone(), group.clone(), peers.clone());
        let runtime = runtime.clone();
        EventLoop::new(seed, callbacks, group, runtime, peers, config.clone()).run()
    })?;
    Ok((engine, senders))
}

/// A handler bound to its engine: what the callback loops call, the
/// engine-wide callbacks (`on_tick`, `on_shutdown`) with the engine.
struct Bound<H> {
    handler: Arc<H>,
    engine: Engine,
}

impl<H: Handler> Callbacks for Bound<H> {
    type Context = H::Context;

    fn on_open(&self, conn: &mut Conn<'_, H::Context>) -> Action {
        self.handler.on_open(conn)
    }
    fn on_traffic(&self, conn: &mut Conn<'_, H::Context>) -> Action {
        self.handler.on_traffic(conn)
    }
    fn on_eof(&self, conn: &mut Conn<'_, H::Context>) -> Action {
        self.handler.on_eof(conn)
    }
    fn on_close(&self, conn: &mut Conn<'_, H::Context>, err: Option<&Error>) -> Action {
        self.handler.on_close(conn, err)
    }
    fn on_tick(&self) -> (Duration, Action) {
        self.handler.on_tick(&self.engine)
    }
    fn on_shutdown(&self) {
        self.handler.on_shutdown(&self.engine)
    }
    fn stop(&self) {
        self.engine.stop();
    }
}
