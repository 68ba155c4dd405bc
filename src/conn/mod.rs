//! A connection: its record in the loop, the view handed to callbacks, and
//! the thread-safe handle. The view and the handle serve UDP sockets too,
//! whose records are their own ([`DatagramRecord`]): the view reaches either
//! kind through [`RecordMut`].

mod state;
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
mod tls;

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use socket2::Socket;

use crate::buffer::{BufferPool, InboundBuffer, OutboundQueue};
use crate::datagram::{DatagramIo, DatagramRecord};
use crate::proxy_protocol::{HeaderParser, ProxyHeader, ProxyProtocol};
use crate::reactor::group::LoopGroup;
use crate::reactor::inbox::{InboxSender, Lane};
use crate::stats::Reported;
use crate::sys::{socket, Interest};
use crate::{Addr, Error, PeerCred, Result, Token, Transport};
pub(crate) use state::{ConnState, ConnTimer, Effect, Limits, ReadMode, TimerVerdict};
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
pub(crate) use tls::{OutboundSink, TlsConn};

/// What the engine should do after a callback returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    /// Carry on.
    #[default]
    None,
    /// Close this connection once everything written to it is flushed
    /// (bounded by `Options::close_timeout`).
    Close,
    /// Stop the whole engine gracefully (see [`Engine::stop`](crate::Engine::stop)).
    Shutdown,
}

/// A task that runs on a connection's loop with access to the connection.
pub(crate) type ConnTask<C> = Box<dyn FnOnce(&mut Conn<'_, C>) + Send>;
/// Called on the loop once an asynchronous write was handed to the kernel or
/// queued, or failed.
pub(crate) type WriteDone = Box<dyn FnOnce(Result<()>) + Send>;
/// Where a waiting dialer gets the outcome of its connect.
pub(crate) type DialReply<C> = mpsc::SyncSender<Result<ConnHandle<C>>>;

/// A connected stream for a loop to serve: accepted, or adopted by a
/// client.
pub(crate) struct Incoming {
    pub(crate) socket: Socket,
    pub(crate) peer: Addr,
    /// The PROXY protocol header it must send first, and how long it may
    /// take (`ListenerOptions::proxy_protocol`).
    pub(crate) proxy: Option<(ProxyProtocol, Duration)>,
    /// Its TLS session (server side when accepted, client side when
    /// adopted with `Client::adopt_tls`): the handshake runs before `on_open`.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) tls: Option<Box<TlsConn>>,
}

impl Incoming {
    /// A plain (not TLS) connection.
    pub(crate) fn plain(socket: Socket, peer: Addr) -> Incoming {
        Incoming {
            socket,
            peer,
            proxy: None,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            tls: None,
        }
    }
}

/// An outbound connection for a loop to open. Its context travels beside
/// it: as a value for a dial made on the loop itself (`Conn::dial`, so the
/// context need not be `Send`), boxed in a [`SentContext`] across threads.
pub(crate) struct Dial<C> {
    /// A fresh non-blocking socket; the loop connects it.
    pub(crate) socket: Socket,
    pub(crate) addr: Addr,
    pub(crate) timeout: Option<Duration>,
    pub(crate) reply: Option<DialReply<C>>,
    /// Bytes sent before anything else once connected, TLS included: a
    /// PROXY protocol header.
    pub(crate) proxy_header: Option<Vec<u8>>,
    /// The client session that starts once connected.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) tls: Option<Box<TlsConn>>,
}

/// A dial's context sent to a loop from another thread (a `Client`, whose
/// contexts are `Send`): boxed so that [`Command`] stays `Send` whatever
/// the context type.
pub(crate) type SentContext<C> = Box<dyn FnOnce() -> C + Send>;

/// A connection whose reading is paused until another one drains: resumed
/// through its loop's inbox.
pub(crate) struct DrainWaiter<C> {
    pub(crate) token: Token,
    pub(crate) inbox: Arc<InboxSender<Command<C>>>,
}

/// Messages to a loop's inbox.
pub(crate) enum Command<C> {
    /// A connection accepted by another loop's acceptor, or adopted.
    Register(Incoming),
    Write {
        token: Token,
        data: Vec<u8>,
        done: Option<WriteDone>,
    },
    Writev {
        token: Token,
        data: Vec<Vec<u8>>,
        done: Option<WriteDone>,
    },
    /// One datagram from a UDP socket's handle.
    SendTo {
        token: Token,
        to: SocketAddr,
        data: Vec<u8>,
        done: Option<WriteDone>,
    },
    Wake(Token),
    Close(Token),
    ShutdownWrite(Token),
    Execute(Token, ConnTask<C>),
    /// Open an outbound connection on this loop.
    Connect(Dial<C>, SentContext<C>),
    /// Serve an existing UDP socket on this loop; the reply gets its handle.
    AdoptDatagram(Socket, DialReply<C>),
    ResumeReading(Token),
    /// Resume `waiter` once connection `peer` has drained to the low-water mark.
    ResumeWhenDrained {
        peer: Token,
        waiter: DrainWaiter<C>,
    },
}

/// What a loop keeps per connection (Go's `pollDesc` plus gnet's `conn`).
pub(crate) struct ConnRecord<C> {
    pub(crate) io: ConnIo,
    pub(crate) peer: Addr,
    pub(crate) inbound: InboundBuffer,
    /// The readiness the poller watches the socket for.
    pub(crate) interest: Interest,
    /// Queued for an extra `on_traffic` this turn (`wake`).
    pub(crate) woken: bool,
    /// Queued to be read again next turn (edge trigger, see the loop).
    pub(crate) unread: bool,
    /// Allocated only when a handle is first asked for.
    pub(crate) shared: Option<Arc<ConnShared>>,
    /// A connection to resume once this one's outbound bytes drain.
    pub(crate) drain_waiter: Option<Box<DrainWaiter<C>>>,
    /// What the connection last added to its loop's counters.
    pub(crate) reported: Reported,
    /// The PROXY protocol header: being read, or what it said.
    pub(crate) proxy: Option<Box<ProxyStage>>,
    pub(crate) ctx: C,
}

/// A connection's PROXY protocol header (accepted connections of an
/// address bound with `ListenerOptions::proxy_protocol`).
pub(crate) enum ProxyStage {
    /// Still arriving: reads go to the parser, `on_open` waits.
    Reading(HeaderParser),
    /// Parsed; `peer` is its client where it names one.
    Parsed(ProxyHeader),
}

impl<C> ConnRecord<C> {
    /// The record of a stream connection in `state`'s phase.
    pub(crate) fn new(stream: Socket, peer: Addr, state: ConnState, ctx: C) -> Self {
        ConnRecord {
            io: ConnIo {
                stream,
                outbound: OutboundQueue::default(),
                state,
                #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
                tls: None,
                ops: None,
            },
            peer,
            inbound: InboundBuffer::default(),
            interest: Interest::READABLE,
            woken: false,
            unread: false,
            shared: None,
            drain_waiter: None,
            reported: Reported::default(),
            proxy: None,
            ctx,
        }
    }

    /// Whether inbound bytes may arrive that no read announces: plaintext
    /// decrypted, or bytes after a PROXY header, while reading is paused.
    /// Resuming then calls `on_traffic` for them.
    pub(crate) fn fills_inbound_while_paused(&self) -> bool {
        self.io.is_tls() || self.proxy.is_some()
    }

    /// The state handles share, made when the first handle is.
    pub(crate) fn shared(&mut self) -> Arc<ConnShared> {
        ConnShared::get_or_make(&mut self.shared, self.io.pending())
    }
}

/// The socket and its write side: what [`Writer`] may touch while the
/// handler still reads the inbound bytes.
///
/// The socket is a plain `socket2::Socket` whatever the transport: TCP and
/// Unix stream sockets take the same `recv`/`send`/`sendmsg` calls, so the
/// stream read and write paths do not dispatch on the transport. UDP
/// sockets have a record of their own ([`DatagramRecord`]).
pub(crate) struct ConnIo {
    pub(crate) stream: Socket,
    pub(crate) outbound: OutboundQueue,
    /// The lifecycle: what may be read and written, and when it closes.
    pub(crate) state: ConnState,
    /// A TLS connection's session (stream connections only): the stream
    /// paths encrypt and decrypt through it.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) tls: Option<Box<TlsConn>>,
    /// Set when the connection's bytes move by completions (io_uring):
    /// writes only queue, and the loop sends the queue.
    pub(crate) ops: Option<OpsInFlight>,
}

/// What a completion-driven connection has lent the kernel.
#[derive(Default)]
pub(crate) struct OpsInFlight {
    pub(crate) recv: RecvOp,
    /// A send of the queue's front runs is in flight: those bytes stay put
    /// (see `OutboundQueue`) until its completion.
    pub(crate) sending: bool,
    /// The iovecs of a multi-run send in flight (kept until its completion).
    pub(crate) iovecs: Vec<libc::iovec>,
    /// The `sendmsg` header naming them; made by the first multi-run send.
    pub(crate) msg: Option<Box<libc::msghdr>>,
    /// Ring buffers whose bytes completed while reading was paused (before
    /// the recv's cancellation landed), in order, as (buffer, start, end):
    /// kept lent, not copied, so the ring bounds them; handed to the reader
    /// once reading resumes, at most a read buffer's worth per
    /// `on_traffic`, as if read then.
    pub(crate) held: std::collections::VecDeque<(u16, u32, u32)>,
    /// The peer's FIN completed while reading was paused, not told yet.
    pub(crate) eof: bool,
}

/// A connection's multishot recv.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) enum RecvOp {
    /// None armed.
    #[default]
    Idle,
    Armed,
    /// Armed, its cancellation asked for: ends with a completion without
    /// `F_MORE`.
    Cancelling,
}

impl ConnIo {
    /// Bytes written and not yet taken by the kernel.
    pub(crate) fn pending(&self) -> usize {
        self.outbound.len() + self.staged()
    }

    /// TLS plaintext staged to be sealed: backlog like the ciphertext.
    fn staged(&self) -> usize {
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if let Some(tls) = &self.tls {
            return tls.staged();
        }
        0
    }

    /// Writes `data` now if nothing is queued, queueing what the kernel does
    /// not take.
    pub(crate) fn write_slices(&mut self, data: &[&[u8]], pool: &mut BufferPool) -> Result<()> {
        if !self.state.accepts_writes() {
            return Err(Error::ConnClosed);
        }
        self.send_slices(data, pool)
    }

    /// Writes `data` to a stream now if nothing is queued, queueing what
    /// the kernel does not take; the caller checked that writes are taken.
    pub(crate) fn send_slices(&mut self, data: &[&[u8]], pool: &mut BufferPool) -> Result<()> {
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if let Some(tls) = &mut self.tls {
            // Sealed into the queue; the loop sends it when it settles the
            // connection, after the callback's other writes.
            let mut out = OutboundSink {
                queue: &mut self.outbound,
                pool,
            };
            return match tls.write(data, &mut out) {
                Err(Error::Tls(e)) => {
                    self.state.fail(Error::Tls(e.clone()));
                    Err(Error::Tls(e))
                }
                other => other,
            };
        }
        let total: usize = data.iter().map(|d| d.len()).sum();
        let mut written = 0;
        if self.outbound.is_empty()
            && total > 0
            && !self.state.is_connecting()
            && self.ops.is_none()
        {
            let slices: Vec<IoSlice<'_>>;
            let result = if data.len() == 1 {
                (&self.stream).write(data[0])
            } else {
                slices = data.iter().map(|d| IoSlice::new(d)).collect();
                (&self.stream).write_vectored(&slices)
            };
            match result {
                Ok(n) => {
                    written = n;
                    self.state.note_sent(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.state.fail(Error::Io(e));
                    return Err(Error::ConnClosed);
                }
            }
        }
        for piece in data {
            if written >= piece.len() {
                written -= piece.len();
                continue;
            }
            self.outbound.push_slice(&piece[written..], pool);
            written = 0;
        }
        Ok(())
    }

    /// Queues an owned buffer (from a handle) behind what is already queued.
    /// The caller checked that handle writes are taken.
    pub(crate) fn write_owned(&mut self, data: Vec<u8>, pool: &mut BufferPool) -> Result<()> {
        if (self.outbound.is_empty() && self.ops.is_none()) || self.is_tls() {
            return self.send_slices(&[&data], pool);
        }
        self.outbound.push_owned(data, pool);
        Ok(())
    }

    /// Seals what the TLS session staged into the queue; a failure fails
    /// the connection.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) fn seal_staged(&mut self, pool: &mut BufferPool) {
        if let Some(tls) = &mut self.tls {
            let mut out = OutboundSink {
                queue: &mut self.outbound,
                pool,
            };
            if let Err(e) = tls.seal(&mut out) {
                self.state.fail(e);
            }
        }
    }

    /// Seals what the TLS session staged, or, once a close or FIN is due
    /// (`arriving`: handle bytes still on their way, which go first), our
    /// `close_notify`; then hands the queue to the kernel unless it is
    /// already known to be full (`waiting_writable`). A failure fails the
    /// connection.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) fn seal_tls(
        &mut self,
        arriving: usize,
        waiting_writable: bool,
        pool: &mut BufferPool,
    ) {
        let Some(tls) = &mut self.tls else {
            return;
        };
        let mut out = OutboundSink {
            queue: &mut self.outbound,
            pool,
        };
        let sealed = if self.state.wants_close_notify(arriving) {
            tls.close_notify(&mut out)
        } else {
            tls.seal(&mut out)
        };
        if let Err(e) = sealed {
            self.state.fail(e);
        }
        if !self.outbound.is_empty() && !waiting_writable && !self.state.is_connecting() {
            self.flush_outbound(pool);
        }
    }

    /// Whether the connection speaks TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if self.tls.is_some() {
            return true;
        }
        false
    }

    /// Writes queued bytes until the kernel pushes back. Returns true if
    /// anything was written.
    pub(crate) fn flush_outbound(&mut self, pool: &mut BufferPool) -> bool {
        if self.ops.is_some() {
            // The loop sends the queue, one send in flight.
            return false;
        }
        let mut progressed = false;
        while !self.outbound.is_empty() {
            match self.outbound.write_to(&mut &self.stream, pool) {
                Ok(0) => break,
                Ok(n) => {
                    progressed = true;
                    self.state.note_sent(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.state.fail(Error::Io(e));
                    break;
                }
            }
        }
        progressed
    }
}

/// The part of a connection that handles on other threads read.
pub(crate) struct ConnShared {
    pub(crate) closed: AtomicBool,
    /// Bytes sent by handles that the loop has not taken from its inbox yet.
    pub(crate) in_flight: AtomicUsize,
    /// The outbound queue's length, as of the loop's last look.
    pub(crate) outbound: AtomicUsize,
}

impl ConnShared {
    /// The state in `slot`, made there first (with `outbound` queued bytes)
    /// if no handle was asked for yet.
    pub(crate) fn get_or_make(
        slot: &mut Option<Arc<ConnShared>>,
        outbound: usize,
    ) -> Arc<ConnShared> {
        slot.get_or_insert_with(|| {
            Arc::new(ConnShared {
                closed: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                outbound: AtomicUsize::new(outbound),
            })
        })
        .clone()
    }
}

/// The record a [`Conn`] reaches: a stream connection's or a UDP socket's.
/// Each place where the two differ is a `match` on this (or on [`Outbound`]).
pub(crate) enum RecordMut<'a, C> {
    Stream(&'a mut ConnRecord<C>),
    Datagram(&'a mut DatagramRecord<C>),
}

impl<C> RecordMut<'_, C> {
    /// A stream's own inbound buffer: the bytes a callback left unconsumed
    /// (a UDP socket keeps none: datagrams are never joined).
    fn kept_inbound(&self) -> Option<&InboundBuffer> {
        match self {
            RecordMut::Stream(rec) => Some(&rec.inbound),
            RecordMut::Datagram(_) => None,
        }
    }

    /// [`RecordMut::kept_inbound`], mutably.
    pub(crate) fn kept_inbound_mut(&mut self) -> Option<&mut InboundBuffer> {
        match self {
            RecordMut::Stream(rec) => Some(&mut rec.inbound),
            RecordMut::Datagram(_) => None,
        }
    }

    fn socket(&self) -> &Socket {
        match self {
            RecordMut::Stream(rec) => &rec.io.stream,
            RecordMut::Datagram(rec) => &rec.socket,
        }
    }

    fn peer(&self) -> &Addr {
        match self {
            RecordMut::Stream(rec) => &rec.peer,
            RecordMut::Datagram(rec) => &rec.peer,
        }
    }

    fn ctx(&self) -> &C {
        match self {
            RecordMut::Stream(rec) => &rec.ctx,
            RecordMut::Datagram(rec) => &rec.ctx,
        }
    }

    fn ctx_mut(&mut self) -> &mut C {
        match self {
            RecordMut::Stream(rec) => &mut rec.ctx,
            RecordMut::Datagram(rec) => &mut rec.ctx,
        }
    }

    /// The context and the write side, borrowed together.
    fn ctx_and_outbound(&mut self) -> (&mut C, Outbound<'_>) {
        match self {
            RecordMut::Stream(rec) => (&mut rec.ctx, Outbound::Stream(&mut rec.io)),
            RecordMut::Datagram(rec) => (&mut rec.ctx, Outbound::Datagram(&mut rec.io)),
        }
    }
}

/// The per-loop resources a [`Conn`] reaches, kept by the loop as one field
/// so a callback's `Conn` borrows them while the connection's record stays
/// borrowed from the loop's slab.
pub(crate) struct ConnEnv<C> {
    pub(crate) pool: BufferPool,
    /// Connections queued for an extra `on_traffic` this turn.
    pub(crate) woken: Vec<Token>,
    /// This loop's own inbox, for the handles a callback makes.
    pub(crate) inbox: Arc<InboxSender<Command<C>>>,
    /// Outbound connections asked for by callbacks, opened after they return.
    pub(crate) dials: Vec<(Dial<C>, C)>,
    pub(crate) async_write_cap: usize,
    pub(crate) max_inbound: usize,
    /// The engine's loops: whether it drains or stops (`Conn::is_draining`).
    pub(crate) group: Arc<LoopGroup>,
}

/// A connection, as seen from inside a callback.
///
/// The inbound bytes are everything received and not yet consumed; when a
/// callback consumes all of them they never leave the loop's shared read
/// buffer (zero copy). Writes go straight to the socket when nothing is
/// queued; the rest is queued and flushed with `writev` when the socket is
/// writable.
///
/// # UDP
/// A UDP address is served by one socket per loop, and that socket is the
/// `Conn` of every `on_traffic` call for it: the inbound bytes are **one
/// datagram** (what is left unconsumed is dropped when the callback
/// returns), [`Conn::peer_addr`] is its sender, [`Conn::write`] replies to
/// that sender and [`Conn::send_to`] sends to any address. The sender is an
/// ordinary value (clone it, store it, send to it later through a
/// [`ConnHandle`] or `send_to`). Replies are queued and leave together with
/// one `sendmmsg` once the received batch is handled. A datagram longer than
/// `Options::read_buffer_size` arrives cut to it and [`Conn::truncated`] says
/// so. UDP sockets get no `on_open`/`on_close`, and `close`, `shutdown_write`
/// and [`Action::Close`](crate::Action::Close) do nothing on them (the socket
/// serves every peer), nor do `pause_reading` and `set_auto_pause` (reading
/// pauses only while replies wait to be sent); the context is per socket and
/// loop.
///
/// # Examples
/// ```no_run
/// use netloom::{Action, Conn, Handler};
///
/// /// Answers every complete line with its length.
/// struct LineLengths;
/// impl Handler for LineLengths {
///     type Context = u64; // lines seen on this connection
///     fn on_traffic(&self, conn: &mut Conn<'_, u64>) -> Action {
///         while let Some(end) = conn.peek(usize::MAX).iter().position(|&b| b == b'\n') {
///             let line = conn.next(end + 1);
///             let reply = format!("{}\n", line.len() - 1);
///             *conn.context_mut() += 1;
///             if conn.write(reply.as_bytes()).is_err() {
///                 return Action::Close;
///             }
///         }
///         Action::None
///     }
/// }
/// ```
pub struct Conn<'a, C> {
    pub(crate) rec: RecordMut<'a, C>,
    pub(crate) token: Token,
    pub(crate) env: &'a mut ConnEnv<C>,
    /// Newly read bytes still in the loop's shared buffer (empty when the
    /// connection had bytes left over, which are then in `rec.inbound`).
    pub(crate) fresh: &'a [u8],
}

impl<'a, C> Conn<'a, C> {
    pub(crate) fn new(
        mut rec: RecordMut<'a, C>,
        token: Token,
        env: &'a mut ConnEnv<C>,
        mut fresh: &'a [u8],
    ) -> Self {
        if let Some(kept) = rec.kept_inbound_mut() {
            if !kept.is_empty() && !fresh.is_empty() {
                // Leftovers first: append so the handler sees one contiguous run.
                kept.extend(fresh, &mut env.pool);
                fresh = &[];
            }
        }
        Conn {
            rec,
            token,
            env,
            fresh,
        }
    }

    /// Moves unconsumed fresh bytes into the connection's own buffer, and
    /// gives that buffer back to the pool when it is empty. What is left of
    /// a datagram is dropped: datagrams are never joined.
    pub(crate) fn finish(self) {
        let rec = match self.rec {
            RecordMut::Stream(rec) => rec,
            RecordMut::Datagram(_) => return,
        };
        if !self.fresh.is_empty() {
            rec.inbound.extend(self.fresh, &mut self.env.pool);
        }
        let unconsumed = rec.inbound.len();
        if unconsumed > self.env.max_inbound {
            rec.io.state.fail(Error::InboundOverflow {
                len: unconsumed,
                max: self.env.max_inbound,
            });
        }
        rec.inbound.release_if_empty(&mut self.env.pool);
    }

    fn inbound(&self) -> &[u8] {
        match self.rec.kept_inbound() {
            Some(kept) if !kept.is_empty() => kept.bytes(),
            _ => self.fresh,
        }
    }

    /// Number of inbound bytes not yet consumed.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let waiting = conn.inbound_len();
    /// # }
    /// ```
    pub fn inbound_len(&self) -> usize {
        self.inbound().len()
    }

    /// Up to `n` inbound bytes, without consuming them (`usize::MAX`: all).
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// if conn.peek(4).len() == 4 { /* a 4-byte header is here */ }
    /// # }
    /// ```
    pub fn peek(&self, n: usize) -> &[u8] {
        let data = self.inbound();
        &data[..n.min(data.len())]
    }

    /// Up to `n` inbound bytes, consumed.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// let everything = conn.next(usize::MAX).to_vec();
    /// # }
    /// ```
    pub fn next(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.inbound_len());
        match self.rec.kept_inbound_mut() {
            Some(kept) if !kept.is_empty() => kept.take(n),
            _ => {
                let (taken, rest) = self.fresh.split_at(n);
                self.fresh = rest;
                taken
            }
        }
    }

    /// Consumes up to `n` inbound bytes; returns how many.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// conn.discard(usize::MAX);
    /// # }
    /// ```
    pub fn discard(&mut self, n: usize) -> usize {
        self.next(n).len()
    }

    /// Borrows the inbound bytes and a [`Writer`] at the same time, so a
    /// handler can write (parts of) what it reads without copying it first.
    /// Consume what was used afterwards with [`Conn::discard`].
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// let (inbound, mut out) = conn.split();
    /// let n = inbound.len();
    /// out.write(inbound)?; // echo, zero copy when the kernel takes it all
    /// conn.discard(n);
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (&[u8], Writer<'_>) {
        let (inbound, out) = match &mut self.rec {
            RecordMut::Stream(rec) => {
                let inbound = if rec.inbound.is_empty() {
                    self.fresh
                } else {
                    rec.inbound.bytes()
                };
                (inbound, Outbound::Stream(&mut rec.io))
            }
            RecordMut::Datagram(rec) => (self.fresh, Outbound::Datagram(&mut rec.io)),
        };
        (inbound, Writer::new(out, &mut self.env.pool))
    }

    /// The write side alone (what `write` and `writev` go through).
    fn writer(&mut self) -> Writer<'_> {
        let out = match &mut self.rec {
            RecordMut::Stream(rec) => Outbound::Stream(&mut rec.io),
            RecordMut::Datagram(rec) => Outbound::Datagram(&mut rec.io),
        };
        Writer::new(out, &mut self.env.pool)
    }

    /// Bytes written but not yet taken by the kernel.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let backlog = conn.outbound_len();
    /// # }
    /// ```
    pub fn outbound_len(&self) -> usize {
        match &self.rec {
            RecordMut::Stream(rec) => rec.io.pending(),
            RecordMut::Datagram(rec) => rec.io.pending(),
        }
    }

    /// Writes `data`: at once if nothing is queued, otherwise after what is.
    /// On UDP: queues `data` as one datagram to the sender of the datagram
    /// being handled.
    ///
    /// # Errors
    /// [`Error::ConnClosed`] once the connection is closed, failed, or its
    /// write side was shut down; on UDP, an `EMSGSIZE` [`Error::Io`] for a
    /// datagram larger than UDP allows.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// conn.write(b"hello\n")?;
    /// # Ok(()) }
    /// ```
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.writer().write(data)
    }

    /// Writes several buffers with one `writev`, in order (on UDP: as one
    /// datagram).
    ///
    /// # Errors
    /// As [`Conn::write`].
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// conn.writev(&[b"header: 1\r\n", b"\r\n", b"body"])?;
    /// # Ok(()) }
    /// ```
    pub fn writev(&mut self, data: &[&[u8]]) -> Result<()> {
        self.writer().writev(data)
    }

    /// Tries to hand queued bytes to the kernel now (the loop also flushes
    /// by itself when the socket becomes writable).
    ///
    /// # Errors
    /// [`Error::ConnClosed`] if the connection failed while flushing.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// conn.flush()?;
    /// # Ok(()) }
    /// ```
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.rec {
            RecordMut::Stream(rec) => {
                #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
                rec.io.seal_staged(&mut self.env.pool);
                rec.io.flush_outbound(&mut self.env.pool);
                if rec.io.state.is_failed() {
                    return Err(Error::ConnClosed);
                }
            }
            RecordMut::Datagram(rec) => {
                rec.io.flush(&rec.socket);
            }
        }
        Ok(())
    }

    /// Closes the connection once everything written is flushed (the same
    /// as returning [`Action::Close`](crate::Action::Close)). Does nothing on
    /// UDP.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// conn.close();
    /// # }
    /// ```
    pub fn close(&mut self) {
        match &mut self.rec {
            RecordMut::Stream(rec) => rec.io.state.close(),
            // It serves every peer: only the engine's stop closes it.
            RecordMut::Datagram(_) => {}
        }
    }

    /// Half-closes: sends FIN once everything written is flushed, and keeps
    /// reading until the peer closes its side. Does nothing on UDP.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// conn.shutdown_write();
    /// # }
    /// ```
    pub fn shutdown_write(&mut self) {
        match &mut self.rec {
            RecordMut::Stream(rec) => rec.io.state.shutdown_write(),
            // Datagrams have no end of stream to send.
            RecordMut::Datagram(_) => {}
        }
    }

    /// Whether the peer has finished sending: its FIN was read (see
    /// [`Handler::on_eof`](crate::Handler::on_eof)). Writing may go on.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// if conn.is_read_closed() { /* no more requests will come */ }
    /// # }
    /// ```
    pub fn is_read_closed(&self) -> bool {
        match &self.rec {
            RecordMut::Stream(rec) => rec.io.state.is_read_closed(),
            RecordMut::Datagram(_) => false,
        }
    }

    /// Queues one datagram to `to` (UDP only); it leaves with the next
    /// `sendmmsg`, after the current batch or on [`Conn::flush`].
    ///
    /// # Errors
    /// [`Error::Unsupported`] on stream transports; an `EMSGSIZE`
    /// [`Error::Io`] for a datagram larger than UDP allows;
    /// [`Error::ConnClosed`] while the engine stops.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// let monitor: std::net::SocketAddr = "127.0.0.1:7000".parse().unwrap();
    /// conn.send_to(monitor, b"seen a datagram")?;
    /// # Ok(()) }
    /// ```
    pub fn send_to(&mut self, to: SocketAddr, data: &[u8]) -> Result<()> {
        self.writer().send_to(to, data)
    }

    /// For the datagram being handled (UDP): its real length if it was longer
    /// than `Options::read_buffer_size` and arrived cut to it (macOS and
    /// FreeBSD do not tell the real length: there it is the length kept).
    /// `None` for whole datagrams and on streams.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// if let Some(len) = conn.truncated() {
    ///     eprintln!("dropping a {len}-byte datagram from {}", conn.peer_addr());
    ///     conn.discard(usize::MAX);
    /// }
    /// # }
    /// ```
    pub fn truncated(&self) -> Option<usize> {
        match &self.rec {
            RecordMut::Stream(_) => None,
            RecordMut::Datagram(rec) => rec.io.truncated_from,
        }
    }

    /// Whether the connection is closing (a UDP socket never is while
    /// callbacks run on it).
    pub(crate) fn is_closing(&self) -> bool {
        match &self.rec {
            RecordMut::Stream(rec) => rec.io.state.is_closing(),
            RecordMut::Datagram(_) => false,
        }
    }

    /// Closes the connection once flushed, with `err` for `on_close`. On
    /// UDP `err` concerns only the datagram being handled (its rest is
    /// dropped when the callback returns): it is logged, the socket serves
    /// on.
    pub(crate) fn close_with_error(&mut self, err: Error) {
        match &mut self.rec {
            RecordMut::Stream(rec) => rec.io.state.close_with_error(err),
            RecordMut::Datagram(rec) => {
                log::warn!("netloom: datagram from {} dropped: {err}", rec.peer)
            }
        }
    }

    /// Makes `to` the sender that replies go to (a UDP handle's `execute`).
    pub(crate) fn reply_to(&mut self, to: SocketAddr) {
        match &mut self.rec {
            RecordMut::Stream(_) => {}
            RecordMut::Datagram(rec) => rec.reply_to(to),
        }
    }

    /// Calls `on_traffic` again after the current batch of events, even if
    /// no new bytes arrive.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// conn.wake();
    /// # }
    /// ```
    pub fn wake(&mut self) {
        let woken = match &mut self.rec {
            RecordMut::Stream(rec) => &mut rec.woken,
            RecordMut::Datagram(rec) => &mut rec.woken,
        };
        if !*woken {
            *woken = true;
            self.env.woken.push(self.token);
        }
    }

    /// The connection's identity, unique within its engine (see [`Token`]).
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// println!("{:?}", conn.token());
    /// # }
    /// ```
    pub fn token(&self) -> Token {
        self.token
    }

    /// The peer's address: an IP address and port for TCP, usually
    /// [`UnixAddr::Unnamed`](crate::UnixAddr::Unnamed) for a Unix domain
    /// client. Clone it to keep it.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// println!("from {}", conn.peer_addr());
    /// let ip = conn.peer_addr().inet().map(|a| a.ip());
    /// # }
    /// ```
    pub fn peer_addr(&self) -> &Addr {
        self.rec.peer()
    }

    /// Whether the engine is draining ([`Engine::drain`](crate::Engine::drain),
    /// a handoff to a new process) or stopping: it accepts no more
    /// connections and stops once the open ones are closed, or when
    /// `shutdown_grace` runs out. A request-response protocol answers the
    /// request in progress and then closes (HTTP: `Connection: close`), so
    /// that no client sees a connection cut mid-request.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let keep_alive = !conn.is_draining();
    /// # }
    /// ```
    pub fn is_draining(&self) -> bool {
        self.env.group.is_draining() || self.env.group.is_stopping()
    }

    /// The local address of the connection.
    ///
    /// # Errors
    /// The kernel's error from `getsockname`.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) -> std::io::Result<()> {
    /// println!("on {}", conn.local_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> io::Result<Addr> {
        Ok(Addr::from_sockaddr(&self.rec.socket().local_addr()?))
    }

    /// The connection's transport.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// println!("over {:?}", conn.transport());
    /// # }
    /// ```
    pub fn transport(&self) -> Transport {
        match &self.rec {
            RecordMut::Stream(rec) => match rec.peer {
                Addr::Unix(_) => Transport::Unix,
                Addr::Inet(_) => Transport::Tcp,
            },
            RecordMut::Datagram(_) => Transport::Udp,
        }
    }

    /// The credentials (pid, uid, gid) of the process at the other end of a
    /// Unix domain connection, as of when it connected (Linux `SO_PEERCRED`,
    /// FreeBSD `LOCAL_PEERCRED`, macOS `getpeereid` and `LOCAL_PEERPID`).
    ///
    /// # Errors
    /// [`Error::Unsupported`] on TCP and UDP; the kernel's error otherwise.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// let cred = conn.peer_cred()?;
    /// println!("pid {} uid {}", cred.pid, cred.uid);
    /// # Ok(()) }
    /// ```
    pub fn peer_cred(&self) -> Result<PeerCred> {
        if self.transport() != Transport::Unix {
            return Err(Error::Unsupported(
                "peer credentials exist for Unix sockets only",
            ));
        }
        Ok(socket::peer_cred(self.rec.socket().as_raw_fd())?)
    }

    /// The socket, for any option [`socket2::SockRef`] can set or read on
    /// this connection (`set_nodelay`, `set_tcp_keepalive`, `set_linger`,
    /// `set_recv_buffer_size`, `set_tos`, ...).
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) -> std::io::Result<()> {
    /// conn.socket().set_nodelay(false)?;
    /// # Ok(()) }
    /// ```
    pub fn socket(&self) -> socket2::SockRef<'_> {
        socket2::SockRef::from(self.rec.socket())
    }

    /// The typed per-connection context.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, u32>) {
    /// let requests: u32 = *conn.context();
    /// # }
    /// ```
    pub fn context(&self) -> &C {
        self.rec.ctx()
    }

    /// The typed per-connection context, mutably.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, u32>) {
    /// *conn.context_mut() += 1;
    /// # }
    /// ```
    pub fn context_mut(&mut self) -> &mut C {
        self.rec.ctx_mut()
    }

    /// The context and the write side, borrowed together (a codec in the
    /// context encodes what the writer sends).
    pub(crate) fn context_and_writer(&mut self) -> (&mut C, Writer<'_>) {
        let (ctx, out) = self.rec.ctx_and_outbound();
        (ctx, Writer::new(out, &mut self.env.pool))
    }

    /// A handle for other threads. On UDP it is bound to the sender of the
    /// datagram being handled: its `async_write` replies to that sender.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// let handle = conn.handle();
    /// std::thread::spawn(move || handle.async_write(b"later".to_vec()));
    /// # }
    /// ```
    pub fn handle(&mut self) -> ConnHandle<C> {
        let (shared, reply_to) = match &mut self.rec {
            RecordMut::Stream(rec) => (rec.shared(), None),
            RecordMut::Datagram(rec) => (rec.shared(), Some(rec.io.sender)),
        };
        let mut handle = ConnHandle::new(
            self.token,
            shared,
            self.env.inbox.clone(),
            self.env.async_write_cap,
        );
        handle.reply_to = reply_to;
        handle
    }
    /// Opens an outbound TCP connection to `addr` **on this connection's
    /// loop**, with `ctx` as its context: the building block of a proxy, whose
    /// two sides then live on one thread. The connect starts when this
    /// callback returns and never blocks the loop. On success the new
    /// connection gets `on_open`; on failure (refused, unreachable, `timeout`
    /// passed) it gets only `on_close` with [`Error::Connect`] or
    /// [`Error::ConnectTimeout`].
    ///
    /// # Errors
    /// [`Error::Io`] if no socket can be created (for example at the
    /// descriptor limit); nothing is dialed then.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netloom::{Conn, ConnHandle};
    ///
    /// #[derive(Default)]
    /// struct Side {
    ///     peer: Option<ConnHandle<Side>>,
    /// }
    ///
    /// fn open_backend(conn: &mut Conn<'_, Side>) -> netloom::Result<()> {
    ///     let frontend = Side { peer: Some(conn.handle()) };
    ///     let backend: std::net::SocketAddr = "127.0.0.1:6379".parse().unwrap();
    ///     conn.dial(backend, Some(Duration::from_secs(3)), frontend)
    /// }
    /// ```
    pub fn dial(&mut self, addr: impl Into<Addr>, timeout: Option<Duration>, ctx: C) -> Result<()> {
        let addr = addr.into();
        let dial = Dial {
            socket: crate::sys::socket::stream_socket(&addr)?,
            addr,
            timeout,
            reply: None,
            proxy_header: None,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            tls: None,
        };
        self.env.dials.push((dial, ctx));
        Ok(())
    }

    /// As [`Conn::dial`], and the new connection sends `header` before
    /// any other byte (before a TLS ClientHello too): a PROXY protocol
    /// header from [`proxy_protocol::encode`](crate::proxy_protocol::encode),
    /// so that a server behind a proxy built on netloom sees the client's
    /// address.
    ///
    /// # Errors
    /// As [`Conn::dial`].
    ///
    /// ```
    /// use netloom::proxy_protocol::{encode, ProxyProtocol};
    /// fn open_backend(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    ///     let backend: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    ///     let client = conn.peer_addr().inet();
    ///     let frontend = conn.local_addr()?.inet();
    ///     let header = encode(ProxyProtocol::V2, client.zip(frontend));
    ///     conn.dial_with_proxy_header(backend, None, header, ())
    /// }
    /// ```
    pub fn dial_with_proxy_header(
        &mut self,
        addr: impl Into<Addr>,
        timeout: Option<Duration>,
        header: Vec<u8>,
        ctx: C,
    ) -> Result<()> {
        self.dial(addr, timeout, ctx)?;
        if let Some((dial, _)) = self.env.dials.last_mut() {
            dial.proxy_header = Some(header);
        }
        Ok(())
    }

    /// The PROXY protocol header the connection began with (an address
    /// bound with [`ListenerOptions::proxy_protocol`](crate::ListenerOptions::proxy_protocol)):
    /// the client's and the frontend's addresses, the balancer's own
    /// address (the socket's peer), the TLVs. `None` elsewhere.
    /// [`Conn::peer_addr`] already is the client's address where the
    /// header names one.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// if let Some(proxy) = conn.proxy() {
    ///     println!("{} via {}", conn.peer_addr(), proxy.balancer());
    /// }
    /// # }
    /// ```
    pub fn proxy(&self) -> Option<&ProxyHeader> {
        let rec = match &self.rec {
            RecordMut::Stream(rec) => rec,
            RecordMut::Datagram(_) => return None,
        };
        match rec.proxy.as_deref() {
            Some(ProxyStage::Parsed(header)) => Some(header),
            _ => None,
        }
    }

    /// As [`Conn::dial`], over TLS (feature `tls`): the new connection
    /// runs a client handshake through `connector`, verifying the server as
    /// `server_name`, before its `on_open`; a failed handshake gets only
    /// `on_close` with the error.
    ///
    /// # Errors
    /// As [`Conn::dial`]; [`Error::Tls`] for an invalid `server_name`.
    ///
    /// ```no_run
    /// # fn f(conn: &mut netloom::Conn<'_, ()>, connector: &netloom::tls::TlsConnector) -> netloom::Result<()> {
    /// let backend: std::net::SocketAddr = "127.0.0.1:8443".parse().unwrap();
    /// conn.dial_tls(backend, None, connector, "localhost", ())?;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn dial_tls(
        &mut self,
        addr: impl Into<Addr>,
        timeout: Option<Duration>,
        connector: &crate::tls::TlsConnector,
        server_name: &str,
        ctx: C,
    ) -> Result<()> {
        let session = connector.session(server_name)?;
        self.dial(addr, timeout, ctx)?;
        if let Some((dial, _)) = self.env.dials.last_mut() {
            dial.tls = Some(TlsConn::new(session));
        }
        Ok(())
    }

    /// What the TLS handshake negotiated (SNI, ALPN, the peer's
    /// certificates, version, cipher suite, resumption); `None` on a
    /// connection without TLS (feature `tls`).
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// if let Some(tls) = conn.tls() {
    ///     println!("{:?} for {:?}", tls.version(), tls.server_name());
    /// }
    /// # }
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn tls(&self) -> Option<&crate::tls::TlsInfo> {
        match &self.rec {
            RecordMut::Stream(rec) => rec.io.tls.as_ref().and_then(|tls| tls.info()),
            RecordMut::Datagram(_) => None,
        }
    }

    /// Stops reading from this connection (netty's `autoRead = false`):
    /// inbound bytes wait in the kernel, and the peer is slowed down by TCP
    /// flow control, until [`Conn::resume_reading`] or
    /// [`ConnHandle::resume_reading`].
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// conn.pause_reading();
    /// # }
    /// ```
    pub fn pause_reading(&mut self) {
        match &mut self.rec {
            RecordMut::Stream(rec) => rec.io.state.hold_reading(true),
            // Reading pauses only while replies wait to be sent.
            RecordMut::Datagram(_) => {}
        }
    }

    /// Whether reading pauses by itself while this connection's own
    /// outbound bytes are above the high-water mark (default: yes). That is
    /// right when replies are made from what is read (echo, request and
    /// response); a proxy side, whose outbound bytes come from *another*
    /// connection, turns it off so its reading depends only on where its
    /// bytes go ([`Conn::pause_reading_until_drained`]), not on its own
    /// backlog, which would couple the two directions and can deadlock.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// conn.set_auto_pause(false);
    /// # }
    /// ```
    pub fn set_auto_pause(&mut self, on: bool) {
        match &mut self.rec {
            RecordMut::Stream(rec) => rec.io.state.set_manual_pacing(!on),
            // Reading always pauses while replies wait to be sent.
            RecordMut::Datagram(_) => {}
        }
    }

    /// Undoes [`Conn::pause_reading`].
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) {
    /// conn.resume_reading();
    /// # }
    /// ```
    pub fn resume_reading(&mut self) {
        let refilled = match &mut self.rec {
            RecordMut::Stream(rec) => {
                rec.io.state.hold_reading(false);
                rec.fills_inbound_while_paused()
            }
            RecordMut::Datagram(_) => false,
        };
        if refilled && self.inbound_len() > 0 {
            // Decrypted (or after a PROXY header) while paused: no new
            // bytes will raise an edge.
            self.wake();
        }
    }

    /// Pauses reading from this connection until `peer` (on any loop) has
    /// drained its outbound bytes to the low-water mark, or closed; at once
    /// if it already has. A proxy calls this when the side it forwards to
    /// has more than the high-water mark pending, so a slow reader slows the
    /// sender instead of growing memory.
    ///
    /// # Errors
    /// [`Error::EngineStopped`] if `peer`'s loop has exited (reading is not
    /// paused then).
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>, peer: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// if peer.pending() > 256 * 1024 {
    ///     conn.pause_reading_until_drained(peer)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pause_reading_until_drained(&mut self, peer: &ConnHandle<C>) -> Result<()> {
        let waiter = DrainWaiter {
            token: self.token,
            inbox: self.env.inbox.clone(),
        };
        peer.send(
            Lane::Urgent,
            Command::ResumeWhenDrained {
                peer: peer.token,
                waiter,
            },
        )?;
        self.pause_reading();
        Ok(())
    }
}

/// The write side of a connection, borrowed from [`Conn::split`].
pub struct Writer<'a> {
    out: Outbound<'a>,
    pool: &'a mut BufferPool,
}

/// Where a record's writes go: a stream's outbound queue, or a UDP socket's
/// queue of datagrams.
pub(crate) enum Outbound<'a> {
    Stream(&'a mut ConnIo),
    Datagram(&'a mut DatagramIo),
}

impl<'a> Writer<'a> {
    /// The write side `out`, with the loop's buffer pool.
    pub(crate) fn new(out: Outbound<'a>, pool: &'a mut BufferPool) -> Self {
        Writer { out, pool }
    }

    /// Whether a write arriving from a `ConnHandle` is taken (a UDP socket
    /// takes them as long as it is served).
    pub(crate) fn accepts_handle_writes(&self) -> bool {
        match &self.out {
            Outbound::Stream(io) => io.state.accepts_handle_writes(),
            Outbound::Datagram(_) => true,
        }
    }

    /// A handle's owned buffer, queued behind what is already queued (on
    /// UDP: one datagram to the current sender).
    pub(crate) fn write_owned(self, data: Vec<u8>) -> Result<()> {
        match self.out {
            Outbound::Stream(io) => io.write_owned(data, self.pool),
            Outbound::Datagram(d) => d.reply(&[&data]),
        }
    }

    /// A handle's buffers, written in order (on UDP: as one datagram to the
    /// current sender).
    pub(crate) fn write_handle_slices(self, data: &[&[u8]]) -> Result<()> {
        match self.out {
            Outbound::Stream(io) => io.send_slices(data, self.pool),
            Outbound::Datagram(d) => d.reply(data),
        }
    }

    /// One datagram to `to`.
    pub(crate) fn send_to(self, to: SocketAddr, data: &[u8]) -> Result<()> {
        match self.out {
            Outbound::Stream(io) if io.state.is_closing() => Err(Error::ConnClosed),
            Outbound::Stream(_) => Err(Error::Unsupported("send_to needs a UDP socket")),
            Outbound::Datagram(d) => d.push(to, &[data]),
        }
    }
}

impl Writer<'_> {
    /// As [`Conn::write`].
    ///
    /// # Errors
    /// [`Error::ConnClosed`] once the connection is closed or failed.
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// let (_, mut out) = conn.split();
    /// out.write(b"hi")?;
    /// # Ok(()) }
    /// ```
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.writev(&[data])
    }

    /// As [`Conn::writev`].
    ///
    /// # Errors
    /// As [`Writer::write`].
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, ()>) -> netloom::Result<()> {
    /// let (_, mut out) = conn.split();
    /// out.writev(&[b"a", b"b"])?;
    /// # Ok(()) }
    /// ```
    pub fn writev(&mut self, data: &[&[u8]]) -> Result<()> {
        match &mut self.out {
            Outbound::Stream(io) => io.write_slices(data, self.pool),
            Outbound::Datagram(d) => d.reply(data),
        }
    }
}

impl<C> Read for Conn<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len();
        let data = self.next(n);
        buf[..data.len()].copy_from_slice(data);
        Ok(data.len())
    }
}

impl<C> AsRawFd for Conn<'_, C> {
    fn as_raw_fd(&self) -> RawFd {
        self.rec.socket().as_raw_fd()
    }
}

impl<C> AsFd for Conn<'_, C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rec.socket().as_fd()
    }
}

/// A thread-safe handle to a connection, for use outside its loop's callbacks.
///
/// Operations travel through the loop's inbox (the urgent lane) and run on the
/// loop in the order they were made through this handle (and its clones on
/// the same thread). Once the connection is closed every operation returns
/// [`Error::ConnClosed`]; a handle never reaches a newer connection that
/// reuses the same slot or descriptor number (see [`Token`]).
///
/// # Examples
/// ```no_run
/// use netloom::{Action, Conn, Handler};
///
/// struct Greeter;
/// impl Handler for Greeter {
///     type Context = ();
///     fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
///         let handle = conn.handle();
///         std::thread::spawn(move || {
///             std::thread::sleep(std::time::Duration::from_millis(10));
///             let _ = handle.async_write(b"welcome\n".to_vec());
///         });
///         Action::None
///     }
///     fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action {
///         Action::None
///     }
/// }
/// ```
pub struct ConnHandle<C> {
    token: Token,
    shared: Arc<ConnShared>,
    inbox: Arc<InboxSender<Command<C>>>,
    cap: usize,
    /// UDP: the sender the handle was made for (where `async_write` goes).
    reply_to: Option<SocketAddr>,
}

impl<C> Clone for ConnHandle<C> {
    fn clone(&self) -> Self {
        ConnHandle {
            token: self.token,
            shared: self.shared.clone(),
            inbox: self.inbox.clone(),
            cap: self.cap,
            reply_to: self.reply_to,
        }
    }
}

impl<C> std::fmt::Debug for ConnHandle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("token", &self.token)
            .finish()
    }
}

impl<C> ConnHandle<C> {
    /// A handle to a UDP socket whose `async_write` goes to `to`.
    pub(crate) fn for_datagrams(mut self, to: SocketAddr) -> Self {
        self.reply_to = Some(to);
        self
    }

    pub(crate) fn new(
        token: Token,
        shared: Arc<ConnShared>,
        inbox: Arc<InboxSender<Command<C>>>,
        cap: usize,
    ) -> Self {
        ConnHandle {
            token,
            shared,
            inbox,
            cap,
            reply_to: None,
        }
    }

    fn send(&self, lane: Lane, cmd: Command<C>) -> Result<()> {
        if self.is_closed() {
            return Err(Error::ConnClosed);
        }
        self.inbox.send(lane, cmd).map_err(|_| Error::EngineStopped)
    }

    /// Whether the connection is known to be closed.
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) {
    /// if h.is_closed() { /* stop producing */ }
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl<C: 'static> ConnHandle<C> {
    /// The connection's token.
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) {
    /// let token = h.token();
    /// # }
    /// ```
    pub fn token(&self) -> Token {
        self.token
    }

    fn reserve(&self, len: usize) -> Result<()> {
        let before = self.shared.in_flight.fetch_add(len, Ordering::AcqRel)
            + self.shared.outbound.load(Ordering::Acquire);
        if before + len > self.cap && before > 0 {
            self.shared.in_flight.fetch_sub(len, Ordering::AcqRel);
            return Err(Error::OutboundFull {
                pending: before,
                cap: self.cap,
            });
        }
        Ok(())
    }

    /// Queues `data` for the connection (UDP: one datagram to the sender
    /// the handle was made for).
    ///
    /// # Errors
    /// [`Error::ConnClosed`] if the connection is closed, [`Error::OutboundFull`]
    /// if its pending bytes would pass `Options::async_write_cap` (a single
    /// write larger than the cap is accepted when nothing is pending), and
    /// [`Error::EngineStopped`] if the loop has exited.
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// h.async_write(b"pong\n".to_vec())?;
    /// # Ok(()) }
    /// ```
    pub fn async_write(&self, data: Vec<u8>) -> Result<()> {
        self.write_with(data, None)
    }

    /// Like [`ConnHandle::async_write`], then runs `done` on the loop with
    /// the outcome once the bytes were written or queued behind earlier ones
    /// (or could not be).
    ///
    /// # Errors
    /// As [`ConnHandle::async_write`]; `done` is not called then.
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// h.async_write_then(b"x".to_vec(), |res| {
    ///     if let Err(e) = res { eprintln!("lost: {e}"); }
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn async_write_then(
        &self,
        data: Vec<u8>,
        done: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<()> {
        self.write_with(data, Some(Box::new(done)))
    }

    fn write_with(&self, data: Vec<u8>, done: Option<WriteDone>) -> Result<()> {
        let len = data.len();
        let token = self.token;
        let cmd = match self.reply_to {
            Some(to) => Command::SendTo {
                token,
                to,
                data,
                done,
            },
            None => Command::Write { token, data, done },
        };
        self.send_write(len, cmd)
    }

    /// Queues one datagram to `to` (UDP sockets' handles only).
    ///
    /// # Errors
    /// [`Error::Unsupported`] on a stream connection's handle; otherwise as
    /// [`ConnHandle::async_write`].
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// let peer: std::net::SocketAddr = "127.0.0.1:7000".parse().unwrap();
    /// h.async_send_to(peer, b"tick".to_vec())?;
    /// # Ok(()) }
    /// ```
    pub fn async_send_to(&self, to: SocketAddr, data: Vec<u8>) -> Result<()> {
        if self.reply_to.is_none() {
            return Err(Error::Unsupported("send_to needs a UDP socket"));
        }
        let len = data.len();
        let cmd = Command::SendTo {
            token: self.token,
            to,
            data,
            done: None,
        };
        self.send_write(len, cmd)
    }

    /// Counts `len` bytes against the cap, then queues the write command;
    /// gives the bytes back if the loop is gone.
    fn send_write(&self, len: usize, cmd: Command<C>) -> Result<()> {
        self.reserve(len)?;
        let sent = self.send(Lane::Urgent, cmd);
        if sent.is_err() {
            self.shared.in_flight.fetch_sub(len, Ordering::AcqRel);
        }
        sent
    }

    /// Queues several buffers, written in order with `writev` (UDP: joined
    /// into one datagram).
    ///
    /// # Errors
    /// As [`ConnHandle::async_write`].
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// h.async_writev(vec![b"a".to_vec(), b"b".to_vec()], None)?;
    /// # Ok(()) }
    /// ```
    pub fn async_writev(
        &self,
        data: Vec<Vec<u8>>,
        done: Option<Box<dyn FnOnce(Result<()>) + Send>>,
    ) -> Result<()> {
        if self.reply_to.is_some() {
            return self.write_with(data.concat(), done);
        }
        let len: usize = data.iter().map(Vec::len).sum();
        self.send_write(
            len,
            Command::Writev {
                token: self.token,
                data,
                done,
            },
        )
    }

    /// Makes the loop call `on_traffic` for this connection.
    ///
    /// # Errors
    /// [`Error::ConnClosed`] or [`Error::EngineStopped`].
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// h.wake()?;
    /// # Ok(()) }
    /// ```
    pub fn wake(&self) -> Result<()> {
        self.send(Lane::Urgent, Command::Wake(self.token))
    }

    /// Closes the connection after flushing what was written before (does
    /// nothing on UDP sockets, which serve every peer).
    ///
    /// # Errors
    /// [`Error::ConnClosed`] or [`Error::EngineStopped`].
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// h.close()?;
    /// # Ok(()) }
    /// ```
    pub fn close(&self) -> Result<()> {
        self.send(Lane::Urgent, Command::Close(self.token))
    }

    /// Sends FIN once everything written before (through this handle and
    /// on the loop) is flushed, and keeps reading: [`Conn::shutdown_write`]
    /// from any thread. A proxy forwards the FIN of one side to the other
    /// this way. Does nothing on UDP sockets.
    ///
    /// # Errors
    /// [`Error::ConnClosed`] or [`Error::EngineStopped`].
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// h.shutdown_write()?;
    /// # Ok(()) }
    /// ```
    pub fn shutdown_write(&self) -> Result<()> {
        self.send(Lane::Urgent, Command::ShutdownWrite(self.token))
    }

    /// Undoes [`Conn::pause_reading`] from any thread.
    ///
    /// # Errors
    /// [`Error::ConnClosed`] or [`Error::EngineStopped`].
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) -> netloom::Result<()> {
    /// h.resume_reading()?;
    /// # Ok(()) }
    /// ```
    pub fn resume_reading(&self) -> Result<()> {
        self.send(Lane::Urgent, Command::ResumeReading(self.token))
    }

    /// Bytes written to the connection and not yet taken by the kernel:
    /// its outbound buffer (as of the loop's last look) plus asynchronous
    /// writes still on their way to the loop.
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<()>) {
    /// let backlog = h.pending();
    /// # }
    /// ```
    pub fn pending(&self) -> usize {
        self.shared.outbound.load(Ordering::Acquire) + self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Runs `task` on the connection's loop with the connection, as a bulk
    /// task (urgent writes and wake-ups overtake it).
    ///
    /// # Errors
    /// [`Error::ConnClosed`] or [`Error::EngineStopped`]; if the connection
    /// closes before the task runs, the task is dropped.
    ///
    /// ```
    /// # fn f(h: &netloom::ConnHandle<u32>) -> netloom::Result<()> {
    /// h.execute(|conn| *conn.context_mut() += 1)?;
    /// # Ok(()) }
    /// ```
    pub fn execute(&self, task: impl FnOnce(&mut Conn<'_, C>) + Send + 'static) -> Result<()> {
        let task: ConnTask<C> = match self.reply_to {
            // The task's writes go to the handle's sender, not the latest one.
            Some(to) => Box::new(move |conn: &mut Conn<'_, C>| {
                conn.reply_to(to);
                task(conn)
            }),
            None => Box::new(task),
        };
        self.send(Lane::Bulk, Command::Execute(self.token, task))
    }
}
