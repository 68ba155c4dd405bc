//! Unix-domain stream listener and stream.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use socket2::{Domain, SockAddr, Type};

use super::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::listen::{self, SocketFile};
use crate::rt::scheduled_io::{Direction, IoOp, IoSource, Waiter};
use crate::sys::socket;
use crate::{Addr, Options, UnixAddr};

/// A Unix-domain stream listener.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let listener = netloom::rt::net::UnixListener::bind("/tmp/netloom.sock")?;
/// let (stream, _peer) = listener.accept().await?;
/// # Ok(()) }
/// ```
pub struct UnixListener {
    source: IoSource<std::os::unix::net::UnixListener>,
    /// Removes the socket file when the listener is dropped.
    _file: Option<SocketFile>,
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixListener {
    /// Binds to `path` (which must not exist yet).
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```no_run
    /// let listener = netloom::rt::net::UnixListener::bind("/tmp/netloom.sock")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let name = UnixAddr::Path(path.as_ref().to_path_buf());
        let bound = listen::bind_unix(&name, &Options::default()).map_err(listen::io_error)?;
        let (socket, file) = bound.into_parts();
        Ok(UnixListener {
            source: IoSource::listener(std::os::fd::OwnedFd::from(socket).into()),
            _file: file,
        })
    }

    /// Takes over an inherited listener: `systemd://`, `systemd://NAME` or
    /// `fd://N`, as [`TcpListener::inherit`](super::TcpListener::inherit)
    /// does; it must be a listening Unix stream socket. Its socket file
    /// belongs to whoever bound it and is left in place.
    ///
    /// # Errors
    /// `InvalidInput` naming the address when there is no such socket,
    /// several, or one of another kind.
    ///
    /// ```no_run
    /// let listener = netloom::rt::net::UnixListener::inherit("systemd://control")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inherit(url: &str) -> io::Result<UnixListener> {
        let socket = listen::take_single(url, crate::Transport::Unix).map_err(listen::io_error)?;
        Ok(UnixListener {
            source: IoSource::listener(std::os::fd::OwnedFd::from(socket).into()),
            _file: None,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```no_run
    /// # fn f(l: &netloom::rt::net::UnixListener) -> std::io::Result<()> {
    /// println!("{:?}", l.local_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Waits for a connection; returns it and the peer's name (usually
    /// [`UnixAddr::Unnamed`]).
    ///
    /// # Errors
    /// As [`TcpListener::accept`](super::TcpListener::accept).
    ///
    /// ```no_run
    /// # async fn f(l: netloom::rt::net::UnixListener) -> std::io::Result<()> {
    /// let (stream, _) = l.accept().await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept(&self) -> io::Result<(UnixStream, UnixAddr)> {
        let (socket, peer) = IoOp::new(
            &self.source,
            Direction::Read,
            Waiter::shared(),
            |l: &std::os::unix::net::UnixListener| loop {
                match socket::accept(l.as_raw_fd()) {
                    Err(e) if socket::is_transient_accept_error(&e) => {}
                    other => return other,
                }
            },
            |_: &(socket2::Socket, Addr)| false,
        )
        .await?;
        let peer = match peer {
            Addr::Unix(peer) => peer,
            Addr::Inet(_) => UnixAddr::Unnamed,
        };
        Ok((UnixStream::from_nonblocking(socket.into()), peer))
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

/// A Unix-domain stream connection.
///
/// ```
/// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// rt.block_on(async {
///     let (mut a, mut b) = netloom::rt::net::UnixStream::pair()?;
///     a.write_all(b"ping").await?;
///     let mut buf = [0; 4];
///     let n = b.read(&mut buf).await?;
///     assert_eq!(&buf[..n], b"ping");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UnixStream {
    pub(crate) source: IoSource<std::os::unix::net::UnixStream>,
}

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixStream {
    fn from_nonblocking(stream: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream {
            source: IoSource::new(stream),
        }
    }

    /// Connects to the listener at `path`.
    ///
    /// # Errors
    /// The kernel's error (`WouldBlock` when the listener's backlog is full,
    /// as Go's `net.Dial` reports `EAGAIN`).
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let stream = netloom::rt::net::UnixStream::connect("/tmp/netloom.sock").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let socket = socket::new_socket(Domain::UNIX, Type::STREAM, None)?;
        match socket.connect(&SockAddr::unix(path)?) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = UnixStream::from_nonblocking(socket.into());
        super::finish_connect(&stream.source).await?;
        Ok(stream)
    }

    /// A connected pair.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```
    /// let (a, b) = netloom::rt::net::UnixStream::pair()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((
            UnixStream::from_nonblocking(a),
            UnixStream::from_nonblocking(b),
        ))
    }

    /// Wraps a connected std stream (switching it to non-blocking mode).
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = netloom::rt::net::UnixStream::from_std(a)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream::from_nonblocking(stream))
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```no_run
    /// # fn f(s: &netloom::rt::net::UnixStream) -> std::io::Result<()> {
    /// println!("{:?}", s.peer_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// Borrowed halves, as [`TcpStream::split`](super::TcpStream::split).
    ///
    /// ```no_run
    /// # async fn f(mut stream: netloom::rt::net::UnixStream) -> std::io::Result<()> {
    /// let (mut reader, mut writer) = stream.split();
    /// let mut buf = [0; 16];
    /// let n = reader.read(&mut buf).await?;
    /// writer.write_all(&buf[..n]).await?;
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_, UnixStream>, WriteHalf<'_, UnixStream>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Owned halves, for a reader task and a writer task on the same loop,
    /// as [`TcpStream::into_split`](super::TcpStream::into_split); each
    /// half gives `&UnixStream` (`as_ref`) for the deadlines of both
    /// directions.
    ///
    /// ```no_run
    /// # fn f(stream: netloom::rt::net::UnixStream) {
    /// let (mut reader, mut writer) = stream.into_split();
    /// netloom::rt::spawn_local(async move {
    ///     let _ = writer.write_all(b"hello").await;
    /// });
    /// # }
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf<UnixStream>, OwnedWriteHalf<UnixStream>) {
        let shared = Arc::new(self);
        (OwnedReadHalf(shared.clone()), OwnedWriteHalf(shared))
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

stream_io_methods!(UnixStream);
