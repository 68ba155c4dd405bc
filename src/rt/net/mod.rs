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

mod split;
mod tcp;
mod udp;
mod unix;

pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, SplitStream, WriteHalf};
pub use tcp::{TcpListener, TcpStream};
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
