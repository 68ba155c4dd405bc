//! The client: outbound connections on the same loops, handler trait and
//! options as the server.
//!
//! A [`Client`] is an engine without listeners. Every connect is
//! non-blocking and performed by a loop (`EINPROGRESS`, then writability and
//! `SO_ERROR`), so no thread ever waits on a slow peer unless it asks to with
//! [`Client::dial_wait`]. Inside a callback, [`Conn::dial`](crate::Conn::dial)
//! opens a connection on the caller's own loop instead.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use socket2::{Socket, Type};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::conn::{Command, Dial, Incoming};
use crate::engine::launch;
use crate::event_loop::Peers;
use crate::listen::ListenAddr;
use crate::reactor::inbox::Lane;
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
        let (engine, peers) = launch(&[], options.clone(), handler, None)?;
        Ok(Client {
            engine,
            peers,
            options,
            next_loop: AtomicUsize::new(0),
        })
    }

    /// Starts connecting to `addr` (`tcp://host:port`, `tcp4://`, `tcp6://`,
    /// just `host:port`, `unix:///path`, `unix://@name`, or `udp://host:port`)
    /// with `ctx` as the connection's context, and returns at once: the
    /// outcome arrives as `on_open` or `on_close(err)`.
    /// `Options::connect_timeout` bounds the connect.
    ///
    /// A `udp://` address gets a UDP socket connected to it (the kernel then
    /// passes only that peer's datagrams), served like a bound `udp://`
    /// socket: every datagram is an `on_traffic`, and there is no `on_open`
    /// (use [`Client::dial_wait`] to get the handle to send with). `ctx` is
    /// not used for UDP.
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
        match resolve(addr)? {
            Target::Stream(addr) => {
                let dial = dial_to(addr, self.options.connect_timeout, None)?;
                self.send_dial(dial, ctx)
            }
            Target::Udp(addr) => self.adopt_udp(connected_udp(addr)?).map(drop),
        }
    }

    /// As [`Client::dial`] to a stream address, and the connection sends
    /// `header` before any other byte: a PROXY protocol header from
    /// [`proxy_protocol::encode`](crate::proxy_protocol::encode), for a
    /// server that expects one (HAProxy's `send-proxy`).
    ///
    /// # Errors
    /// As [`Client::dial`]; [`Error::Unsupported`] for a `udp://` address.
    ///
    /// ```no_run
    /// use netloom::proxy_protocol::{encode, ProxyProtocol};
    /// # fn f(client: &netloom::Client<()>) -> netloom::Result<()> {
    /// let client_addr = "192.0.2.7:50000".parse().unwrap();
    /// let frontend = "198.51.100.1:80".parse().unwrap();
    /// let header = encode(ProxyProtocol::V1, Some((client_addr, frontend)));
    /// client.dial_with_proxy_header("tcp://127.0.0.1:9000", header, ())?;
    /// # Ok(()) }
    /// ```
    pub fn dial_with_proxy_header(&self, addr: &str, header: Vec<u8>, ctx: C) -> Result<()> {
        let mut dial = dial_to(stream_target(addr)?, self.options.connect_timeout, None)?;
        dial.proxy_header = Some(header);
        self.send_dial(dial, ctx)
    }

    /// Connects to `addr` and waits at most `timeout` for the outcome:
    /// the connection's handle once it is open (`on_open` has run), or the
    /// error (`on_close` gets it too).
    ///
    /// # Errors
    /// As [`Client::dial`], plus [`Error::Connect`] and
    /// [`Error::ConnectTimeout`]; [`Error::EngineStopped`] also when the
    /// loop exits before the connect finished.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn f(client: &netloom::Client<()>) -> netloom::Result<()> {
    /// let handle = client.dial_wait("127.0.0.1:9000", (), Duration::from_secs(1))?;
    /// handle.async_write(b"ping\n".to_vec())?;
    /// # Ok(()) }
    /// ```
    pub fn dial_wait(&self, addr: &str, ctx: C, timeout: Duration) -> Result<ConnHandle<C>> {
        let addr = match resolve(addr)? {
            Target::Stream(addr) => addr,
            Target::Udp(addr) => return self.adopt_udp(connected_udp(addr)?),
        };
        let (reply, outcome) = mpsc::sync_channel(1);
        self.send_dial(dial_to(addr.clone(), Some(timeout), Some(reply))?, ctx)?;
        // The loop answers by the timeout (its timer); the margin covers a
        // busy loop. A loop that exited dropped the reply unanswered.
        match outcome.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(outcome) => outcome,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::ConnectTimeout(addr)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::EngineStopped),
        }
    }

    /// As [`Client::dial`], over TLS (feature `tls`): once connected, the
    /// connection runs a client handshake through `connector`, verifying
    /// the server's certificate for `server_name`, and `on_open` follows
    /// it (bounded by `Options::tls_handshake_timeout`); the handler then
    /// reads and writes plaintext. A failed handshake gets only `on_close`,
    /// with [`Error::Tls`] or [`Error::TlsHandshakeTimeout`].
    ///
    /// # Errors
    /// As [`Client::dial`]; [`Error::Tls`] for an invalid `server_name`;
    /// [`Error::Unsupported`] for a `udp://` address.
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>, connector: &netloom::tls::TlsConnector) -> netloom::Result<()> {
    /// client.dial_tls("tcp://127.0.0.1:8443", connector, "localhost", ())?;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn dial_tls(
        &self,
        addr: &str,
        connector: &crate::tls::TlsConnector,
        server_name: &str,
        ctx: C,
    ) -> Result<()> {
        let mut dial = dial_to(stream_target(addr)?, self.options.connect_timeout, None)?;
        dial.tls = Some(crate::conn::TlsConn::new(connector.session(server_name)?));
        self.send_dial(dial, ctx)
    }

    /// As [`Client::dial_tls`], and the connection sends `header` (a
    /// PROXY protocol header from
    /// [`proxy_protocol::encode`](crate::proxy_protocol::encode)) before
    /// its ClientHello, as HAProxy's `send-proxy-v2` in front of a TLS
    /// server does.
    ///
    /// # Errors
    /// As [`Client::dial_tls`].
    ///
    /// ```no_run
    /// use netloom::proxy_protocol::{encode, ProxyProtocol};
    /// # fn f(client: &netloom::Client<()>, connector: &netloom::tls::TlsConnector) -> netloom::Result<()> {
    /// let header = encode(ProxyProtocol::V2, None);
    /// client.dial_tls_with_proxy_header("tcp://127.0.0.1:8443", connector, "localhost", header, ())?;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn dial_tls_with_proxy_header(
        &self,
        addr: &str,
        connector: &crate::tls::TlsConnector,
        server_name: &str,
        header: Vec<u8>,
        ctx: C,
    ) -> Result<()> {
        let mut dial = dial_to(stream_target(addr)?, self.options.connect_timeout, None)?;
        dial.tls = Some(crate::conn::TlsConn::new(connector.session(server_name)?));
        dial.proxy_header = Some(header);
        self.send_dial(dial, ctx)
    }

    /// As [`Client::dial_wait`], over TLS: the handle comes once the
    /// handshake has finished and `on_open` has run.
    ///
    /// # Errors
    /// As [`Client::dial_tls`] and [`Client::dial_wait`].
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn f(client: &netloom::Client<()>, connector: &netloom::tls::TlsConnector) -> netloom::Result<()> {
    /// let handle = client.dial_tls_wait("127.0.0.1:8443", connector, "localhost", (), Duration::from_secs(3))?;
    /// handle.async_write(b"ping\n".to_vec())?;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn dial_tls_wait(
        &self,
        addr: &str,
        connector: &crate::tls::TlsConnector,
        server_name: &str,
        ctx: C,
        timeout: Duration,
    ) -> Result<ConnHandle<C>> {
        let addr = stream_target(addr)?;
        let (reply, outcome) = mpsc::sync_channel(1);
        let mut dial = dial_to(addr.clone(), Some(timeout), Some(reply))?;
        dial.tls = Some(crate::conn::TlsConn::new(connector.session(server_name)?));
        self.send_dial(dial, ctx)?;
        // The connect timeout, then the handshake's, then a busy loop.
        let handshake = self.options.tls_handshake_timeout;
        outcome
            .recv_timeout(timeout + handshake + Duration::from_secs(1))
            .unwrap_or(Err(Error::TlsHandshakeTimeout))
    }

    /// As [`Client::adopt`], over TLS: the connected stream runs a client
    /// handshake through `connector` (verifying the server as
    /// `server_name`) before `on_open`.
    ///
    /// # Errors
    /// As [`Client::adopt`]; [`Error::Tls`] for an invalid `server_name`.
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>, connector: &netloom::tls::TlsConnector) -> netloom::Result<()> {
    /// let stream = std::net::TcpStream::connect("127.0.0.1:8443")?;
    /// client.adopt_tls(stream, connector, "localhost")?;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn adopt_tls(
        &self,
        stream: impl Into<Socket>,
        connector: &crate::tls::TlsConnector,
        server_name: &str,
    ) -> Result<()> {
        let mut incoming = adoptable(stream.into())?;
        incoming.tls = Some(crate::conn::TlsConn::new(connector.session(server_name)?));
        let target = self.pick_loop(&incoming.peer);
        self.send(target, Command::Register(incoming))
    }

    /// Hands an already-connected stream (`std::net::TcpStream` or
    /// `std::os::unix::net::UnixStream`) to a loop chosen by the balancer;
    /// it gets `on_open` with a default context, then serves as any other.
    ///
    /// # Errors
    /// [`Error::Io`] if the stream cannot be made non-blocking or has no
    /// peer, [`Error::Unsupported`] for a datagram socket (see
    /// [`Client::adopt_udp`]), [`Error::EngineStopped`] once the client
    /// stopped.
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>) -> netloom::Result<()> {
    /// let stream = std::net::TcpStream::connect("127.0.0.1:9000")?;
    /// client.adopt(stream)?;
    /// let local = std::os::unix::net::UnixStream::connect("/run/app.sock")?;
    /// client.adopt(local)?;
    /// # Ok(()) }
    /// ```
    pub fn adopt(&self, stream: impl Into<Socket>) -> Result<()> {
        let incoming = adoptable(stream.into())?;
        let target = self.pick_loop(&incoming.peer);
        self.send(target, Command::Register(incoming))
    }

    /// Serves an existing `std::net::UdpSocket` on a loop chosen by the
    /// balancer: each datagram it receives is an `on_traffic` (as for a bound
    /// `udp://` address). Returns its handle, whose `async_write` goes to the
    /// socket's connected peer and `async_send_to` anywhere.
    ///
    /// # Errors
    /// [`Error::Io`] if the socket cannot be made non-blocking or watched,
    /// [`Error::EngineStopped`] once the client stopped.
    ///
    /// ```no_run
    /// # fn f(client: &netloom::Client<()>) -> netloom::Result<()> {
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect("127.0.0.1:9000")?;
    /// let handle = client.adopt_udp(socket)?;
    /// handle.async_write(b"ping".to_vec())?;
    /// # Ok(()) }
    /// ```
    pub fn adopt_udp(&self, socket: UdpSocket) -> Result<ConnHandle<C>> {
        socket.set_nonblocking(true)?;
        let socket = Socket::from(socket);
        let peer = socket
            .peer_addr()
            .map(|a| Addr::from_sockaddr(&a))
            .unwrap_or_else(|_| Addr::Inet(([0, 0, 0, 0], 0).into()));
        let (reply, outcome) = mpsc::sync_channel(1);
        let target = self.pick_loop(&peer);
        if self.engine.is_stopping() {
            return Err(Error::EngineStopped);
        }
        self.peers[target]
            .send(Lane::Urgent, Command::AdoptDatagram(socket, reply))
            .map_err(|_| Error::EngineStopped)?;
        // Registering is quick: the loop answers at once unless it exited.
        outcome
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or(Err(Error::EngineStopped))
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

    fn send_dial(&self, dial: Dial<C>, ctx: C) -> Result<()> {
        let target = self.pick_loop(&dial.addr);
        self.send(target, Command::Connect(dial, Box::new(move || ctx)))
    }

    fn pick_loop(&self, addr: &Addr) -> usize {
        let mut next = self.next_loop.fetch_add(1, Ordering::Relaxed);
        self.options
            .load_balancer
            .pick(&mut next, addr, &self.engine.group.loads)
    }

    /// Sends a new connection to loop `target`, counted in its load from now
    /// (so a stop waits for it).
    fn send(&self, target: usize, command: Command<C>) -> Result<()> {
        if self.engine.is_stopping() {
            return Err(Error::EngineStopped);
        }
        let loads = &self.engine.group.loads;
        loads[target].fetch_add(1, Ordering::Relaxed);
        self.peers[target].send(Lane::Urgent, command).map_err(|_| {
            loads[target].fetch_sub(1, Ordering::Relaxed);
            Error::EngineStopped
        })
    }
}

/// What a client dials.
#[derive(Debug, PartialEq)]
enum Target {
    /// TCP or a Unix stream socket.
    Stream(Addr),
    Udp(SocketAddr),
}

/// Parses a dial address and resolves a host name to the first address of
/// the wanted family.
/// A fresh socket for a loop to connect to `addr`.
fn dial_to<C>(
    addr: Addr,
    timeout: Option<Duration>,
    reply: Option<crate::conn::DialReply<C>>,
) -> Result<Dial<C>> {
    Ok(Dial {
        socket: socket::stream_socket(&addr)?,
        addr,
        timeout,
        reply,
        proxy_header: None,
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        tls: None,
    })
}

/// A connected stream socket to adopt, made non-blocking.
fn adoptable(socket: Socket) -> Result<Incoming> {
    if socket.r#type()? != Type::STREAM {
        return Err(Error::Unsupported(
            "adopt takes stream sockets; use adopt_udp",
        ));
    }
    socket.set_nonblocking(true)?;
    let peer = Addr::from_sockaddr(&socket.peer_addr()?);
    Ok(Incoming::plain(socket, peer))
}

/// A stream address to dial (neither TLS nor a PROXY header runs over UDP).
fn stream_target(addr: &str) -> Result<Addr> {
    match resolve(addr)? {
        Target::Stream(addr) => Ok(addr),
        Target::Udp(_) => Err(Error::Unsupported(
            "TLS and PROXY headers need a stream address",
        )),
    }
}

fn resolve(addr: &str) -> Result<Target> {
    if let Some(name) = addr.strip_prefix("unix://") {
        return match ListenAddr::parse(addr)? {
            ListenAddr::Unix(unix) => Ok(Target::Stream(Addr::Unix(unix))),
            _ => Err(Error::InvalidAddress {
                addr: name.to_string(),
                reason: "expected unix:///path or unix://@name".into(),
            }),
        };
    }
    let (rest, udp, family): (&str, bool, fn(&SocketAddr) -> bool) = match addr.split_once("://") {
        Some(("tcp", r)) => (r, false, |_| true),
        Some(("tcp4", r)) => (r, false, SocketAddr::is_ipv4),
        Some(("tcp6", r)) => (r, false, SocketAddr::is_ipv6),
        Some(("udp", r)) => (r, true, |_| true),
        Some(("udp4", r)) => (r, true, SocketAddr::is_ipv4),
        Some(("udp6", r)) => (r, true, SocketAddr::is_ipv6),
        Some(_) => return Err(Error::UnknownScheme(addr.to_string())),
        None => (addr, false, |_| true),
    };
    let target = |inet: SocketAddr| {
        if udp {
            Target::Udp(inet)
        } else {
            Target::Stream(Addr::Inet(inet))
        }
    };
    if let Ok(ip) = rest.parse::<SocketAddr>() {
        return Ok(target(ip));
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
        .map(target)
        .ok_or_else(|| resolve_error("no address of the requested family".into()))
}

/// A UDP socket on an ephemeral port, connected to `to`.
fn connected_udp(to: SocketAddr) -> Result<UdpSocket> {
    let any: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(to)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_fail_with_typed_errors() {
        let inet = |s: &str| Target::Stream(Addr::Inet(s.parse().unwrap()));
        assert_eq!(resolve("tcp://127.0.0.1:80").unwrap(), inet("127.0.0.1:80"));
        assert_eq!(resolve("[::1]:7").unwrap(), inet("[::1]:7"));
        assert_eq!(
            resolve("tcp4://localhost:80").unwrap(),
            inet("127.0.0.1:80")
        );
        assert_eq!(
            resolve("udp://127.0.0.1:1").unwrap(),
            Target::Udp("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(
            resolve("unix://@name").unwrap(),
            Target::Stream(Addr::Unix(crate::UnixAddr::Abstract(b"name".to_vec())))
        );
        assert!(matches!(
            resolve("sctp://127.0.0.1:1"),
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
