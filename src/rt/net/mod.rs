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

mod tcp;
mod udp;
mod unix;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpListener, TcpStream, WriteHalf};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use super::scheduled_io::{Direction, IoOp, IoSource, Waiter};
use crate::sys::socket;

/// Stream operations shared by TCP and Unix-domain streams.
pub(crate) async fn read<S>(source: &IoSource<S>, buf: &mut [u8]) -> io::Result<usize>
where
    S: AsRawFd,
    for<'s> &'s S: Read,
{
    let len = buf.len();
    IoOp::new(
        source,
        Direction::Read,
        Waiter::default(),
        move |s: &S| {
            let mut s = s;
            s.read(buf)
        },
        // A short read drained the socket: the next arrival is a new edge.
        move |n: &usize| *n > 0 && *n < len,
    )
    .await
}

pub(crate) async fn readv<S>(source: &IoSource<S>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>
where
    S: AsRawFd,
    for<'s> &'s S: Read,
{
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    IoOp::new(
        source,
        Direction::Read,
        Waiter::default(),
        move |s: &S| {
            let mut s = s;
            s.read_vectored(bufs)
        },
        move |n: &usize| *n > 0 && *n < len,
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

pub(crate) async fn write<S>(source: &IoSource<S>, buf: &[u8]) -> io::Result<usize>
where
    S: AsRawFd,
    for<'s> &'s S: Write,
{
    let len = buf.len();
    IoOp::new(
        source,
        Direction::Write,
        Waiter::default(),
        move |s: &S| {
            let mut s = s;
            s.write(buf)
        },
        // A short write filled the send buffer.
        move |n: &usize| *n < len,
    )
    .await
}

pub(crate) async fn writev<S>(source: &IoSource<S>, bufs: &[IoSlice<'_>]) -> io::Result<usize>
where
    S: AsRawFd,
    for<'s> &'s S: Write,
{
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    IoOp::new(
        source,
        Direction::Write,
        Waiter::default(),
        move |s: &S| {
            let mut s = s;
            s.write_vectored(bufs)
        },
        move |n: &usize| *n < len,
    )
    .await
}

pub(crate) async fn write_all<S>(source: &IoSource<S>, mut buf: &[u8]) -> io::Result<()>
where
    S: AsRawFd,
    for<'s> &'s S: Write,
{
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
