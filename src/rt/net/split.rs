//! The halves of a split stream, one set of types for TCP and Unix-domain
//! streams alike.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use super::{StreamIo, TcpStream, UnixStream};
use crate::rt::scheduled_io::{Direction, IoSource};

/// A stream that splits into halves: [`TcpStream`] or [`UnixStream`]. The
/// halves are generic over it, with `TcpStream` as the default, so
/// `OwnedReadHalf` is TCP's and `OwnedReadHalf<UnixStream>` the Unix one.
/// Sealed: implemented by netloom's streams only.
///
/// ```no_run
/// use netloom::rt::net::{OwnedReadHalf, SplitStream};
/// async fn drain<S: SplitStream>(mut reader: OwnedReadHalf<S>) -> std::io::Result<u64> {
///     let (mut total, mut buf) = (0, [0; 4096]);
///     loop {
///         match reader.read(&mut buf).await? {
///             0 => return Ok(total),
///             n => total += n as u64,
///         }
///     }
/// }
/// ```
pub trait SplitStream: sealed::Sealed {}

impl SplitStream for TcpStream {}
impl SplitStream for UnixStream {}

// The sealed-trait pattern: `Sealed` is public only so `SplitStream` may
// name it as a supertrait; outside the crate it cannot be named, so the
// crate-private types in it are not part of the API these lints guard.
#[allow(private_interfaces, private_bounds)]
pub(super) mod sealed {
    use super::{IoSource, StreamIo, TcpStream, UnixStream};

    /// The socket the halves drive.
    pub trait Sealed {
        type Io: StreamIo;
        fn source(&self) -> &IoSource<Self::Io>;
    }

    impl Sealed for TcpStream {
        type Io = std::net::TcpStream;
        fn source(&self) -> &IoSource<Self::Io> {
            &self.source
        }
    }

    impl Sealed for UnixStream {
        type Io = std::os::unix::net::UnixStream;
        fn source(&self) -> &IoSource<Self::Io> {
            &self.source
        }
    }
}

/// The read half of [`TcpStream::split`] (and [`UnixStream::split`]).
///
/// ```no_run
/// # fn f(stream: &mut netloom::rt::net::TcpStream) {
/// let (reader, _writer): (netloom::rt::net::ReadHalf<'_>, _) = stream.split();
/// # }
/// ```
#[derive(Debug)]
pub struct ReadHalf<'a, S = TcpStream>(pub(super) &'a S);

/// The write half of [`TcpStream::split`] (and [`UnixStream::split`]).
///
/// ```no_run
/// # fn f(stream: &mut netloom::rt::net::TcpStream) {
/// let (_reader, writer): (_, netloom::rt::net::WriteHalf<'_>) = stream.split();
/// # }
/// ```
#[derive(Debug)]
pub struct WriteHalf<'a, S = TcpStream>(pub(super) &'a S);

/// The read half of [`TcpStream::into_split`] (and
/// [`UnixStream::into_split`]).
///
/// ```no_run
/// # fn f(stream: netloom::rt::net::TcpStream) {
/// let (reader, _writer): (netloom::rt::net::OwnedReadHalf, _) = stream.into_split();
/// # }
/// ```
#[derive(Debug)]
pub struct OwnedReadHalf<S = TcpStream>(pub(super) Arc<S>);

/// The write half of [`TcpStream::into_split`] (and
/// [`UnixStream::into_split`]).
///
/// ```no_run
/// # fn f(stream: netloom::rt::net::TcpStream) {
/// let (_reader, writer): (_, netloom::rt::net::OwnedWriteHalf) = stream.into_split();
/// # }
/// ```
#[derive(Debug)]
pub struct OwnedWriteHalf<S = TcpStream>(pub(super) Arc<S>);

macro_rules! read_half {
    ($t:ty) => {
        impl<S: SplitStream> $t {
            /// As [`TcpStream::read`].
            ///
            /// # Errors
            /// As [`TcpStream::read`].
            ///
            /// ```no_run
            /// # async fn f(mut stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (mut reader, _) = stream.into_split();
            /// let n = reader.read(&mut [0; 64]).await?;
            /// # Ok(()) }
            /// ```
            pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                super::read(self.0.source(), buf).await
            }

            /// As [`TcpStream::readv`].
            ///
            /// # Errors
            /// As [`TcpStream::read`].
            ///
            /// ```no_run
            /// # async fn f(mut stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (mut reader, _) = stream.into_split();
            /// let n = reader.readv(&mut [std::io::IoSliceMut::new(&mut [0; 64])]).await?;
            /// # Ok(()) }
            /// ```
            pub async fn readv(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                super::readv(self.0.source(), bufs).await
            }

            /// As [`TcpStream::peek`].
            ///
            /// # Errors
            /// As [`TcpStream::read`].
            ///
            /// ```no_run
            /// # async fn f(mut stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (mut reader, _) = stream.into_split();
            /// let n = reader.peek(&mut [0; 64]).await?;
            /// # Ok(()) }
            /// ```
            pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                super::peek(self.0.source(), buf).await
            }

            /// As [`TcpStream::set_read_deadline`].
            ///
            /// # Errors
            /// As [`TcpStream::set_read_deadline`].
            ///
            /// ```no_run
            /// # fn f(stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (reader, _) = stream.into_split();
            /// reader.set_read_deadline(None)?;
            /// # Ok(()) }
            /// ```
            pub fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                self.0.source().set_deadline(Direction::Read, at)
            }
        }
    };
}

macro_rules! write_half {
    ($t:ty) => {
        impl<S: SplitStream> $t {
            /// As [`TcpStream::write`].
            ///
            /// # Errors
            /// As [`TcpStream::write`].
            ///
            /// ```no_run
            /// # async fn f(stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (_, mut writer) = stream.into_split();
            /// let n = writer.write(b"hi").await?;
            /// # Ok(()) }
            /// ```
            pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                super::write(self.0.source(), buf).await
            }

            /// As [`TcpStream::write_all`].
            ///
            /// # Errors
            /// As [`TcpStream::write_all`].
            ///
            /// ```no_run
            /// # async fn f(stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (_, mut writer) = stream.into_split();
            /// writer.write_all(b"hi").await?;
            /// # Ok(()) }
            /// ```
            pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
                super::write_all(self.0.source(), buf).await
            }

            /// As [`TcpStream::writev`].
            ///
            /// # Errors
            /// As [`TcpStream::write`].
            ///
            /// ```no_run
            /// # async fn f(stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (_, mut writer) = stream.into_split();
            /// writer.writev(&[std::io::IoSlice::new(b"hi")]).await?;
            /// # Ok(()) }
            /// ```
            pub async fn writev(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                super::writev(self.0.source(), bufs).await
            }

            /// Shuts down the write direction (sends FIN).
            ///
            /// # Errors
            /// The kernel's error.
            ///
            /// ```no_run
            /// # fn f(stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (_, writer) = stream.into_split();
            /// writer.shutdown()?;
            /// # Ok(()) }
            /// ```
            pub fn shutdown(&self) -> io::Result<()> {
                self.0.source().get_ref().shutdown(Shutdown::Write)
            }

            /// As [`TcpStream::set_write_deadline`].
            ///
            /// # Errors
            /// As [`TcpStream::set_read_deadline`].
            ///
            /// ```no_run
            /// # fn f(stream: netloom::rt::net::TcpStream) -> std::io::Result<()> {
            /// let (_, writer) = stream.into_split();
            /// writer.set_write_deadline(None)?;
            /// # Ok(()) }
            /// ```
            pub fn set_write_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                self.0.source().set_deadline(Direction::Write, at)
            }
        }
    };
}

impl<S> AsRef<S> for OwnedReadHalf<S> {
    fn as_ref(&self) -> &S {
        &self.0
    }
}

impl<S> AsRef<S> for OwnedWriteHalf<S> {
    fn as_ref(&self) -> &S {
        &self.0
    }
}

read_half!(ReadHalf<'_, S>);
read_half!(OwnedReadHalf<S>);
write_half!(WriteHalf<'_, S>);
write_half!(OwnedWriteHalf<S>);
