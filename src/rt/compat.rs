//! `tokio::io` and `futures_io` traits on the stream types, each behind its
//! cargo feature (`tokio-io`, `futures-io`), so codecs, `hyper` and TLS
//! adapters written against those traits run on netloom's loops.
//!
//! The poll methods go through the same per-descriptor record as the native
//! `async fn`s. They take `&mut self`, so each direction has one waiter; a
//! poll that is abandoned (its future dropped by a combinator) may leave its
//! waker in the slot until the next readiness, which then wakes the task
//! once spuriously.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::net::{TcpStream, UnixStream};
use super::scheduled_io::{Direction, IoSource, Waiter};

fn poll_read<S>(
    source: &IoSource<S>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>>
where
    S: AsRawFd,
    for<'s> &'s S: Read,
{
    let len = buf.len();
    source.poll_op(
        cx,
        Direction::Read,
        &mut Waiter::default(),
        |s: &S| {
            let mut s = s;
            s.read(buf)
        },
        |n: &usize| *n > 0 && *n < len,
    )
}

fn poll_write<S>(source: &IoSource<S>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>
where
    S: AsRawFd,
    for<'s> &'s S: Write,
{
    let len = buf.len();
    source.poll_op(
        cx,
        Direction::Write,
        &mut Waiter::default(),
        |s: &S| {
            let mut s = s;
            s.write(buf)
        },
        |n: &usize| *n < len,
    )
}

fn poll_writev<S>(
    source: &IoSource<S>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>>
where
    S: AsRawFd,
    for<'s> &'s S: Write,
{
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    source.poll_op(
        cx,
        Direction::Write,
        &mut Waiter::default(),
        |s: &S| {
            let mut s = s;
            s.write_vectored(bufs)
        },
        |n: &usize| *n < len,
    )
}

macro_rules! stream_traits {
    ($t:ty) => {
        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let unfilled = buf.initialize_unfilled();
                match poll_read(&self.source, cx, unfilled) {
                    Poll::Ready(Ok(n)) => {
                        buf.advance(n);
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self.source, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_writev(&self.source, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                // Writes go straight to the kernel: nothing is buffered here.
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.shutdown(Shutdown::Write))
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                poll_read(&self.source, cx, buf)
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self.source, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_writev(&self.source, cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.shutdown(Shutdown::Write))
            }
        }
    };
}

stream_traits!(TcpStream);
stream_traits!(UnixStream);
