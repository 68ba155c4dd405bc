//! Engine statistics ([`Engine::stats`](crate::Engine::stats)): counters
//! each event loop keeps about its own connections, read from any thread,
//! and their Prometheus text exposition ([`Stats::write_prometheus`]).
//!
//! Cheap enough to leave on: every loop owns one cache-line-aligned block of
//! relaxed atomics that only its own thread writes (a plain load and store,
//! no read-modify-write, no lock), updated where the loop already decides
//! something: an accept, a connect, a read, the settling of a connection
//! after its callbacks and flushes, a close. The only counter other threads
//! write is the inbox's, on its own cache line, beside the channel send
//! that already synchronises them.
//!
//! What is counted: the callback engine's stream connections (TCP and Unix,
//! accepted or dialed, plain or TLS; bytes are socket bytes, so ciphertext
//! for TLS, whose plaintext is counted apart). UDP sockets and the async
//! front-end's streams ([`rt`](crate::rt)) are not connections of a loop
//! and are not counted, but the time their work takes on a loop is part of
//! its busy time, and their cross-thread wake-ups part of its inbox depth.

mod prometheus;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::Error;

/// A snapshot of an engine's counters, per loop ([`Engine::stats`](crate::Engine::stats)).
///
/// Each loop's figures are read without stopping it, so two figures of one
/// snapshot may be a few events apart.
///
/// ```
/// # struct Quiet;
/// # impl netloom::Handler for Quiet {
/// #     type Context = ();
/// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
/// # }
/// let engine = netloom::Engine::builder()
///     .bind("tcp://127.0.0.1:0")
///     .options(netloom::Options::default().loops(2))
///     .start(Quiet)?;
/// let stats = engine.stats();
/// assert_eq!(stats.loops().len(), 2);
/// assert_eq!(stats.total().accepted, 0);
/// engine.stop();
/// engine.wait()?;
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    loops: Vec<LoopStats>,
}

/// One loop's counters (or, from [`Stats::total`], their sum over the
/// loops). Counters only grow; gauges (`open_connections`,
/// `outbound_queued_bytes`, `backpressure_paused`, `inbox_depth`) are
/// current values.
///
/// ```
/// # fn f(engine: &netloom::Engine) {
/// let total = engine.stats().total();
/// println!("{} open, {} bytes read", total.open_connections, total.bytes_read);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Connections served by the loop now, counted from the moment one is
    /// assigned to it (still in its inbox included), as
    /// [`Engine::conn_counts`](crate::Engine::conn_counts).
    pub open_connections: u64,
    /// Connections accepted from a listener (or handed over with
    /// [`Client::adopt`](crate::Client::adopt)) and registered on this loop.
    pub accepted: u64,
    /// Outbound connections started on this loop (a failed connect too).
    pub dialed: u64,
    /// Connections closed (`on_close` called), whatever the reason.
    pub closed: u64,
    /// Bytes read from the sockets (ciphertext for TLS). On io_uring,
    /// counted as they are handed to the connection: what a paused
    /// connection's last requests received counts once it reads again.
    pub bytes_read: u64,
    /// Bytes the kernel took for sending (ciphertext for TLS).
    pub bytes_written: u64,
    /// TLS connections' plaintext delivered to the handler (feature `tls`).
    pub tls_plaintext_read: u64,
    /// TLS connections' plaintext the handler wrote (feature `tls`).
    pub tls_plaintext_written: u64,
    /// Bytes written and not yet taken by the kernel, over all connections
    /// of the loop, as of their last settling.
    pub outbound_queued_bytes: u64,
    /// Connections whose reading is paused because their outbound bytes
    /// passed the high-water mark.
    pub backpressure_paused: u64,
    /// Messages from other threads waiting in the loop's inboxes: writes,
    /// closes and wake-ups from handles, connections to register, tasks,
    /// and its async executor's spawns and task wake-ups.
    pub inbox_depth: u64,
    /// Failures, by kind.
    pub errors: ErrorCounts,
    /// Time the loop spent working, not blocked waiting for events.
    pub busy: Duration,
}

/// Failures counted by kind: failed `accept` calls, and connections closed
/// with an error, by the error `on_close` saw.
///
/// ```
/// # fn f(engine: &netloom::Engine) {
/// let errors = engine.stats().total().errors;
/// println!("{} timeouts, {} I/O errors", errors.timeout, errors.io);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// `accept` failed (descriptor limit, memory, an aborted connection).
    pub accept: u64,
    /// A read, write or `shutdown` failed ([`Error::Io`]).
    pub io: u64,
    /// An outbound connect failed ([`Error::Connect`]).
    pub connect: u64,
    /// Bad input: a codec refused a frame ([`Error::Codec`]), unconsumed
    /// input passed `max_inbound` ([`Error::InboundOverflow`]).
    pub protocol: u64,
    /// Idle, half-open, close, connect or TLS handshake timeouts.
    pub timeout: u64,
    /// A TLS failure or a peer's truncated TLS stream.
    pub tls: u64,
    /// A callback panicked ([`Error::CallbackPanic`]).
    pub panic: u64,
}

impl Stats {
    /// Each loop's counters, indexed by loop.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// for (i, l) in engine.stats().loops().iter().enumerate() {
    ///     println!("loop {i}: {} open", l.open_connections);
    /// }
    /// # }
    /// ```
    pub fn loops(&self) -> &[LoopStats] {
        &self.loops
    }

    /// The sum over the loops.
    ///
    /// ```
    /// # fn f(engine: &netloom::Engine) {
    /// assert_eq!(engine.stats().total().open_connections as usize, engine.conn_count());
    /// # }
    /// ```
    pub fn total(&self) -> LoopStats {
        self.loops
            .iter()
            .fold(LoopStats::default(), |sum, l| sum.plus(l))
    }
}

impl LoopStats {
    fn plus(self, o: &LoopStats) -> LoopStats {
        LoopStats {
            open_connections: self.open_connections + o.open_connections,
            accepted: self.accepted + o.accepted,
            dialed: self.dialed + o.dialed,
            closed: self.closed + o.closed,
            bytes_read: self.bytes_read + o.bytes_read,
            bytes_written: self.bytes_written + o.bytes_written,
            tls_plaintext_read: self.tls_plaintext_read + o.tls_plaintext_read,
            tls_plaintext_written: self.tls_plaintext_written + o.tls_plaintext_written,
            outbound_queued_bytes: self.outbound_queued_bytes + o.outbound_queued_bytes,
            backpressure_paused: self.backpressure_paused + o.backpressure_paused,
            inbox_depth: self.inbox_depth + o.inbox_depth,
            errors: ErrorCounts::from_array(std::array::from_fn(|i| {
                self.errors.to_array()[i] + o.errors.to_array()[i]
            })),
            busy: self.busy + o.busy,
        }
    }
}

/// The kinds of [`ErrorCounts`], in its field order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    Accept,
    Io,
    Connect,
    Protocol,
    Timeout,
    Tls,
    Panic,
}

const ERROR_KINDS: usize = 7;

impl ErrorKind {
    /// Every kind with its label, in field order.
    const LABELS: [(ErrorKind, &'static str); ERROR_KINDS] = [
        (ErrorKind::Accept, "accept"),
        (ErrorKind::Io, "io"),
        (ErrorKind::Connect, "connect"),
        (ErrorKind::Protocol, "protocol"),
        (ErrorKind::Timeout, "timeout"),
        (ErrorKind::Tls, "tls"),
        (ErrorKind::Panic, "panic"),
    ];

    /// The kind of a connection's closing error; `None` for a close that
    /// is not a failure (the engine stopping, a closed connection).
    fn of(err: &Error) -> Option<ErrorKind> {
        match err {
            Error::Io(_) => Some(ErrorKind::Io),
            Error::Connect { .. } => Some(ErrorKind::Connect),
            Error::Codec(_) | Error::InboundOverflow { .. } => Some(ErrorKind::Protocol),
            Error::IdleTimeout
            | Error::HalfOpenTimeout(_)
            | Error::CloseTimeout(_)
            | Error::ConnectTimeout(_)
            | Error::TlsHandshakeTimeout => Some(ErrorKind::Timeout),
            Error::Tls(_) | Error::TlsTruncated => Some(ErrorKind::Tls),
            Error::CallbackPanic(_) => Some(ErrorKind::Panic),
            _ => None,
        }
    }
}

impl ErrorCounts {
    fn to_array(self) -> [u64; ERROR_KINDS] {
        [
            self.accept,
            self.io,
            self.connect,
            self.protocol,
            self.timeout,
            self.tls,
            self.panic,
        ]
    }

    fn from_array(a: [u64; ERROR_KINDS]) -> ErrorCounts {
        let [accept, io, connect, protocol, timeout, tls, panic] = a;
        ErrorCounts {
            accept,
            io,
            connect,
            protocol,
            timeout,
            tls,
            panic,
        }
    }
}

/// A counter or gauge written by one thread only: a relaxed load and a
/// relaxed store, no read-modify-write; any thread may read it.
#[derive(Default)]
struct OwnedCounter(AtomicU64);

impl OwnedCounter {
    fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// `add`, publishing what this thread did before (a reader that
    /// sees the new value with [`OwnedCounter::get_acquire`] sees it too).
    fn add_release(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Release);
    }

    fn get_acquire(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn sub(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_sub(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Keeps what it holds on cache lines of its own (128 bytes: two lines, as
/// the adjacent-line prefetcher pairs them).
#[repr(align(128))]
#[derive(Default)]
struct CachePadded<T>(T);

/// What the loop thread alone writes.
#[derive(Default)]
struct LoopOwned {
    accepted: OwnedCounter,
    dialed: OwnedCounter,
    closed: OwnedCounter,
    bytes_read: OwnedCounter,
    bytes_written: OwnedCounter,
    tls_plaintext_read: OwnedCounter,
    tls_plaintext_written: OwnedCounter,
    outbound_queued_bytes: OwnedCounter,
    backpressure_paused: OwnedCounter,
    /// Inbox messages taken by the loop.
    dequeued: OwnedCounter,
    errors: [OwnedCounter; ERROR_KINDS],
    busy_nanos: OwnedCounter,
}

/// One loop's live counters: written by the loop (and, for the inbox, by
/// the threads sending to it), read by [`Engine::stats`](crate::Engine::stats).
#[derive(Default)]
pub(crate) struct LoopCounters {
    owned: CachePadded<LoopOwned>,
    /// Inbox messages sent, by any thread.
    enqueued: CachePadded<AtomicU64>,
}

/// What a connection last added to its loop's counters, so that the next
/// settling adds only the difference. (Whether it counts as paused needs
/// no field: the flag changes only while the loop settles it.)
#[derive(Default)]
pub(crate) struct Reported {
    sent: u64,
    queued: usize,
}

impl LoopCounters {
    pub(crate) fn accepted(&self) {
        self.owned.0.accepted.add(1);
    }

    pub(crate) fn dialed(&self) {
        self.owned.0.dialed.add(1);
    }

    pub(crate) fn read(&self, n: usize) {
        self.owned.0.bytes_read.add(n as u64);
    }

    /// A TLS connection decrypted `n` bytes of plaintext for its handler.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) fn tls_plaintext_read(&self, n: usize) {
        self.owned.0.tls_plaintext_read.add(n as u64);
    }

    /// A TLS connection's handler wrote `n` bytes of plaintext.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) fn tls_plaintext_written(&self, n: u64) {
        if n > 0 {
            self.owned.0.tls_plaintext_written.add(n);
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind) {
        self.owned.0.errors[kind as usize].add(1);
    }

    pub(crate) fn busy(&self, time: Duration) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        self.owned.0.busy_nanos.add(nanos);
    }

    /// A connection settled: `sent` bytes taken by the kernel over its
    /// life, `queued` bytes waiting.
    pub(crate) fn settled(&self, was: &mut Reported, sent: u64, queued: usize) {
        let owned = &self.owned.0;
        if sent != was.sent {
            owned.bytes_written.add(sent - was.sent);
            was.sent = sent;
        }
        if queued != was.queued {
            // One store: a reader never sees a half-made change.
            let change = (queued as u64).wrapping_sub(was.queued as u64);
            owned.outbound_queued_bytes.add(change);
            was.queued = queued;
        }
    }

    /// A connection's reading paused (or resumed) for backpressure.
    pub(crate) fn backpressure(&self, paused: bool) {
        let gauge = &self.owned.0.backpressure_paused;
        if paused {
            gauge.add(1);
        } else {
            gauge.sub(1);
        }
    }

    /// A stream connection closed with `err`, having had `sent` bytes taken
    /// by the kernel, `paused` by backpressure or not: its last bytes
    /// counted, its gauges withdrawn.
    pub(crate) fn closed(&self, was: &mut Reported, sent: u64, paused: bool, err: Option<&Error>) {
        self.settled(was, sent, 0);
        if paused {
            self.backpressure(false);
        }
        if let Some(kind) = err.and_then(ErrorKind::of) {
            self.error(kind);
        }
        // Last, released: a snapshot that sees the close sees the rest
        // (the load given back, the gauges withdrawn, the error).
        self.owned.0.closed.add_release(1);
    }

    /// A message is about to enter the loop's inbox (any thread).
    pub(crate) fn enqueuing(&self) {
        self.enqueued.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The message announced by `enqueuing` could not be sent.
    pub(crate) fn not_enqueued(&self) {
        self.enqueued.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The loop took `n` messages from its inbox.
    pub(crate) fn dequeued(&self, n: usize) {
        self.owned.0.dequeued.add(n as u64);
    }

    /// The counters now, with the loop's open connections: its `load`.
    pub(crate) fn snapshot(&self, load: &AtomicUsize) -> LoopStats {
        let owned = &self.owned.0;
        let closed = owned.closed.get_acquire();
        let open = load.load(Ordering::Relaxed);
        // Taken ones first: a message is counted as sent before it can be
        // taken, so the difference does not go below zero.
        let dequeued = owned.dequeued.get();
        let enqueued = self.enqueued.0.load(Ordering::Relaxed);
        LoopStats {
            open_connections: open as u64,
            accepted: owned.accepted.get(),
            dialed: owned.dialed.get(),
            closed,
            bytes_read: owned.bytes_read.get(),
            bytes_written: owned.bytes_written.get(),
            tls_plaintext_read: owned.tls_plaintext_read.get(),
            tls_plaintext_written: owned.tls_plaintext_written.get(),
            outbound_queued_bytes: owned.outbound_queued_bytes.get(),
            backpressure_paused: owned.backpressure_paused.get(),
            inbox_depth: enqueued.saturating_sub(dequeued),
            errors: ErrorCounts::from_array(std::array::from_fn(|i| owned.errors[i].get())),
            busy: Duration::from_nanos(owned.busy_nanos.get()),
        }
    }
}

impl Stats {
    pub(crate) fn new(loops: Vec<LoopStats>) -> Stats {
        Stats { loops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_adds_differences_and_closing_withdraws_gauges() {
        let counters = LoopCounters::default();
        let mut conn = Reported::default();
        counters.accepted();
        counters.read(10);
        counters.settled(&mut conn, 4, 6);
        counters.backpressure(true);
        counters.settled(&mut conn, 7, 3);
        let s = counters.snapshot(&AtomicUsize::new(1));
        assert_eq!(
            (s.bytes_read, s.bytes_written, s.outbound_queued_bytes),
            (10, 7, 3)
        );
        assert_eq!(s.backpressure_paused, 1);
        counters.closed(&mut conn, 8, true, Some(&Error::IdleTimeout));
        let s = counters.snapshot(&AtomicUsize::new(0));
        assert_eq!((s.accepted, s.closed, s.bytes_written), (1, 1, 8));
        assert_eq!((s.outbound_queued_bytes, s.backpressure_paused), (0, 0));
        assert_eq!(s.errors.timeout, 1);
        assert_eq!(s.errors.to_array().iter().sum::<u64>(), 1);
    }

    #[test]
    fn a_close_without_failure_counts_no_error() {
        let counters = LoopCounters::default();
        counters.closed(
            &mut Reported::default(),
            0,
            false,
            Some(&Error::EngineStopped),
        );
        counters.closed(&mut Reported::default(), 0, false, None);
        let s = counters.snapshot(&AtomicUsize::new(0));
        assert_eq!(s.closed, 2);
        assert_eq!(s.errors, ErrorCounts::default());
    }

    #[test]
    fn inbox_depth_is_sent_minus_taken() {
        let counters = LoopCounters::default();
        for _ in 0..5 {
            counters.enqueuing();
        }
        counters.not_enqueued();
        counters.dequeued(3);
        assert_eq!(counters.snapshot(&AtomicUsize::new(0)).inbox_depth, 1);
    }

    #[test]
    fn total_sums_the_loops() {
        let a = LoopStats {
            accepted: 2,
            busy: Duration::from_millis(5),
            errors: ErrorCounts {
                io: 1,
                ..ErrorCounts::default()
            },
            ..LoopStats::default()
        };
        let b = LoopStats {
            accepted: 3,
            busy: Duration::from_millis(7),
            errors: ErrorCounts {
                io: 2,
                tls: 1,
                ..ErrorCounts::default()
            },
            ..LoopStats::default()
        };
        let total = Stats::new(vec![a, b]).total();
        assert_eq!(total.accepted, 5);
        assert_eq!(total.busy, Duration::from_millis(12));
        assert_eq!((total.errors.io, total.errors.tls), (3, 1));
    }
}
