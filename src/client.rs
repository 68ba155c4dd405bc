//! The client: outbound connections on the same loops, handler trait and
//! options as the server.
//!
//! A [`Client`] is an engine without listeners. Every connect is
//! non-blocking and performed by a loop (`EINPROGRESS`, then writability and
//! `SO_ERROR`), so no thread ever waits on a slow peer unless it asks to with
//! [`Client::dial_wait`]. Inside a callback, [`Conn::dial`](crate::Conn::dial)
//! opens a connection on the caller's own loop instead.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::conn::{Command, Dial};
use crate::engine::launch;
use crate::event_loop::Peers;
use crate::inbox::Lane;
use crate::sys::socket;
use crate::{Addr, ConnHandle, Engine, Error, Handler, Options, Result};

/// Outbound connections served by netloom's loops.
///
/// Connections get the handler's callbacks exactly as accepted ones do:
/// `on_open` once connected, `on_traffic`, `on_close`. A connect that fails
/// gets only `on_close`, with [`Error::Connect`] (refused, unreachable...) or
/// [`Error::ConnectTimeout`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use netloom::{Action, Client, Conn, Handler, Options};
///
/// struct Hello;
/// impl Handler for Hello {
///     type Context = ();
///     fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
///         let _ = conn.write(b"hello\n");
///         Action::None
///     }
///     fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
///         println!("{:?}", String::from_utf8_lossy(conn.next(usize::MAX)));
///         Action::Close
///     }
/// }
///
/// let client = Client::start(Hello, Options::default().loops(1))?;
/// let handle = client.dial_wait("tcp://127.0.0.1:9000", (), Duration::from_secs(3))?;
/// client.stop();
/// client.wait()?;
/// # Ok::<(), netloom::Error>(())
/// ```
pub struct Client<C> {
    engine: Engine,
    peers: Peers<C>,
    options: Options,
    next_loop: AtomicUsize,
}

impl<C> std::fmt::Debug for Client<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("loops", &self.engine.loops())
            .finish()
    }
}

impl<C: Send + 'static> Client<C> {
    /// Starts the client's loops (`options.loops`, pinning, balancer, socket
    /// options, backpressure: all as for a server).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] or the kernel's error creating the loops.
    ///
    /// ```
    /// # struct Quiet;
    /// # impl netloom::Handler for Quiet {
    /// #     type Context = ();
    /// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
    /// # }
    /// let client = netloom::Client::start(Quiet, netloom::Options::default().loops(2))?;
    /// client.stop();
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn start<H: Handler<Context = C>>(handler: H, options: Options) -> Result<Client<C>> {
        let (engine, peers) = launch(&[], options.clone(), handler)?;
        Ok(Client {
            engine,
            peers,
            options,
            next_loop: AtomicUsize::new(0),
        })
    }

    /// Starts connecting to `addr` (`tcp://host:port`, `tcp4://`, `tcp6://`
    /// or just `host:port`) with `ctx` as the connection's context, and
    /// returns at once: the outcome arrives as `on_open` or `on_close(err)`.
    /// `Options::connect_timeout` bounds the connect.
    ///
    /// A host name is resolved on the calling thread; pass an IP address to
    /// never block.
    ///
    /// # Errors
    /// [`Error::Resolve`] if the host does not resolve, [`Error::InvalidAddress`]
    /// if `addr` cannot be parsed, [`Error::Io`] if no socket can be created,
    /// [`Error::EngineStopped`] once the client stopped.
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>) -> netloom::Result<()> {
    /// client.dial("tcp://127.0.0.1:9000", ())?;
    /// # Ok(()) }
    /// ```
    pub fn dial(&self, addr: &str, ctx: C) -> Result<()> {
        let addr = resolve(addr)?;
        self.send_dial(addr, ctx, self.options.connect_timeout, None)
    }

    /// Connects to `addr` and waits at most `timeout` for the outcome:
    /// the connection's handle once it is open (`on_open` has run), or the
    /// error (`on_close` gets it too).
    ///
    /// # Errors
    /// As [`Client::dial`], plus [`Error::Connect`] and
    /// [`Error::ConnectTimeout`].
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn f(client: &netloom::Client<()>) -> netloom::Result<()> {
    /// let handle = client.dial_wait("127.0.0.1:9000", (), Duration::from_secs(1))?;
    /// handle.async_write(b"ping\n".to_vec())?;
    /// # Ok(()) }
    /// ```
    pub fn dial_wait(&self, addr: &str, ctx: C, timeout: Duration) -> Result<ConnHandle<C>> {
        let addr = resolve(addr)?;
        let (reply, outcome) = mpsc::sync_channel(1);
        self.send_dial(addr, ctx, Some(timeout), Some(reply))?;
        // The loop answers by the timeout (its timer); the margin covers a
        // busy loop.
        outcome
            .recv_timeout(timeout + Duration::from_secs(1))
            .unwrap_or(Err(Error::ConnectTimeout(addr)))
    }

    /// Hands an already-connected stream to a loop (chosen by the balancer);
    /// it gets `on_open` with a default context, then serves as any other.
    ///
    /// # Errors
    /// [`Error::Io`] if the stream cannot be made non-blocking or has no
    /// peer, [`Error::EngineStopped`] once the client stopped.
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>) -> netloom::Result<()> {
    /// let stream = std::net::TcpStream::connect("127.0.0.1:9000")?;
    /// client.adopt(stream)?;
    /// # Ok(()) }
    /// ```
    pub fn adopt(&self, stream: TcpStream) -> Result<()> {
        stream.set_nonblocking(true)?;
        let peer = stream.peer_addr()?;
        let target = self.pick_loop(&peer);
        self.send(target, Command::Register(stream.into(), Addr::Inet(peer)))
    }

    /// The engine running the client's loops: `stop`, `wait`, counts.
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>) {
    /// println!("{} connections", client.engine().conn_count());
    /// # }
    /// ```
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Closes every connection gracefully and stops the loops; see
    /// [`Engine::stop`].
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>) {
    /// client.stop();
    /// # }
    /// ```
    pub fn stop(&self) {
        self.engine.stop();
    }

    /// Waits until the loops have exited; see [`Engine::wait`].
    ///
    /// # Errors
    /// The first error a loop stopped with.
    ///
    /// ```no_run
    /// # fn f(client: netloom::Client<()>) -> netloom::Result<()> {
    /// client.stop();
    /// client.wait()?;
    /// # Ok(()) }
    /// ```
    pub fn wait(&self) -> Result<()> {
        self.engine.wait()
    }

    fn send_dial(
        &self,
        addr: SocketAddr,
        ctx: C,
        timeout: Option<Duration>,
        reply: Option<crate::conn::DialReply<C>>,
    ) -> Result<()> {
        let dial = Dial {
            socket: socket::tcp_socket(&addr)?,
            addr,
            timeout,
            ctx: Box::new(move || ctx),
            reply,
        };
        let target = self.pick_loop(&addr);
        self.send(target, Command::Connect(dial))
    }

    fn pick_loop(&self, addr: &SocketAddr) -> usize {
        let mut next = self.next_loop.fetch_add(1, Ordering::Relaxed);
        self.options
            .load_balancer
            .pick(&mut next, &Addr::Inet(*addr), &self.engine.inner.loads)
    }

    /// Sends a new connection to loop `target`, counted in its load from now
    /// (so a stop waits for it).
    fn send(&self, target: usize, command: Command<C>) -> Result<()> {
        if self.engine.is_stopping() {
            return Err(Error::EngineStopped);
        }
        let loads = &self.engine.inner.loads;
        loads[target].fetch_add(1, Ordering::Relaxed);
        self.peers[target].send(Lane::Urgent, command).map_err(|_| {
            loads[target].fetch_sub(1, Ordering::Relaxed);
            Error::EngineStopped
        })
    }
}

/// Parses `tcp://host:port` (or `tcp4://`, `tcp6://`, or a bare
/// `host:port`) and resolves it to the first address of the wanted family.
fn resolve(addr: &str) -> Result<SocketAddr> {
    let (rest, family): (&str, fn(&SocketAddr) -> bool) =
        if let Some(r) = addr.strip_prefix("tcp4://") {
            (r, SocketAddr::is_ipv4)
        } else if let Some(r) = addr.strip_prefix("tcp6://") {
            (r, SocketAddr::is_ipv6)
        } else if let Some(r) = addr.strip_prefix("tcp://") {
            (r, |_| true)
        } else if addr.contains("://") {
            return Err(Error::UnknownScheme(addr.to_string()));
        } else {
            (addr, |_| true)
        };
    if let Ok(ip) = rest.parse::<SocketAddr>() {
        return Ok(ip);
    }
    let has_port = matches!(rest.rsplit_once(':'), Some((_, port)) if port.parse::<u16>().is_ok());
    if !has_port {
        return Err(Error::InvalidAddress {
            addr: addr.to_string(),
            reason: "expected host:port".into(),
        });
    }
    let resolve_error = |reason: String| Error::Resolve {
        host: rest.to_string(),
        reason,
    };
    let mut candidates = rest
        .to_socket_addrs()
        .map_err(|e| resolve_error(e.to_string()))?;
    candidates
        .find(family)
        .ok_or_else(|| resolve_error("no address of the requested family".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_fail_with_typed_errors() {
        assert_eq!(
            resolve("tcp://127.0.0.1:80").unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(resolve("[::1]:7").unwrap(), "[::1]:7".parse().unwrap());
        assert!(resolve("tcp4://localhost:80").unwrap().is_ipv4());
        assert!(matches!(
            resolve("udp://127.0.0.1:1"),
            Err(Error::UnknownScheme(_))
        ));
        assert!(matches!(
            resolve("tcp://nohost"),
            Err(Error::InvalidAddress { .. })
        ));
        assert!(matches!(
            resolve("tcp://no-such-host.invalid:80"),
            Err(Error::Resolve { .. })
        ));
    }
}
