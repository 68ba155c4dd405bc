//! Sockets for the async front-end: TCP, Unix-domain and UDP.
//!
//! Every type wraps a non-blocking std socket and registers it with the loop
//! that first uses it. Stream reads and writes take `&mut self`, so one task
//! at a time waits per direction (split a stream to read and write from two
//! tasks); listeners and UDP sockets take `&self`, and a second task waiting
//! in the same direction at the same time gets an error rather than
//! silently displacing the first.
//!
//! Deadlines follow Go's `net.Conn`: [`TcpStream::set_read_deadline`] and
//! friends take an `Instant` (or `None`); an operation blocked past its
//! deadline fails with [`std::io::ErrorKind::TimedOut`], and so does every
//! later one until the deadline is moved or cleared.

/// The stream operations TCP and Unix-domain streams share, with their
/// docs, written once: `stream_io_methods!(TcpStream)` adds them to
/// `TcpStream` (each delegates to the generic function of the same name
/// below).
macro_rules! stream_io_methods {
    ($ty:ident) => {
        impl $ty {
            /// Reads into `buf`; 0 means the peer closed its side.
            ///
            /// # Errors
            /// The kernel's error; `TimedOut` past the read deadline.
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// let mut buf = [0; 1024];
            /// let n = stream.read(&mut buf).await?;
            /// # Ok(()) }
            /// ```
            pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                $crate::rt::net::read(&self.source, buf).await
            }

            /// Scatter read (`readv`).
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::read`].")]
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// let (mut head, mut body) = ([0; 4], [0; 64]);
            /// let n = stream
            ///     .readv(&mut [std::io::IoSliceMut::new(&mut head), std::io::IoSliceMut::new(&mut body)])
            ///     .await?;
            /// # Ok(()) }
            /// ```
            pub async fn readv(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                $crate::rt::net::readv(&self.source, bufs).await
            }

            /// Waits until a read would not block (data, the end of the
            /// stream or an error is waiting), without reading: a connection
            /// that waits here needs no buffer yet. Like tokio's, it may
            /// return early after a read that filled its buffer exactly (the
            /// next read then waits).
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::read`].")]
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// stream.readable().await?;
            /// let mut buf = vec![0; 4096]; // only now
            /// let n = stream.read(&mut buf).await?;
            /// # Ok(()) }
            /// ```
            pub async fn readable(&mut self) -> std::io::Result<()> {
                $crate::rt::net::ready(&self.source, $crate::rt::scheduled_io::Direction::Read).await
            }

            /// Waits until a write would not block, without writing.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::write`].")]
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// stream.writable().await?;
            /// # Ok(()) }
            /// ```
            pub async fn writable(&mut self) -> std::io::Result<()> {
                $crate::rt::net::ready(&self.source, $crate::rt::scheduled_io::Direction::Write).await
            }

            /// Reads without consuming (`MSG_PEEK`).
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::read`].")]
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// let mut first = [0; 1];
            /// stream.peek(&mut first).await?;
            /// # Ok(()) }
            /// ```
            pub async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                $crate::rt::net::peek(&self.source, buf).await
            }

            /// Writes some of `buf`; returns how much.
            ///
            /// # Errors
            /// The kernel's error; `TimedOut` past the write deadline.
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// let n = stream.write(b"hello").await?;
            /// # Ok(()) }
            /// ```
            pub async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                $crate::rt::net::write(&self.source, buf).await
            }

            /// Writes all of `buf`.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::write`]; `WriteZero` if the kernel takes nothing.")]
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// stream.write_all(b"hello").await?;
            /// # Ok(()) }
            /// ```
            pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                $crate::rt::net::write_all(&self.source, buf).await
            }

            /// Gather write (`writev`); returns how much was written.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::write`].")]
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// use std::io::IoSlice;
            /// let n = stream.writev(&[IoSlice::new(b"head"), IoSlice::new(b"body")]).await?;
            /// # Ok(()) }
            /// ```
            pub async fn writev(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                $crate::rt::net::writev(&self.source, bufs).await
            }

            /// Shuts down one or both directions (never blocks).
            ///
            /// # Errors
            /// The kernel's error.
            ///
            /// ```no_run
            #[doc = concat!("# fn f(stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// stream.shutdown(std::net::Shutdown::Write)?;
            /// # Ok(()) }
            /// ```
            pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                $crate::rt::net::StreamIo::shutdown(self.source.get_ref(), how)
            }

            /// Go's `SetReadDeadline`: reads blocked past `at` fail with
            /// `TimedOut`, and so do later ones until the deadline moves;
            /// `None` clears it.
            ///
            /// # Errors
            /// Off a runtime loop, or on a loop other than the stream's.
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(mut stream: netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// use std::time::{Duration, Instant};
            /// stream.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)))?;
            /// let mut buf = [0; 64];
            /// match stream.read(&mut buf).await {
            ///     Err(e) if e.kind() == std::io::ErrorKind::TimedOut => { /* idle for 5 s */ }
            ///     other => { other?; }
            /// }
            /// # Ok(()) }
            /// ```
            pub fn set_read_deadline(&self, at: Option<std::time::Instant>) -> std::io::Result<()> {
                self.source
                    .set_deadline($crate::rt::scheduled_io::Direction::Read, at)
            }

            /// Go's `SetWriteDeadline`.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::set_read_deadline`].")]
            ///
            /// ```no_run
            #[doc = concat!("# fn f(stream: &netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// stream.set_write_deadline(None)?;
            /// # Ok(()) }
            /// ```
            pub fn set_write_deadline(&self, at: Option<std::time::Instant>) -> std::io::Result<()> {
                self.source
                    .set_deadline($crate::rt::scheduled_io::Direction::Write, at)
            }

            /// Go's `SetDeadline`: both directions.
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($ty), "::set_read_deadline`].")]
            ///
            /// ```no_run
            #[doc = concat!("# fn f(stream: &netloom::rt::net::", stringify!($ty), ") -> std::io::Result<()> {")]
            /// stream.set_deadline(Some(std::time::Instant::now()))?; // fail everything now
            /// # Ok(()) }
            /// ```
            pub fn set_deadline(&self, at: Option<std::time::Instant>) -> std::io::Result<()> {
                $crate::rt::net::set_deadline(&self.source, at)
            }
        }
    };
}

mod split;
mod tcp;
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
mod tls;
mod udp;
mod unix;

pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, SplitStream, WriteHalf};
pub use tcp::{TcpListener, TcpStream};
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
pub use tls::{TlsReadHalf, TlsStream, TlsWriteHalf};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use super::scheduled_io::{Direction, IoOp, IoSource, Waiter};
use crate::sys::socket;

/// The `&self` reads and writes of the std stream types (`&TcpStream` and
/// `&UnixStream` implement `Read` and `Write`) as one bound that generic
/// code, such as the split halves, can name.
pub(crate) trait StreamIo: AsRawFd {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl<S: AsRawFd + AsFd> StreamIo for S
where
    for<'s> &'s S: Read + Write,
{
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        Read::read_vectored(&mut &*self, bufs)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Write::write_vectored(&mut &*self, bufs)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(self).shutdown(how)
    }
}

/// Stream operations shared by TCP and Unix-domain streams.
pub(crate) async fn read<S: StreamIo>(source: &IoSource<S>, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len();
    IoOp::new(
        source,
        Direction::Read,
        Waiter::default(),
        move |s: &S| s.read(buf),
        // A short read drained the socket: the next arrival is a new edge.
        move |n: &usize| *n > 0 && *n < len,
    )
    .await
}

pub(crate) async fn readv<S: StreamIo>(
    source: &IoSource<S>,
    bufs: &mut [IoSliceMut<'_>],
) -> io::Result<usize> {
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    IoOp::new(
        source,
        Direction::Read,
        Waiter::default(),
        move |s: &S| s.read_vectored(bufs),
        move |n: &usize| *n > 0 && *n < len,
    )
    .await
}

/// Waits until the socket is ready in `direction` (for reading: data, end of
/// stream or an error is waiting), under that direction's deadline. No
/// syscall: it waits on the record's readiness, so a task can hold no
/// buffer until there is something to read.
pub(crate) async fn ready<S: AsRawFd>(
    source: &IoSource<S>,
    direction: Direction,
) -> io::Result<()> {
    IoOp::new(
        source,
        direction,
        Waiter::default(),
        |_: &S| Ok(()),
        // Nothing was consumed: the readiness stands.
        |_: &()| false,
    )
    .await
}

pub(crate) async fn peek<S: AsRawFd>(source: &IoSource<S>, buf: &mut [u8]) -> io::Result<usize> {
    IoOp::new(
        source,
        Direction::Read,
        Waiter::default(),
        move |s: &S| socket::peek(s.as_raw_fd(), buf),
        // Peeking consumes nothing: the data is still there.
        |_: &usize| false,
    )
    .await
}

pub(crate) async fn write<S: StreamIo>(source: &IoSource<S>, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len();
    IoOp::new(
        source,
        Direction::Write,
        Waiter::default(),
        move |s: &S| s.write(buf),
        // A short write filled the send buffer.
        move |n: &usize| *n < len,
    )
    .await
}

pub(crate) async fn writev<S: StreamIo>(
    source: &IoSource<S>,
    bufs: &[IoSlice<'_>],
) -> io::Result<usize> {
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    IoOp::new(
        source,
        Direction::Write,
        Waiter::default(),
        move |s: &S| s.write_vectored(bufs),
        move |n: &usize| *n < len,
    )
    .await
}

pub(crate) async fn write_all<S: StreamIo>(source: &IoSource<S>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(source, buf).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Waits until a non-blocking `connect` has finished, then reports its
/// outcome.
pub(crate) async fn finish_connect<S: AsRawFd + AsFd>(source: &IoSource<S>) -> io::Result<()> {
    IoOp::new(
        source,
        Direction::Write,
        Waiter::default(),
        |s: &S| {
            let sock = socket2::SockRef::from(s);
            if let Some(e) = sock.take_error()? {
                return Err(e);
            }
            match sock.peer_addr() {
                Ok(_) => Ok(()),
                // Still in progress: wait for the next writable edge.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            }
        },
        |_: &()| false,
    )
    .await
}

/// Go's `SetDeadline`: both directions.
pub(crate) fn set_deadline<S: AsRawFd>(
    source: &IoSource<S>,
    at: Option<Instant>,
) -> io::Result<()> {
    source.set_deadline(Direction::Read, at)?;
    source.set_deadline(Direction::Write, at)
}
