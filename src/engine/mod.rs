//! The engine, the callback front door: binds its addresses, starts the
//! callback loops (which host the async executors too) with a [`Handler`]
//! bound to it, and stops them.

mod handler;
mod handoff;

pub use handler::Handler;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::Socket;

use crate::event_loop::{Callbacks, EventLoop, LoopConfig, LoopSeed, Peers};
use crate::listen::{self, InheritedSocket, ListenAddr, Listener};
use crate::reactor::group::LoopGroup;
use crate::reactor::inbox::inbox;
use crate::reactor::token::Token;
use crate::rt::{CoreSeed, RuntimeShared};
use crate::stats::{LoopCounters, Stats};
use crate::sys::signal::BlockedStopSignals;
use crate::sys::{Interest, Selector, Trigger, Waker};
use crate::unwind::lock;
use crate::{Action, Addr, Conn, Error, ListenerOptions, Options, Result, Transport};

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
    /// Where a running engine may offer its sockets (`inherit_from`).
    inherit_from: Option<PathBuf>,
}

/// One address to serve, and how.
#[derive(Debug)]
pub(crate) struct Bind {
    addr: String,
    options: ListenerOptions,
}

impl Bind {
    /// Refuses the stream-only options (TLS, the PROXY protocol) for an
    /// address that turned out to be a UDP socket.
    fn refuse_for_datagrams(&self) -> Result<()> {
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if self.options.tls.is_some() {
            return Err(Error::InvalidOption(format!(
                "{}: TLS needs a stream address (tcp:// or unix://)",
                self.addr
            )));
        }
        if self.options.proxy_protocol.is_some() {
            return Err(Error::InvalidOption(format!(
                "{}: the PROXY protocol needs a stream address (tcp:// or unix://)",
                self.addr
            )));
        }
        Ok(())
    }
}

impl EngineBuilder {
    /// Adds an address to serve: `tcp://`, `tcp4://`, `tcp6://`, `udp://`,
    /// `udp4://`, `udp6://` (`host:port`), `unix:///path/to/socket` or
    /// `unix://@abstract-name`. One engine serves any mix of them on the
    /// same loops.
    ///
    /// Inherited sockets, which the engine serves instead of binding:
    /// `systemd://` (every socket systemd's socket activation passed,
    /// `LISTEN_FDS`), `systemd://NAME` (those with `FileDescriptorName=NAME`)
    /// and `fd://N` (descriptor `N`, left open by whoever started the
    /// process). Each may be a TCP or Unix stream listener or a UDP socket
    /// (checked; anything else is an [`Error::InvalidAddress`]), and yields
    /// one entry of [`Engine::local_addrs`] per address it serves. An
    /// inherited socket is one socket: loop 0 accepts on it and the load
    /// balancer spreads the connections (as for one listener without
    /// `reuseport`); an inherited UDP socket is read by loop 0.
    ///
    /// ```
    /// let builder = netloom::Engine::builder().bind("tcp://127.0.0.1:0");
    /// ```
    pub fn bind(self, addr: &str) -> Self {
        self.bind_with(addr, ListenerOptions::new())
    }

    /// Adds an address to serve as [`bind`](EngineBuilder::bind) does,
    /// with per-address options: a PROXY protocol header expected from a
    /// load balancer in front
    /// ([`ListenerOptions::proxy_protocol`]), TLS
    /// (`ListenerOptions::tls`, feature `tls`), or
    /// both. Both need a stream address (`tcp://`, `unix://`).
    ///
    /// ```
    /// use netloom::proxy_protocol::ProxyProtocol;
    /// let builder = netloom::Engine::builder()
    ///     .bind("tcp://127.0.0.1:0")
    ///     .bind_with(
    ///         "tcp://127.0.0.1:0",
    ///         netloom::ListenerOptions::new().proxy_protocol(ProxyProtocol::V2),
    ///     );
    /// ```
    pub fn bind_with(mut self, addr: &str, options: ListenerOptions) -> Self {
        self.binds.push(Bind {
            addr: addr.to_string(),
            options,
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
    pub fn bind_tls(self, addr: &str, acceptor: crate::tls::TlsAcceptor) -> Self {
        self.bind_with(addr, ListenerOptions::new().tls(acceptor))
    }

    /// Takes over the sockets a running engine offers at `path`
    /// ([`Engine::serve_handoff`]) for a zero-downtime restart: each
    /// `bind` address whose transport and bound address match a received
    /// socket is served from it instead of being bound (all of a
    /// `SO_REUSEPORT` group: one per loop as far as they go, the load
    /// balancer spreading connections when there are fewer than loops).
    /// Once this engine runs, the old one is told to drain; received
    /// sockets no address asked for are closed. A Unix socket file moves
    /// with its socket: this engine removes it when it stops.
    ///
    /// When nobody offers sockets at `path` (no socket file, or nobody
    /// listens on it), the addresses are bound as usual, so the same
    /// command starts the first process and its successors.
    ///
    /// ```
    /// let builder = netloom::Engine::builder()
    ///     .bind("tcp://127.0.0.1:8080")
    ///     .inherit_from("/run/myserver/handoff.sock");
    /// ```
    pub fn inherit_from(mut self, path: impl AsRef<Path>) -> Self {
        self.inherit_from = Some(path.as_ref().to_path_buf());
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
    /// Copies of the listening and UDP sockets, for a handoff.
    sockets: handoff::SharedSockets,
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

    /// Stops accepting and lets the open connections finish: every loop
    /// closes its listeners and UDP sockets at once, keeps serving its
    /// connections, with [`Conn::is_draining`] true so that handlers close
    /// them after the request in progress, and the engine stops (as
    /// [`Engine::stop`]) when none is left or when
    /// [`shutdown_grace`](Options::shutdown_grace) has passed, whichever
    /// comes first. A handoff ([`Engine::serve_handoff`]) ends with it.
    /// Calling it again does nothing.
    ///
    /// ```
    /// # struct Quiet;
    /// # impl netloom::Handler for Quiet {
    /// #     type Context = ();
    /// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
    /// # }
    /// let engine = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(Quiet)?;
    /// engine.drain();
    /// assert!(engine.is_draining());
    /// engine.wait()?; // no connection: stops at once
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn drain(&self) {
        if self.group.drain() {
            // The copies kept for a handoff would keep the listeners open.
            lock(&self.sockets).take();
        }
    }

    /// Whether [`Engine::drain`] was called (or a handoff happened).
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// assert!(!engine.is_draining());
    /// # }
    /// ```
    pub fn is_draining(&self) -> bool {
        self.group.is_draining()
    }

    /// Offers this engine's listening and UDP sockets at the Unix socket
    /// `path`, for a zero-downtime restart: a new process started with
    /// [`EngineBuilder::inherit_from`] on the same path connects, receives
    /// them (`SCM_RIGHTS`), starts serving them, and says so; this engine
    /// then removes `path` and drains ([`Engine::drain`]). The sockets stay
    /// open throughout, so no connection attempt is refused. If the new
    /// process fails before it serves, this one keeps serving and offers
    /// again. A thread waits for the new process until this engine stops.
    ///
    /// Why descriptor passing (and the exchange itself) is documented in
    /// `src/engine/handoff.rs`. Unix socket files this engine created are
    /// left in place after a handoff: the new process serves them, and
    /// removes them when it stops.
    ///
    /// # Errors
    /// Binding `path` (an [`Error::AddrInUse`] if another engine offers
    /// there).
    ///
    /// ```
    /// # struct Quiet;
    /// # impl netloom::Handler for Quiet {
    /// #     type Context = ();
    /// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
    /// # }
    /// let path = std::env::temp_dir().join(format!("handoff-doc-{}.sock", std::process::id()));
    /// let old = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(Quiet)?;
    /// old.serve_handoff(&path)?;
    /// let addr = format!("tcp://{}", old.local_addrs()[0]);
    /// let new = netloom::Engine::builder().bind(&addr).inherit_from(&path).start(Quiet)?;
    /// old.wait()?; // drained: it had no connection
    /// assert_eq!(new.local_addrs(), old.local_addrs());
    /// new.stop();
    /// new.wait()?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn serve_handoff(&self, path: impl AsRef<Path>) -> Result<()> {
        handoff::offer(self, path.as_ref())
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

    /// Open connections over all loops (as `stats().total().open_connections`).
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

    /// The loops' counters now: connections, bytes, outbound backlog,
    /// backpressure, inbox depth, failures by kind, busy time, per loop and
    /// in total. Cheap: each loop keeps its own counters as it works, and
    /// this only reads them. See [`Stats`] for what is counted and
    /// [`Stats::write_prometheus`] for the Prometheus exposition.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// let total = engine.stats().total();
    /// println!("{} open, {} closed", total.open_connections, total.closed);
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        Stats::new(self.group.stats().collect())
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
    let mut received = match &builder.inherit_from {
        Some(path) => handoff::Received::from_path(path)?,
        None => None,
    };
    let (engine, _) = launch(&builder.binds, builder.options, handler, received.as_mut())?;
    if let Some(received) = received {
        received.confirm(&engine);
    }
    Ok(engine)
}

/// Sockets inherited for one address, placed on the loops: socket `i` on
/// loop `i % loops`; with fewer sockets than loops, the acceptors hand
/// connections to the load balancer.
fn place_inherited(
    sockets: Vec<InheritedSocket>,
    loops: usize,
    listeners: &mut [Vec<Listener>],
    datagram_sockets: &mut [Vec<Socket>],
) {
    let balanced = sockets.len() < loops;
    for (i, inherited) in sockets.into_iter().enumerate() {
        if inherited.transport == Transport::Udp {
            datagram_sockets[i % loops].push(inherited.socket);
        } else {
            listeners[i % loops].push(Listener::inherited(inherited.socket, balanced));
        }
    }
}

/// Binds `binds` (none for a client), starts the loops and returns the
/// engine with every loop's inbox.
pub(crate) fn launch<H: Handler>(
    binds: &[Bind],
    options: Options,
    handler: H,
    mut received: Option<&mut handoff::Received>,
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
    // for a multicast group. Inherited sockets: see `place_inherited`.
    let mut listeners: Vec<Vec<Listener>> = (0..loops).map(|_| Vec::new()).collect();
    let mut datagram_sockets: Vec<Vec<Socket>> = (0..loops).map(|_| Vec::new()).collect();
    let mut local_addrs = Vec::new();
    for (addr, bind) in addrs.iter().zip(binds) {
        let handed_off = match (addr.bound(), received.as_deref_mut()) {
            (Some((transport, at)), Some(received)) => received.take(transport, &at),
            _ => Vec::new(),
        };
        let inherited = match addr {
            ListenAddr::Inherited(spec) => listen::take_inherited(spec, &bind.addr)?,
            _ => handed_off,
        };
        if !inherited.is_empty() {
            for socket in &inherited {
                if !local_addrs.contains(&socket.addr) {
                    local_addrs.push(socket.addr.clone());
                }
            }
            if inherited.iter().any(|s| s.transport == Transport::Udp) {
                bind.refuse_for_datagrams()?;
            }
            let before: Vec<usize> = listeners.iter().map(Vec::len).collect();
            place_inherited(inherited, loops, &mut listeners, &mut datagram_sockets);
            for (per_loop, from) in listeners.iter_mut().zip(before) {
                for listener in &mut per_loop[from..] {
                    listener.options = bind.options.clone();
                }
            }
            continue;
        }
        let at = if matches!(
            addr,
            ListenAddr::Inet {
                transport: Transport::Udp,
                ..
            }
        ) {
            bind.refuse_for_datagrams()?;
            let (bound, at) = listen::bind_udp(addr, loops, &options)?;
            for (per_loop, socket) in datagram_sockets.iter_mut().zip(bound) {
                per_loop.push(socket);
            }
            at
        } else {
            let (mut bound, at) = listen::bind_stream(addr, loops, &options)?;
            for listener in &mut bound {
                listener.options = bind.options.clone();
            }
            for (per_loop, listener) in listeners.iter_mut().zip(bound) {
                per_loop.push(listener);
            }
            at
        };
        local_addrs.push(at);
    }

    // Copies for a handoff; the engine, not the loops, removes the socket
    // files it created, so that a handoff can leave them.
    let mut kept = handoff::EngineSockets::default();
    for listener in listeners.iter_mut().flatten() {
        kept.keep(&listener.socket)?;
        if let Some(file) = listener.take_socket_file() {
            kept.keep_file(file);
        }
    }
    for socket in datagram_sockets.iter().flatten() {
        kept.keep(socket)?;
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
    let mut counters = Vec::with_capacity(loops);
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
        let loop_counters = Arc::new(LoopCounters::default());
        let (tx, rx) = inbox(waker.clone(), Some(loop_counters.clone()));
        senders.push(Arc::new(tx));
        // The executor's queue counts in the loop's inbox depth too.
        let core = CoreSeed::hosted(&selector, waker.clone(), loop_counters.clone())?;
        counters.push(loop_counters);
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
        group: Arc::new(LoopGroup::new(wakers, counters)),
        runtime: runtime.clone(),
        local_addrs: local_addrs.into(),
        sockets: Arc::new(Mutex::new(Some(kept))),
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
        // Closes the copies and removes the socket files (unless handed off).
        lock(&self.engine.sockets).take();
        self.handler.on_shutdown(&self.engine)
    }
    fn stop(&self) {
        self.engine.stop();
    }
}
