//! UDP socket.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use crate::rt::scheduled_io::{Direction, IoOp, IoSource, Waiter};

/// A UDP socket. Operations take `&self`: one task may receive while
/// another sends (share it with `Rc` or `Arc`).
///
/// ```
/// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// rt.block_on(async {
///     let a = netloom::rt::net::UdpSocket::bind("127.0.0.1:0")?;
///     let b = netloom::rt::net::UdpSocket::bind("127.0.0.1:0")?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UdpSocket {
    source: IoSource<std::net::UdpSocket>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl UdpSocket {
    /// Binds to the first address of `addr` that works.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```
    /// let socket = netloom::rt::net::UdpSocket::bind("127.0.0.1:0")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        UdpSocket::from_std(std::net::UdpSocket::bind(addr)?)
    }

    /// Takes over an inherited UDP socket: `systemd://`, `systemd://NAME`
    /// or `fd://N`, as [`TcpListener::inherit`](super::TcpListener::inherit)
    /// does.
    ///
    /// # Errors
    /// `InvalidInput` naming the address when there is no such socket,
    /// several, or one of another kind.
    ///
    /// ```no_run
    /// // Started by a systemd socket unit with ListenDatagram=5353.
    /// let socket = netloom::rt::net::UdpSocket::inherit("systemd://")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inherit(url: &str) -> io::Result<UdpSocket> {
        let socket = crate::listen::take_single(url, crate::Transport::Udp)
            .map_err(crate::listen::io_error)?;
        Ok(UdpSocket {
            source: IoSource::new(socket.into()),
        })
    }

    /// Wraps a std socket (switching it to non-blocking mode).
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// ```
    /// let std = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let socket = netloom::rt::net::UdpSocket::from_std(std)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            source: IoSource::new(socket),
        })
    }

    /// Sets the default peer of [`UdpSocket::send`] and the only source
    /// [`UdpSocket::recv`] accepts (never blocks).
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```
    /// let socket = netloom::rt::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect("127.0.0.1:9")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.source.get_ref().connect(addr)
    }

    /// The bound address.
    ///
    /// # Errors
    /// The kernel's error.
    ///
    /// ```
    /// let socket = netloom::rt::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Sends one datagram to `target`.
    ///
    /// # Errors
    /// The kernel's error; `TimedOut` past the write deadline.
    ///
    /// ```no_run
    /// # async fn f(s: netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// s.send_to(b"hi", "127.0.0.1:9000".parse().unwrap()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        IoOp::new(
            &self.source,
            Direction::Write,
            Waiter::shared(),
            move |s: &std::net::UdpSocket| s.send_to(buf, target),
            |_: &usize| false,
        )
        .await
    }

    /// Receives one datagram and its sender.
    ///
    /// # Errors
    /// The kernel's error; `TimedOut` past the read deadline.
    ///
    /// ```no_run
    /// # async fn f(s: netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// let mut buf = [0; 1500];
    /// let (n, from) = s.recv_from(&mut buf).await?;
    /// # Ok(()) }
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        IoOp::new(
            &self.source,
            Direction::Read,
            Waiter::shared(),
            move |s: &std::net::UdpSocket| s.recv_from(buf),
            |_: &(usize, SocketAddr)| false,
        )
        .await
    }

    /// Looks at the next datagram and its sender without consuming it.
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`].
    ///
    /// ```no_run
    /// # async fn f(s: netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// let (n, from) = s.peek_from(&mut [0; 1500]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        IoOp::new(
            &self.source,
            Direction::Read,
            Waiter::shared(),
            move |s: &std::net::UdpSocket| s.peek_from(buf),
            |_: &(usize, SocketAddr)| false,
        )
        .await
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`]; not connected.
    ///
    /// ```no_run
    /// # async fn f(s: netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// s.send(b"hi").await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        IoOp::new(
            &self.source,
            Direction::Write,
            Waiter::shared(),
            move |s: &std::net::UdpSocket| s.send(buf),
            |_: &usize| false,
        )
        .await
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`].
    ///
    /// ```no_run
    /// # async fn f(s: netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// let n = s.recv(&mut [0; 1500]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        IoOp::new(
            &self.source,
            Direction::Read,
            Waiter::shared(),
            move |s: &std::net::UdpSocket| s.recv(buf),
            |_: &usize| false,
        )
        .await
    }

    /// Go's `SetReadDeadline`.
    ///
    /// # Errors
    /// Off a runtime loop, or on a loop other than the socket's.
    ///
    /// ```no_run
    /// # fn f(s: &netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// s.set_read_deadline(None)?;
    /// # Ok(()) }
    /// ```
    pub fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        self.source.set_deadline(Direction::Read, at)
    }

    /// Go's `SetWriteDeadline`.
    ///
    /// # Errors
    /// As [`UdpSocket::set_read_deadline`].
    ///
    /// ```no_run
    /// # fn f(s: &netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// s.set_write_deadline(None)?;
    /// # Ok(()) }
    /// ```
    pub fn set_write_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        self.source.set_deadline(Direction::Write, at)
    }

    /// Go's `SetDeadline`.
    ///
    /// # Errors
    /// As [`UdpSocket::set_read_deadline`].
    ///
    /// ```no_run
    /// # fn f(s: &netloom::rt::net::UdpSocket) -> std::io::Result<()> {
    /// s.set_deadline(None)?;
    /// # Ok(()) }
    /// ```
    pub fn set_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        super::set_deadline(&self.source, at)
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}
