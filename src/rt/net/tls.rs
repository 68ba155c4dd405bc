//! TLS streams for the async front-end (feature `tls`): the session layer
//! of [`crate::tls`] over a [`TcpStream`] or [`UnixStream`](super::UnixStream).
//!
//! Every byte is in this stream's own bounded buffers: the inbound
//! ciphertext buffer holds one maximal TLS record, decrypted plaintext that
//! did not fit the caller's buffer waits (at most one buffer's worth) for
//! the next read, and sealed records wait in the outbound buffer only until
//! the socket takes them: a write first sends what an earlier one left.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::Shutdown;
#[cfg(any(feature = "tokio-io", feature = "futures-io"))]
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use super::{SplitStream, StreamIo, TcpStream};
use crate::rt::scheduled_io::{Direction, IoSource, Waiter};
use crate::tls::{TlsAcceptor, TlsConnector, TlsInfo, TlsSession, STAGE_LIMIT};

/// Room for the largest record TLS allows: a 5-byte header and up to
/// 2^14 + 2,048 bytes of ciphertext (rustls refuses longer ones).
const INBOUND_CAPACITY: usize = 5 + (1 << 14) + 2048;

/// Plaintext one write call encrypts at most, so the outbound buffer stays
/// bounded however large the caller's buffer is.
const WRITE_CHUNK: usize = 4 * STAGE_LIMIT;

/// Ciphertext the read side lets wait unsent (its answers to a peer's key
/// updates, say) before it stops reading until the socket takes it: a peer
/// that sends and never reads cannot grow the outbound buffer.
const OUTBOUND_LIMIT: usize = 64 * 1024;

/// A slice smaller than this is staged by `writev`, so that a frame header
/// and its body go out as one record.
const COALESCE_BELOW: usize = 4096;

impl TlsAcceptor {
    /// Runs the server handshake on an accepted stream. Bound it (against
    /// a peer that sends its handshake one byte a second) with a read
    /// deadline on the stream or with [`timeout`](crate::rt::timeout).
    ///
    /// # Errors
    /// `InvalidData` wrapping [`Error::Tls`](crate::Error::Tls) if the
    /// handshake fails (the peer got an alert), `UnexpectedEof` if the peer
    /// hangs up first, the socket's error, `TimedOut` past the deadline.
    ///
    /// ```no_run
    /// # async fn f(acceptor: netloom::tls::TlsAcceptor) -> std::io::Result<()> {
    /// use std::time::{Duration, Instant};
    /// let listener = netloom::rt::net::TcpListener::bind("127.0.0.1:8443")?;
    /// let (tcp, _) = listener.accept().await?;
    /// tcp.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)))?;
    /// let mut tls = acceptor.accept(tcp).await?;
    /// tls.get_ref().set_read_deadline(None)?;
    /// tls.write_all(b"hello over TLS").await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept<S: SplitStream>(&self, stream: S) -> io::Result<TlsStream<S>> {
        let session = self.session().map_err(to_io)?;
        TlsStream::handshake(stream, session).await
    }
}

impl TlsConnector {
    /// Runs the client handshake on a connected stream, verifying the
    /// server's certificate for `server_name`. Bound it as
    /// [`TlsAcceptor::accept`].
    ///
    /// # Errors
    /// As [`TlsAcceptor::accept`]; an invalid `server_name` is
    /// `InvalidInput`.
    ///
    /// ```no_run
    /// # async fn f(connector: netloom::tls::TlsConnector) -> std::io::Result<()> {
    /// let tcp = netloom::rt::net::TcpStream::connect("127.0.0.1:8443".parse().unwrap()).await?;
    /// let mut tls = connector.connect("localhost", tcp).await?;
    /// tls.write_all(b"hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect<S: SplitStream>(
        &self,
        server_name: &str,
        stream: S,
    ) -> io::Result<TlsStream<S>> {
        let session = self.session(server_name).map_err(to_io)?;
        TlsStream::handshake(stream, session).await
    }
}

/// netloom's error as the `io::Error` the stream API returns; the original
/// is inside (`e.get_ref()` downcasts to [`crate::Error`]).
fn to_io(e: crate::Error) -> io::Error {
    let kind = match e {
        crate::Error::Io(e) => return e,
        crate::Error::TlsTruncated => io::ErrorKind::UnexpectedEof,
        crate::Error::ConnClosed => io::ErrorKind::BrokenPipe,
        crate::Error::Tls(crate::TlsError::Config(_)) => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// A TLS connection over a netloom stream ([`TcpStream`] by default, or
/// [`UnixStream`](super::UnixStream)), made by [`TlsAcceptor::accept`] or
/// [`TlsConnector::connect`].
///
/// Reads return plaintext (0 once the peer has sent `close_notify`; a FIN
/// without it is an `UnexpectedEof` error wrapping
/// [`Error::TlsTruncated`](crate::Error::TlsTruncated)). Each write call
/// seals its bytes into records and sends them; [`writev`] coalesces small
/// slices into one record. [`shutdown`] sends `close_notify`, then FIN.
/// Deadlines are the underlying stream's ([`get_ref`]).
///
/// ```no_run
/// # async fn f(mut tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
/// let mut buf = [0; 4096];
/// loop {
///     let n = tls.read(&mut buf).await?;
///     if n == 0 {
///         break; // close_notify: an orderly end
///     }
///     tls.write_all(&buf[..n]).await?;
/// }
/// tls.shutdown().await
/// # }
/// ```
///
/// [`writev`]: TlsStream::writev
/// [`shutdown`]: TlsStream::shutdown
/// [`get_ref`]: TlsStream::get_ref
pub struct TlsStream<S = TcpStream> {
    io: S,
    state: Mutex<TlsState>,
}

impl<S> std::fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

/// The session and its buffers; behind a mutex so split halves share it.
struct TlsState {
    session: TlsSession,
    /// Ciphertext received, `inbound[..filled]`, not yet consumed
    /// (allocated, [`INBOUND_CAPACITY`] bytes, on the first read).
    inbound: Vec<u8>,
    filled: usize,
    /// Decrypted plaintext a read had no room for, from `plaintext_read`.
    plaintext: Vec<u8>,
    plaintext_read: usize,
    /// Sealed records not yet sent, from `outbound_sent`.
    outbound: Vec<u8>,
    outbound_sent: usize,
    /// The peer's data has ended with its close_notify.
    read_done: bool,
    /// A read failed (a corrupt record, truncation): later reads fail too,
    /// with this kind.
    read_failed: Option<io::ErrorKind>,
    /// Our close_notify is sealed; shut down the socket once it is sent.
    closing: bool,
    info: TlsInfo,
}

impl<S: SplitStream> TlsStream<S> {
    async fn handshake(io: S, session: TlsSession) -> io::Result<TlsStream<S>> {
        let stream = TlsStream {
            io,
            state: Mutex::new(TlsState {
                session,
                inbound: Vec::new(),
                filled: 0,
                plaintext: Vec::new(),
                plaintext_read: 0,
                outbound: Vec::new(),
                outbound_sent: 0,
                read_done: false,
                read_failed: None,
                closing: false,
                info: TlsInfo::default(),
            }),
        };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        let mut state = stream.lock();
        state.info = state.session.info();
        drop(state);
        Ok(stream)
    }

    fn lock(&self) -> MutexGuard<'_, TlsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn source(&self) -> &IoSource<S::Io> {
        self.io.source()
    }

    fn poll_handshake(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        loop {
            let processed = state.process_inbound(&mut []);
            if processed.is_err() {
                // The peer gets the fatal alert if its socket takes it.
                let _ = state.try_send(self.source().get_ref());
            }
            processed?;
            ready!(state.poll_send(self.source(), cx))?;
            if !state.session.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if ready!(state.poll_receive(self.source(), cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )));
            }
        }
    }

    fn poll_read_plain(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut state = self.lock();
        loop {
            if state.plaintext_read < state.plaintext.len() {
                return Poll::Ready(Ok(state.take_plaintext(buf)));
            }
            if let Some(kind) = state.read_failed {
                return Poll::Ready(Err(io::Error::new(
                    kind,
                    "the TLS session failed on an earlier read",
                )));
            }
            if state.read_done {
                return Poll::Ready(Ok(0));
            }
            if state.outbound.len() - state.outbound_sent > OUTBOUND_LIMIT {
                ready!(state.poll_send(self.source(), cx))?;
            }
            let processed = state.process_inbound(buf);
            // Answers to the peer (a key update, an alert) go out now if the
            // socket takes them, else with the next write.
            let sent = state.try_send(self.source().get_ref());
            let copied = processed?;
            sent?;
            if copied > 0 {
                return Poll::Ready(Ok(copied));
            }
            if state.session.peer_closed() {
                state.read_done = true;
                continue;
            }
            if ready!(state.poll_receive(self.source(), cx))? == 0 {
                let end = state.session.end_of_stream().map(|()| 0).map_err(to_io);
                match &end {
                    Ok(_) => state.read_done = true,
                    Err(e) => state.read_failed = Some(e.kind()),
                }
                return Poll::Ready(end);
            }
        }
    }

    /// Seals `buf` (up to [`WRITE_CHUNK`] bytes) after sending what earlier
    /// writes left; returns how much was taken. The records go to the
    /// socket now as far as it takes them, the rest with the next write or
    /// flush.
    fn poll_write_plain(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        ready!(state.poll_send(self.source(), cx))?;
        let buf = &buf[..buf.len().min(WRITE_CHUNK)];
        let state = &mut *state;
        let taken = state
            .session
            .write(buf, &mut state.outbound)
            .map_err(to_io)?;
        state.try_send(self.source().get_ref())?;
        Poll::Ready(Ok(taken))
    }

    /// As [`poll_write_plain`](Self::poll_write_plain), coalescing small
    /// slices into one record.
    fn poll_writev_plain(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        ready!(state.poll_send(self.source(), cx))?;
        let state = &mut *state;
        let mut taken = 0;
        for buf in bufs {
            let buf = &buf[..buf.len().min(WRITE_CHUNK - taken)];
            if buf.len() < COALESCE_BELOW {
                let mut staged = state.session.stage(buf);
                if staged < buf.len() {
                    state.session.flush(&mut state.outbound).map_err(to_io)?;
                    staged += state.session.stage(&buf[staged..]);
                }
                taken += staged;
            } else {
                taken += state
                    .session
                    .write(buf, &mut state.outbound)
                    .map_err(to_io)?;
            }
            if taken == WRITE_CHUNK {
                break;
            }
        }
        state.session.flush(&mut state.outbound).map_err(to_io)?;
        state.try_send(self.source().get_ref())?;
        Poll::Ready(Ok(taken))
    }

    fn poll_flush_plain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        let state = &mut *state;
        state.session.flush(&mut state.outbound).map_err(to_io)?;
        state.poll_send(self.source(), cx)
    }

    /// Seals `close_notify`, sends everything, then shuts down the write
    /// side of the socket.
    fn poll_shutdown_plain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        let state = &mut *state;
        if !state.closing {
            state.session.close(&mut state.outbound).map_err(to_io)?;
            state.closing = true;
        }
        let sent = ready!(state.poll_send(self.source(), cx));
        let done = sent.and_then(|()| StreamIo::shutdown(self.source().get_ref(), Shutdown::Write));
        Poll::Ready(match done {
            // The peer ended the session first and has hung up already (our
            // close_notify drew a reset): both sides are done, not an error.
            Err(e)
                if state.session.peer_closed()
                    && matches!(
                        e.kind(),
                        io::ErrorKind::NotConnected
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionReset
                    ) =>
            {
                Ok(())
            }
            other => other,
        })
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let state = self.lock();
        if state.plaintext_read < state.plaintext.len()
            || state.read_done
            || state.read_failed.is_some()
        {
            return Poll::Ready(Ok(()));
        }
        drop(state);
        self.source().poll_op(
            cx,
            Direction::Read,
            &mut Waiter::default(),
            |_| Ok(()),
            |_: &()| false,
        )
    }

    /// Reads plaintext into `buf`; 0 after the peer's `close_notify`.
    ///
    /// # Errors
    /// `UnexpectedEof` wrapping [`Error::TlsTruncated`](crate::Error::TlsTruncated)
    /// if the peer hung up without `close_notify`; `InvalidData` wrapping
    /// [`Error::Tls`](crate::Error::Tls) for a corrupt record or an alert;
    /// the socket's error; `TimedOut` past the read deadline.
    ///
    /// ```no_run
    /// # async fn f(mut tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
    /// let mut buf = [0; 1024];
    /// let n = tls.read(&mut buf).await?;
    /// # Ok(()) }
    /// ```
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_plain(cx, buf)).await
    }

    /// Waits until a read may have something (plaintext, ciphertext, the
    /// end of the stream), without reading: a connection waiting here needs
    /// no buffer of its caller's yet. It may return early, when only part
    /// of a record has arrived.
    ///
    /// # Errors
    /// As [`TlsStream::read`].
    ///
    /// ```no_run
    /// # async fn f(mut tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
    /// tls.readable().await?;
    /// let mut buf = vec![0; 4096];
    /// let n = tls.read(&mut buf).await?;
    /// # Ok(()) }
    /// ```
    pub async fn readable(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_readable(cx)).await
    }

    /// Seals and sends `buf` (up to 64 KiB of it); returns how much.
    ///
    /// # Errors
    /// `BrokenPipe` after [`shutdown`](TlsStream::shutdown); the socket's
    /// error; `TimedOut` past the write deadline.
    ///
    /// ```no_run
    /// # async fn f(mut tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
    /// let n = tls.write(b"hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = poll_fn(|cx| self.poll_write_plain(cx, buf)).await?;
        poll_fn(|cx| self.poll_flush_plain(cx)).await?;
        Ok(n)
    }

    /// Seals and sends all of `buf`.
    ///
    /// # Errors
    /// As [`TlsStream::write`].
    ///
    /// ```no_run
    /// # async fn f(mut tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
    /// tls.write_all(b"hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.poll_write_plain(cx, buf)).await?;
            buf = &buf[n..];
        }
        poll_fn(|cx| self.poll_flush_plain(cx)).await
    }

    /// Gather write: small slices (a frame header, a short body) are
    /// coalesced into one record; large ones are sealed straight from the
    /// caller's memory. Sends up to 64 KiB; returns how much.
    ///
    /// # Errors
    /// As [`TlsStream::write`].
    ///
    /// ```no_run
    /// # async fn f(mut tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
    /// use std::io::IoSlice;
    /// let body = b"payload";
    /// let header = (body.len() as u32).to_be_bytes();
    /// let n = tls.writev(&[IoSlice::new(&header), IoSlice::new(body)]).await?; // one record
    /// # Ok(()) }
    /// ```
    pub async fn writev(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = poll_fn(|cx| self.poll_writev_plain(cx, bufs)).await?;
        poll_fn(|cx| self.poll_flush_plain(cx)).await?;
        Ok(n)
    }

    /// Sends `close_notify`, then FIN; the peer reads an orderly end.
    /// Reading goes on until the peer closes too.
    ///
    /// # Errors
    /// The socket's error; `TimedOut` past the write deadline.
    ///
    /// ```no_run
    /// # async fn f(mut tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
    /// tls.write_all(b"bye").await?;
    /// tls.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_shutdown_plain(cx)).await
    }

    /// What the handshake negotiated.
    ///
    /// ```no_run
    /// # fn f(tls: &netloom::rt::net::TlsStream) {
    /// let alpn = tls.info().alpn_protocol();
    /// # }
    /// ```
    pub fn info(&self) -> TlsInfo {
        self.lock().info.clone()
    }

    /// The underlying stream, for its addresses, options and deadlines
    /// (reading or writing it directly would corrupt the session).
    ///
    /// ```no_run
    /// # fn f(tls: &netloom::rt::net::TlsStream) -> std::io::Result<()> {
    /// let peer = tls.get_ref().peer_addr()?;
    /// tls.get_ref().set_deadline(None)?;
    /// # Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Owned halves, for a reader task and a writer task on the same loop;
    /// they share the session.
    ///
    /// ```no_run
    /// # fn f(tls: netloom::rt::net::TlsStream) {
    /// let (mut reader, mut writer) = tls.into_split();
    /// netloom::rt::spawn_local(async move {
    ///     let _ = writer.write_all(b"hello").await;
    /// });
    /// # }
    /// ```
    pub fn into_split(self) -> (TlsReadHalf<S>, TlsWriteHalf<S>) {
        let shared = Arc::new(self);
        (TlsReadHalf(shared.clone()), TlsWriteHalf(shared))
    }
}

impl TlsState {
    /// Decrypts the complete records in `inbound`: plaintext fills `buf`
    /// first, the rest waits in `plaintext`. Returns how much went to
    /// `buf`.
    fn process_inbound(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let TlsState {
            session,
            inbound,
            filled,
            plaintext,
            plaintext_read,
            outbound,
            ..
        } = self;
        let mut copied = 0;
        let mut deliver = |record: &[u8]| {
            let direct = record.len().min(buf.len() - copied);
            buf[copied..copied + direct].copy_from_slice(&record[..direct]);
            copied += direct;
            plaintext.extend_from_slice(&record[direct..]);
        };
        let consumed = session.read_tls(&mut inbound[..*filled], outbound, &mut deliver);
        if *plaintext_read == plaintext.len() {
            plaintext.clear();
            *plaintext_read = 0;
        }
        match consumed {
            Ok(consumed) => {
                inbound.copy_within(consumed..*filled, 0);
                *filled -= consumed;
                Ok(copied)
            }
            Err(e) => {
                let e = to_io(e);
                self.read_failed = Some(e.kind());
                Err(e)
            }
        }
    }

    fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let waiting = &self.plaintext[self.plaintext_read..];
        let n = waiting.len().min(buf.len());
        buf[..n].copy_from_slice(&waiting[..n]);
        self.plaintext_read += n;
        if self.plaintext_read == self.plaintext.len() {
            self.plaintext.clear();
            self.plaintext_read = 0;
        }
        n
    }

    /// Reads ciphertext from the socket into the free part of `inbound`.
    fn poll_receive<I: StreamIo>(
        &mut self,
        source: &IoSource<I>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.filled == INBOUND_CAPACITY {
            // rustls refuses a record longer than this from its header, so
            // a full buffer cannot happen; refuse rather than grow.
            self.read_failed = Some(io::ErrorKind::InvalidData);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS record larger than the inbound buffer",
            )));
        }
        if self.inbound.is_empty() {
            self.inbound = vec![0; INBOUND_CAPACITY];
        }
        let free = &mut self.inbound[self.filled..];
        let len = free.len();
        let n = ready!(source.poll_op(
            cx,
            Direction::Read,
            &mut Waiter::default(),
            |s: &I| s.read(free),
            |n: &usize| *n > 0 && *n < len,
        ))?;
        self.filled += n;
        Poll::Ready(Ok(n))
    }

    /// Sends the outbound records, waiting while the socket is full.
    fn poll_send<I: StreamIo>(
        &mut self,
        source: &IoSource<I>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.outbound_sent < self.outbound.len() {
            let pending = &self.outbound[self.outbound_sent..];
            let len = pending.len();
            let n = ready!(source.poll_op(
                cx,
                Direction::Write,
                &mut Waiter::default(),
                |s: &I| s.write(pending),
                |n: &usize| *n < len,
            ))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outbound_sent += n;
        }
        self.outbound.clear();
        self.outbound_sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Sends what the socket takes without waiting.
    fn try_send<I: StreamIo>(&mut self, io: &I) -> io::Result<()> {
        while self.outbound_sent < self.outbound.len() {
            match io.write(&self.outbound[self.outbound_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.outbound_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outbound.clear();
        self.outbound_sent = 0;
        Ok(())
    }
}

/// The read half of [`TlsStream::into_split`].
///
/// ```no_run
/// # async fn f(tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
/// let (mut reader, _writer) = tls.into_split();
/// let mut buf = [0; 1024];
/// let n = reader.read(&mut buf).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TlsReadHalf<S = TcpStream>(Arc<TlsStream<S>>);

/// The write half of [`TlsStream::into_split`].
///
/// ```no_run
/// # async fn f(tls: netloom::rt::net::TlsStream) -> std::io::Result<()> {
/// let (_reader, mut writer) = tls.into_split();
/// writer.write_all(b"hello").await?;
/// writer.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TlsWriteHalf<S = TcpStream>(Arc<TlsStream<S>>);

impl<S: SplitStream> TlsReadHalf<S> {
    /// As [`TlsStream::read`].
    ///
    /// # Errors
    /// As [`TlsStream::read`].
    ///
    /// ```no_run
    /// # async fn f(mut reader: netloom::rt::net::TlsReadHalf) -> std::io::Result<()> {
    /// let mut buf = [0; 1024];
    /// let n = reader.read(&mut buf).await?;
    /// # Ok(()) }
    /// ```
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.0.poll_read_plain(cx, buf)).await
    }

    /// As [`TlsStream::readable`].
    ///
    /// # Errors
    /// As [`TlsStream::read`].
    ///
    /// ```no_run
    /// # async fn f(mut reader: netloom::rt::net::TlsReadHalf) -> std::io::Result<()> {
    /// reader.readable().await?;
    /// # Ok(()) }
    /// ```
    pub async fn readable(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.0.poll_readable(cx)).await
    }
}

impl<S: SplitStream> TlsWriteHalf<S> {
    /// As [`TlsStream::write`].
    ///
    /// # Errors
    /// As [`TlsStream::write`].
    ///
    /// ```no_run
    /// # async fn f(mut writer: netloom::rt::net::TlsWriteHalf) -> std::io::Result<()> {
    /// let n = writer.write(b"hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = poll_fn(|cx| self.0.poll_write_plain(cx, buf)).await?;
        poll_fn(|cx| self.0.poll_flush_plain(cx)).await?;
        Ok(n)
    }

    /// As [`TlsStream::write_all`].
    ///
    /// # Errors
    /// As [`TlsStream::write`].
    ///
    /// ```no_run
    /// # async fn f(mut writer: netloom::rt::net::TlsWriteHalf) -> std::io::Result<()> {
    /// writer.write_all(b"hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.0.poll_write_plain(cx, buf)).await?;
            buf = &buf[n..];
        }
        poll_fn(|cx| self.0.poll_flush_plain(cx)).await
    }

    /// As [`TlsStream::writev`].
    ///
    /// # Errors
    /// As [`TlsStream::write`].
    ///
    /// ```no_run
    /// # async fn f(mut writer: netloom::rt::net::TlsWriteHalf) -> std::io::Result<()> {
    /// use std::io::IoSlice;
    /// writer.writev(&[IoSlice::new(b"head"), IoSlice::new(b"body")]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn writev(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = poll_fn(|cx| self.0.poll_writev_plain(cx, bufs)).await?;
        poll_fn(|cx| self.0.poll_flush_plain(cx)).await?;
        Ok(n)
    }

    /// As [`TlsStream::shutdown`].
    ///
    /// # Errors
    /// As [`TlsStream::shutdown`].
    ///
    /// ```no_run
    /// # async fn f(mut writer: netloom::rt::net::TlsWriteHalf) -> std::io::Result<()> {
    /// writer.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.0.poll_shutdown_plain(cx)).await
    }
}

#[cfg(feature = "tokio-io")]
impl<S: SplitStream> tokio::io::AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(self.poll_read_plain(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio-io")]
impl<S: SplitStream> tokio::io::AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_plain(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_writev_plain(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_plain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_shutdown_plain(cx)
    }
}

#[cfg(feature = "futures-io")]
impl<S: SplitStream> futures_io::AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_plain(cx, buf)
    }
}

#[cfg(feature = "futures-io")]
impl<S: SplitStream> futures_io::AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_plain(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_writev_plain(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_plain(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_shutdown_plain(cx)
    }
}
