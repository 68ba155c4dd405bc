//! TCP listener and stream.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use super::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::proxy_protocol::{
    HeaderParser, Parsed, ProxyCommand, ProxyHeader, ProxyHeaderError, ProxyProtocol,
};
use crate::rt::scheduled_io::{Direction, IoOp, IoSource, Waiter};
use crate::sys::socket;
use crate::{listen, Options};

/// A TCP listener whose `accept` parks the task, not the thread.
///
/// Two topologies, as the engine's: one listener whose accept loop hands
/// each connection to [`spawn`](crate::rt::spawn) (a shared acceptor
/// balancing over the loops), or one [`TcpListener::bind_reuseport`]
/// listener per loop, each with its own accept loop (the kernel spreads the
/// connections).
///
/// ```no_run
/// use netloom::rt::{net::TcpListener, Runtime};
/// let rt = Runtime::builder().loops(2).build()?;
/// rt.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let (stream, peer) = listener.accept().await?;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpListener {
    source: IoSource<std::net::TcpListener>,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl TcpListener {
    /// Binds to the first address of `addr` that works (`SO_REUSEADDR`,
    /// backlog `somaxconn`).
    ///
    /// # Errors
    /// The kernel's error from the last address tried.
    ///
    /// ```
    /// let listener = netloom::rt::net::TcpListener::bind("127.0.0.1:0")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
        for a in addr.to_socket_addrs()? {
            match listen(a, false) {
                Ok(l) => return Ok(l),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Binds with `SO_REUSEPORT` (FreeBSD: `SO_REUSEPORT_LB`), so that one
    /// listener per loop can share the port. macOS does not spread the
    /// connections over such listeners: there, prefer one listener whose
    /// accept loop spawns.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```
    /// use netloom::rt::net::TcpListener;
    /// let first = TcpListener::bind_reuseport("127.0.0.1:0".parse().unwrap())?;
    /// let second = TcpListener::bind_reuseport(first.local_addr()?)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
        listen(addr, true)
    }

    /// Takes over an inherited listener: `systemd://` (the one socket
    /// systemd's socket activation passed), `systemd://NAME` (by
    /// `FileDescriptorName=`) or `fd://N`. It must be a listening TCP
    /// socket; each is taken once per process.
    ///
    /// # Errors
    /// `InvalidInput` naming the address when there is no such socket,
    /// several, or one of another kind.
    ///
    /// ```no_run
    /// // Started by a systemd socket unit with ListenStream=8080.
    /// let listener = netloom::rt::net::TcpListener::inherit("systemd://")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inherit(url: &str) -> io::Result<TcpListener> {
        let socket = listen::take_single(url, crate::Transport::Tcp).map_err(listen::io_error)?;
        Ok(TcpListener {
            source: IoSource::listener(socket.into()),
        })
    }

    /// Wraps a std listener (switching it to non-blocking mode).
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// ```
    /// let std = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let listener = netloom::rt::net::TcpListener::from_std(std)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            source: IoSource::listener(listener),
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```
    /// let listener = netloom::rt::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Waits for a connection. The stream is not yet registered: it joins
    /// the loop of the task that first uses it.
    ///
    /// # Errors
    /// The kernel's accept error (`EMFILE` and the like: retrying at once
    /// would spin, so pause first); `TimedOut` past the deadline; an error
    /// once the runtime is stopping; an error if another task is already
    /// waiting in `accept` on this listener.
    ///
    /// ```no_run
    /// # async fn f(listener: netloom::rt::net::TcpListener) -> std::io::Result<()> {
    /// let (stream, peer) = listener.accept().await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, peer) = IoOp::new(
            &self.source,
            Direction::Read,
            Waiter::shared(),
            |l: &std::net::TcpListener| loop {
                match socket::accept(l.as_raw_fd()) {
                    Err(e) if socket::is_transient_accept_error(&e) => {}
                    other => return other,
                }
            },
            |_: &(socket2::Socket, crate::Addr)| false,
        )
        .await?;
        let stream = std::net::TcpStream::from(socket);
        let peer = match peer {
            crate::Addr::Inet(peer) => peer,
            crate::Addr::Unix(_) => stream.peer_addr()?,
        };
        Ok((TcpStream::from_nonblocking(stream), peer))
    }

    /// A deadline for `accept` (Go's `TCPListener.SetDeadline`).
    ///
    /// # Errors
    /// Off a runtime loop, or on a loop other than the listener's.
    ///
    /// ```no_run
    /// # async fn f(listener: netloom::rt::net::TcpListener) -> std::io::Result<()> {
    /// use std::time::{Duration, Instant};
    /// listener.set_deadline(Some(Instant::now() + Duration::from_secs(1)))?;
    /// # Ok(()) }
    /// ```
    pub fn set_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        self.source.set_deadline(Direction::Read, at)
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

fn listen(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let options = Options::default().reuseport(reuseport);
    let socket = listen::bind_tcp(addr, false, &options).map_err(listen::io_error)?;
    Ok(TcpListener {
        source: IoSource::listener(socket.into()),
    })
}

/// A TCP connection; reads and writes park the task, not the thread.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let mut stream = netloom::rt::net::TcpStream::connect("127.0.0.1:9000".parse().unwrap()).await?;
/// stream.write_all(b"ping").await?;
/// let mut buf = [0; 4];
/// let n = stream.read(&mut buf).await?;
/// # Ok(()) }
/// ```
pub struct TcpStream {
    pub(crate) source: IoSource<std::net::TcpStream>,
    /// The PROXY protocol header read by [`TcpStream::read_proxy_header`].
    proxy: Option<Box<ProxyHeader>>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl TcpStream {
    fn from_nonblocking(stream: std::net::TcpStream) -> TcpStream {
        TcpStream {
            source: IoSource::new(stream),
            proxy: None,
        }
    }

    /// Connects without blocking the loop.
    ///
    /// # Errors
    /// The connection's error (`ConnectionRefused`, ...). Bound it with
    /// [`timeout`](crate::rt::timeout).
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let stream = netloom::rt::net::TcpStream::connect("127.0.0.1:9000".parse().unwrap()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = socket::tcp_socket(&addr)?;
        match socket2::SockRef::from(&socket).connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_nonblocking(socket.into());
        super::finish_connect(&stream.source).await?;
        Ok(stream)
    }

    /// Wraps a connected std stream (switching it to non-blocking mode).
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// ```no_run
    /// let std = std::net::TcpStream::connect("127.0.0.1:9000")?;
    /// let stream = netloom::rt::net::TcpStream::from_std(std)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::from_nonblocking(stream))
    }

    /// `TCP_NODELAY`.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```no_run
    /// # fn f(stream: &netloom::rt::net::TcpStream) -> std::io::Result<()> {
    /// stream.set_nodelay(true)?;
    /// # Ok(()) }
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.source.get_ref().set_nodelay(nodelay)
    }

    /// The peer's address: after [`TcpStream::read_proxy_header`], the
    /// client the header names (the balancer's address is then in
    /// [`TcpStream::proxy`]).
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```no_run
    /// # fn f(stream: &netloom::rt::net::TcpStream) -> std::io::Result<()> {
    /// println!("{}", stream.peer_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let client = self
            .proxy
            .as_ref()
            .and_then(|header| match header.command() {
                ProxyCommand::Proxy => header.source().and_then(crate::Addr::inet),
                ProxyCommand::Local => None,
            });
        match client {
            Some(client) => Ok(client),
            None => self.source.get_ref().peer_addr(),
        }
    }

    /// Reads the PROXY protocol header of `version` a load balancer sends
    /// first (HAProxy's `send-proxy`, `send-proxy-v2`), and not one byte
    /// more: it peeks at what has arrived and consumes only what the
    /// incremental parser takes. Then [`TcpStream::peer_addr`] is the
    /// client's address and [`TcpStream::proxy`] the whole header. Call it
    /// first on a stream accepted behind a balancer; bound it with
    /// [`timeout`](crate::rt::timeout) or a read deadline.
    ///
    /// # Errors
    /// `InvalidData` wrapping a
    /// [`ProxyHeaderError`](crate::proxy_protocol::ProxyHeaderError) for a
    /// missing, malformed, oversized or cut-short header; the read's own
    /// errors.
    ///
    /// ```no_run
    /// use netloom::proxy_protocol::ProxyProtocol;
    /// # async fn f(listener: netloom::rt::net::TcpListener) -> std::io::Result<()> {
    /// let (mut stream, _balancer) = listener.accept().await?;
    /// let wait = std::time::Duration::from_secs(5);
    /// netloom::rt::timeout(wait, stream.read_proxy_header(ProxyProtocol::V2)).await??;
    /// println!("client {}", stream.peer_addr()?);
    /// # Ok(()) }
    /// ```
    pub async fn read_proxy_header(&mut self, version: ProxyProtocol) -> io::Result<&ProxyHeader> {
        let invalid = |e: ProxyHeaderError| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut parser = HeaderParser::new(version);
        let mut buf = [0u8; 512];
        loop {
            let arrived = self.peek(&mut buf).await?;
            if arrived == 0 {
                return Err(invalid(ProxyHeaderError::Truncated));
            }
            let (header, taken) = match parser.feed(&buf[..arrived]).map_err(invalid)? {
                Parsed::Incomplete => (None, arrived),
                Parsed::Done { header, consumed } => (Some(header), consumed),
            };
            // Those bytes are in the kernel's buffer: the reads return them.
            let mut read = 0;
            while read < taken {
                match self.read(&mut buf[read..taken]).await? {
                    0 => return Err(invalid(ProxyHeaderError::Truncated)),
                    n => read += n,
                }
            }
            if let Some(header) = header {
                let balancer = self.source.get_ref().peer_addr()?;
                let header = self
                    .proxy
                    .insert(Box::new(header.with_balancer(balancer.into())));
                return Ok(header);
            }
        }
    }

    /// The PROXY protocol header read by
    /// [`TcpStream::read_proxy_header`], with the balancer's address.
    ///
    /// ```no_run
    /// # fn f(stream: &netloom::rt::net::TcpStream) {
    /// let balancer = stream.proxy().map(|p| p.balancer().clone());
    /// # }
    /// ```
    pub fn proxy(&self) -> Option<&ProxyHeader> {
        self.proxy.as_deref()
    }

    /// The local address.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```no_run
    /// # fn f(stream: &netloom::rt::net::TcpStream) -> std::io::Result<()> {
    /// println!("{}", stream.local_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Borrowed halves, to read and write concurrently from one task (with
    /// a join of two futures).
    ///
    /// ```no_run
    /// # async fn f(mut stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
    /// let (mut reader, mut writer) = stream.split();
    /// let mut buf = [0; 16];
    /// let n = reader.read(&mut buf).await?;
    /// writer.write_all(&buf[..n]).await?;
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Owned halves, for a reader task and a writer task on the same loop.
    /// Each half also gives `&TcpStream` (`as_ref`) for the deadlines and
    /// addresses of both directions, as Go's `net.Conn` does.
    ///
    /// ```no_run
    /// # fn f(stream: netloom::rt::net::TcpStream) {
    /// let (mut reader, mut writer) = stream.into_split();
    /// netloom::rt::spawn_local(async move {
    ///     let _ = writer.write_all(b"hello").await;
    /// });
    /// # }
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let shared = Arc::new(self);
        (OwnedReadHalf(shared.clone()), OwnedWriteHalf(shared))
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

stream_io_methods!(TcpStream);
