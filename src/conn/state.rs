//! A stream connection's lifecycle as a pure state machine: no socket, no
//! clock. The loop tells it what happened (a read's outcome, a callback's
//! action, a timer, how many bytes are queued, the time) and carries out
//! what it answers (the interest to arm, a FIN to send, a timer to schedule,
//! a close). Every transition is unit-tested below with injected time.
//!
//! The phase is exclusive:
//!
//! | phase      | input          | writes                 | ends when                                   |
//! |------------|----------------|------------------------|---------------------------------------------|
//! | Connecting | not read       | queued until connected | the connect succeeds (Open) or fails        |
//! | Open       | delivered      | accepted               | a close is asked for, an error, engine stop |
//! | Closing    | not read       | the queue flushes      | flushed: FIN, then Draining (or closed); close timeout |
//! | Draining   | read, discarded| refused (FIN sent)     | the peer's FIN, an error, the drain limit   |
//! | Closed     | –              | refused                | (removed from the loop; seen by `on_close`) |
//!
//! Beside it, independent of each other: the read side (open, the peer's FIN
//! reported, end of stream read), the write side (open, FIN wanted once the
//! queue is empty, FIN sent), why reading is paused (outbound backpressure,
//! the handler's hold), and the error `on_close` will see.
//!
//! TLS (feature `tls`) fits into the same machine: a flag beside the phase
//! says the handshake is still running (`on_open` waits for its end, a
//! handshake timer bounds it); the peer's `close_notify` is its end of
//! stream ([`ConnState::read_eof`]); a FIN without one is still an end of
//! stream for the handler (`on_eof`), and [`ConnState::report_at_close`]
//! keeps [`Error::TlsTruncated`] for `on_close`; our `close_notify` is
//! queued as the last bytes before the FIN ([`ConnState::wants_close_notify`]).
//!
//! Half-close: when the read side reaches end of stream in the Open phase,
//! [`ConnState::read_eof`] asks for the handler's `on_eof`. A handler that
//! keeps the connection open goes on writing; the connection closes when it
//! asks, when both directions are done (its FIN sent after the peer's), or
//! when nothing it wrote reached the kernel for a whole half-open timeout
//! (a peer that half-closed and stopped reading cannot pin a connection).

use std::time::{Duration, Instant};

use crate::proxy_protocol::ProxyHeaderError;
use crate::sys::Interest;
use crate::{Addr, Error};

/// Longest wait, after a close we initiated, for the peer's FIN while its
/// input is discarded (Apache's lingering close); then the socket closes.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// The exclusive part of a connection's state (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    Open,
    Closing,
    Draining,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadSide {
    Open,
    /// The poller reported the peer's FIN: read until end of stream.
    FinReported,
    /// A read returned end of stream.
    Eof,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteSide {
    Open,
    /// `shutdown_write` was asked for: FIN once the queue is empty.
    FinWanted,
    FinSent,
}

/// The per-connection limits the machine applies, from the engine options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) close_timeout: Duration,
    pub(crate) half_open_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    /// How long a TLS handshake may take.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) handshake_timeout: Duration,
}

/// What the loop does with readable input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// Read it and hand it to `on_traffic`.
    Deliver,
    /// Read it and drop it (closing: waiting for the peer's FIN).
    Discard,
    /// Leave it in the kernel.
    Ignore,
}

/// A step the loop carries out after [`ConnState::settle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    /// `shutdown(SHUT_WR)`; report a failure with [`ConnState::fin_failed`].
    SendFin,
    /// Close the socket now and call `on_close`.
    Close,
}

/// The connection timers the machine asks for; each is checked again when
/// it fires, so a stale one does nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnTimer {
    /// `Options::idle_timeout`.
    Idle,
    /// `Options::connect_timeout`.
    Connect,
    /// A closing connection's flush (close timeout) or drain (drain limit).
    Linger,
    /// A half-open connection that makes no progress.
    HalfOpen,
    /// A TLS handshake that has not finished in time.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    Handshake,
    /// A PROXY protocol header that has not arrived in time.
    ProxyHeader,
}

/// What [`ConnState::settle`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settled {
    pub(crate) effect: Effect,
    /// The readiness to watch the socket for.
    pub(crate) interest: Interest,
    pub(crate) timer: Option<(ConnTimer, Instant)>,
    /// Outbound is at or below the low-water mark: a connection waiting for
    /// this one to drain may resume.
    pub(crate) drained: bool,
}

/// What a fired timer means for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerVerdict {
    /// Stale: nothing to do.
    Nothing,
    /// Check again at this time.
    Reschedule(Instant),
    /// Close now (the error, if any, is recorded).
    Close,
}

/// A stream connection's lifecycle (see the module docs).
#[derive(Debug)]
pub(crate) struct ConnState {
    phase: Phase,
    read: ReadSide,
    write: WriteSide,
    /// Outbound passed the high-water mark and has not yet fallen to low water.
    backpressured: bool,
    /// The handler paused reading (`pause_reading`).
    held: bool,
    /// Outbound above the high-water mark does not pause reading.
    manual_pacing: bool,
    /// The close-timeout or drain-limit timer is scheduled.
    linger_armed: bool,
    /// The half-open timer is scheduled.
    half_open_armed: bool,
    /// Bytes the kernel took over the connection's life.
    sent: u64,
    /// `sent` when the half-open timer was last armed.
    sent_at_check: u64,
    /// Last read or write progress, for the idle timeout.
    last_active: Instant,
    error: Option<Error>,
    /// `error` is reported after the queue flushes (the peer may still read
    /// the replies to its earlier input); otherwise the error is fatal.
    error_deferred: bool,
    /// A TLS handshake is running: `on_open` waits for its end.
    handshaking: bool,
    /// The PROXY protocol header is still being read: `on_open` (and a
    /// TLS handshake) wait for it.
    awaiting_proxy_header: bool,
}

impl ConnState {
    /// An accepted connection.
    pub(crate) fn accepted(now: Instant) -> ConnState {
        ConnState {
            phase: Phase::Open,
            read: ReadSide::Open,
            write: WriteSide::Open,
            backpressured: false,
            held: false,
            manual_pacing: false,
            linger_armed: false,
            half_open_armed: false,
            sent: 0,
            sent_at_check: 0,
            last_active: now,
            error: None,
            error_deferred: false,
            handshaking: false,
            awaiting_proxy_header: false,
        }
    }

    /// An outbound connection whose connect is in progress.
    pub(crate) fn connecting(now: Instant) -> ConnState {
        ConnState {
            phase: Phase::Connecting,
            ..ConnState::accepted(now)
        }
    }

    /// Reading the PROXY protocol header starts (the caller arms
    /// [`ConnTimer::ProxyHeader`]).
    pub(crate) fn begin_proxy_header(&mut self) {
        self.awaiting_proxy_header = true;
    }

    /// The PROXY protocol header is in: the connection opens (or its TLS
    /// handshake starts).
    pub(crate) fn proxy_header_done(&mut self) {
        self.awaiting_proxy_header = false;
    }

    /// Whether reads still go to the PROXY protocol header.
    pub(crate) fn awaits_proxy_header(&self) -> bool {
        self.awaiting_proxy_header
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    /// A TLS handshake starts (the caller arms [`ConnTimer::Handshake`]).
    pub(crate) fn begin_handshake(&mut self) {
        self.handshaking = true;
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    /// The TLS handshake finished: the connection opens for the handler.
    pub(crate) fn handshake_done(&mut self) {
        self.handshaking = false;
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    /// Whether our TLS `close_notify` is due now: a close or a FIN was asked
    /// for and nothing written is still on its way from a handle (those
    /// bytes go before it). Never after a fatal error.
    pub(crate) fn wants_close_notify(&self, arriving: usize) -> bool {
        arriving == 0
            && !self.is_failed()
            && (matches!(self.phase, Phase::Closing | Phase::Draining)
                || self.write != WriteSide::Open)
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    /// Records `err` for `on_close` without closing: the connection goes on
    /// (a TLS peer's FIN without `close_notify`, [`Error::TlsTruncated`]:
    /// the handler still gets `on_eof` and may answer). An earlier error
    /// wins.
    pub(crate) fn report_at_close(&mut self, err: Error) {
        if self.error.is_none() {
            self.error = Some(err);
            self.error_deferred = true;
        }
    }

    #[cfg(test)]
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    pub(crate) fn is_connecting(&self) -> bool {
        self.phase == Phase::Connecting
    }

    /// A close was asked for, or happened: the handler's and handles' view.
    pub(crate) fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing | Phase::Draining | Phase::Closed)
    }

    /// The peer's end of stream was read.
    pub(crate) fn is_read_closed(&self) -> bool {
        self.read == ReadSide::Eof
    }

    /// The poller reported the peer's FIN and it has not been read yet.
    pub(crate) fn fin_pending(&self) -> bool {
        self.read == ReadSide::FinReported
    }

    /// What to do with readable input now.
    pub(crate) fn read_mode(&self) -> ReadMode {
        match self.phase {
            Phase::Draining => ReadMode::Discard,
            Phase::Open if self.read != ReadSide::Eof && !self.held && !self.backpressured => {
                ReadMode::Deliver
            }
            _ => ReadMode::Ignore,
        }
    }

    /// Whether the handler may still write (`Conn::write`): also while a
    /// close it asked for waits for the flush.
    pub(crate) fn accepts_writes(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Open | Phase::Closing)
            && self.write == WriteSide::Open
            && !self.is_failed()
    }

    /// Whether a write arriving from a `ConnHandle` is taken: until our FIN
    /// is sent, also after a close or `shutdown_write` was asked for (the
    /// handle may have written before it learned of that; the FIN waits for
    /// such bytes, see [`ConnState::settle`]).
    pub(crate) fn accepts_handle_writes(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Open | Phase::Closing)
            && self.write != WriteSide::FinSent
            && !self.is_failed()
    }

    /// A fatal error: the connection closes without flushing.
    pub(crate) fn is_failed(&self) -> bool {
        self.error.is_some() && !self.error_deferred
    }

    /// The error `on_close` will see.
    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// The connect finished: reading and writing start.
    pub(crate) fn connected(&mut self, now: Instant) {
        if self.phase == Phase::Connecting {
            self.phase = Phase::Open;
            self.last_active = now;
        }
    }

    /// Bytes were read or handed to the kernel.
    pub(crate) fn active(&mut self, now: Instant) {
        self.last_active = now;
    }

    /// The kernel took `n` more bytes.
    pub(crate) fn note_sent(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// Bytes the kernel took over the connection's life.
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// Reading is paused because outbound passed the high-water mark.
    pub(crate) fn is_backpressured(&self) -> bool {
        self.backpressured
    }

    /// The poller reported the peer's FIN (once, edge-triggered).
    pub(crate) fn fin_reported(&mut self) {
        if self.read == ReadSide::Open {
            self.read = ReadSide::FinReported;
        }
    }

    /// A read returned end of stream. True when the handler is to be told
    /// (`on_eof`): the first end of stream of an open connection (not
    /// during a TLS handshake or before the PROXY header: its handler has
    /// not seen `on_open`; a header cut short is an error).
    pub(crate) fn read_eof(&mut self) -> bool {
        if self.awaiting_proxy_header {
            self.fail(ProxyHeaderError::Truncated.into());
        }
        let tell = self.phase == Phase::Open
            && !self.handshaking
            && !self.awaiting_proxy_header
            && self.read != ReadSide::Eof;
        self.read = ReadSide::Eof;
        tell
    }

    /// Close once everything written is flushed.
    pub(crate) fn close(&mut self) {
        if matches!(self.phase, Phase::Connecting | Phase::Open) {
            self.phase = Phase::Closing;
        }
    }

    /// Send FIN once everything written is flushed; keep reading.
    pub(crate) fn shutdown_write(&mut self) {
        if self.write == WriteSide::Open {
            self.write = WriteSide::FinWanted;
        }
    }

    pub(crate) fn hold_reading(&mut self, held: bool) {
        self.held = held;
    }

    pub(crate) fn set_manual_pacing(&mut self, manual: bool) {
        self.manual_pacing = manual;
    }

    /// A fatal error: the connection closes without flushing. The first
    /// error recorded is the one reported.
    pub(crate) fn fail(&mut self, err: Error) {
        if self.error.is_none() {
            self.error = Some(err);
        }
        self.error_deferred = false;
        self.close();
    }

    /// Closes after the flush (and the drain), then reports `err`: for a peer
    /// whose input is bad but who may still read the replies to what it sent
    /// before.
    pub(crate) fn close_with_error(&mut self, err: Error) {
        if self.error.is_none() {
            self.error = Some(err);
            self.error_deferred = true;
        }
        self.close();
    }

    /// `shutdown(SHUT_WR)` failed. True when the connection must close now.
    pub(crate) fn fin_failed(&mut self, err: std::io::Error) -> bool {
        match self.phase {
            // Everything was sent; the peer is gone, which ends the drain.
            Phase::Draining => true,
            _ if err.kind() == std::io::ErrorKind::NotConnected => false,
            _ => {
                self.fail(Error::Io(err));
                true
            }
        }
    }

    /// Removed from the loop: from here on only `on_close` sees it.
    pub(crate) fn mark_closed(&mut self) {
        self.phase = Phase::Closed;
    }

    /// Brings the machine in line with `queued` outbound bytes at `now`.
    /// Called after anything touched the connection. `arriving`: bytes
    /// handles wrote that are still on their way through the inbox; a FIN
    /// or a close waits for them as for queued ones, so a reply a handle
    /// wrote before the close is not lost. `stopping`: the engine is
    /// stopping, so a close does not wait for the peer's FIN.
    pub(crate) fn settle(
        &mut self,
        queued: usize,
        arriving: usize,
        now: Instant,
        stopping: bool,
        limits: &Limits,
    ) -> Settled {
        let mut settled = Settled {
            effect: Effect::None,
            interest: Interest::NONE,
            timer: None,
            drained: queued <= limits.low_water,
        };
        if self.is_failed() {
            settled.effect = Effect::Close;
            return settled;
        }
        if queued > limits.high_water && !self.manual_pacing {
            self.backpressured = true;
        } else if queued <= limits.low_water {
            self.backpressured = false;
        }
        let owed = queued + arriving;
        match self.phase {
            Phase::Closing if owed == 0 => {
                if self.read == ReadSide::Eof || stopping {
                    settled.effect = Effect::Close;
                    return settled;
                }
                // Closing now, with the peer's bytes unread, would make the
                // kernel answer with a reset that can destroy our last bytes
                // at the peer before it reads them. Send our FIN instead and
                // discard input until the peer's, for a bounded time (a
                // close-timeout timer armed for the flush may fire first,
                // which ends it too).
                self.phase = Phase::Draining;
                if self.write != WriteSide::FinSent {
                    self.write = WriteSide::FinSent;
                    settled.effect = Effect::SendFin;
                }
                self.linger_armed = true;
                let limit = limits.close_timeout.min(DRAIN_LIMIT);
                settled.timer = Some((ConnTimer::Linger, now + limit));
            }
            // The peer's FIN ends the drain.
            Phase::Draining if self.read == ReadSide::Eof => {
                settled.effect = Effect::Close;
                return settled;
            }
            Phase::Closing if !self.linger_armed => {
                self.linger_armed = true;
                settled.timer = Some((ConnTimer::Linger, now + limits.close_timeout));
            }
            Phase::Open if owed == 0 && self.write != WriteSide::Open => {
                if self.read == ReadSide::Eof {
                    // Both directions are done; closing sends our FIN.
                    settled.effect = Effect::Close;
                    return settled;
                }
                if self.write == WriteSide::FinWanted {
                    self.write = WriteSide::FinSent;
                    settled.effect = Effect::SendFin;
                }
            }
            _ => {}
        }
        if self.phase == Phase::Open && self.read == ReadSide::Eof && !self.half_open_armed {
            self.half_open_armed = true;
            self.sent_at_check = self.sent;
            settled.timer = Some((ConnTimer::HalfOpen, now + limits.half_open_timeout));
        }
        if self.read_mode() != ReadMode::Ignore {
            settled.interest = settled.interest.with(Interest::READABLE);
        }
        if queued > 0 || self.phase == Phase::Connecting {
            settled.interest = settled.interest.with(Interest::WRITABLE);
        }
        settled
    }

    /// A connection timer fired at `now` with `queued` bytes still
    /// outbound; `peer` names the connection in a connect timeout.
    pub(crate) fn on_timer(
        &mut self,
        timer: ConnTimer,
        queued: usize,
        now: Instant,
        limits: &Limits,
        peer: &Addr,
    ) -> TimerVerdict {
        if self.phase == Phase::Closed {
            return TimerVerdict::Nothing;
        }
        match timer {
            ConnTimer::Idle => {
                let Some(idle) = limits.idle_timeout else {
                    return TimerVerdict::Nothing;
                };
                let quiet_until = self.last_active + idle;
                if quiet_until > now {
                    return TimerVerdict::Reschedule(quiet_until);
                }
                self.fail(Error::IdleTimeout);
                TimerVerdict::Close
            }
            ConnTimer::Connect if self.phase == Phase::Connecting => {
                self.fail(Error::ConnectTimeout(peer.clone()));
                TimerVerdict::Close
            }
            ConnTimer::Connect => TimerVerdict::Nothing,
            ConnTimer::Linger if matches!(self.phase, Phase::Closing | Phase::Draining) => {
                // A drained connection whose peer never sent its FIN lost
                // nothing: everything went out.
                if queued > 0 || self.phase != Phase::Draining {
                    self.fail(Error::CloseTimeout(queued));
                }
                TimerVerdict::Close
            }
            ConnTimer::Linger => TimerVerdict::Nothing,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            ConnTimer::Handshake if self.handshaking && self.phase == Phase::Open => {
                self.fail(Error::TlsHandshakeTimeout);
                TimerVerdict::Close
            }
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            ConnTimer::Handshake => TimerVerdict::Nothing,
            ConnTimer::ProxyHeader if self.awaiting_proxy_header && self.phase == Phase::Open => {
                self.fail(ProxyHeaderError::Timeout.into());
                TimerVerdict::Close
            }
            ConnTimer::ProxyHeader => TimerVerdict::Nothing,
            ConnTimer::HalfOpen => {
                self.half_open_armed = false;
                if self.phase != Phase::Open || self.read != ReadSide::Eof {
                    return TimerVerdict::Nothing;
                }
                if self.sent != self.sent_at_check {
                    // Still making progress: look again a period later.
                    self.half_open_armed = true;
                    self.sent_at_check = self.sent;
                    return TimerVerdict::Reschedule(now + limits.half_open_timeout);
                }
                self.fail(Error::HalfOpenTimeout(queued));
                TimerVerdict::Close
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        high_water: 100,
        low_water: 10,
        close_timeout: Duration::from_secs(10),
        half_open_timeout: Duration::from_secs(30),
        idle_timeout: Some(Duration::from_secs(60)),
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        handshake_timeout: Duration::from_secs(5),
    };

    fn peer() -> Addr {
        Addr::Inet(([127, 0, 0, 1], 9).into())
    }

    fn t0() -> Instant {
        Instant::now()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn open_connection_reads_and_watches_writable_only_with_a_backlog() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        let idle = s.settle(0, 0, now, false, &LIMITS);
        assert_eq!(idle.effect, Effect::None);
        assert_eq!(idle.interest, Interest::READABLE);
        assert!(idle.drained);
        let busy = s.settle(50, 0, now, false, &LIMITS);
        assert_eq!(busy.interest, Interest::READABLE.with(Interest::WRITABLE));
        assert!(!busy.drained);
        assert_eq!(s.read_mode(), ReadMode::Deliver);
    }

    #[test]
    fn backpressure_pauses_above_high_water_and_resumes_at_low_water() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.settle(101, 0, now, false, &LIMITS);
        assert_eq!(s.read_mode(), ReadMode::Ignore);
        // Between the marks: stays paused (hysteresis).
        let mid = s.settle(50, 0, now, false, &LIMITS);
        assert_eq!(mid.interest, Interest::WRITABLE);
        let low = s.settle(10, 0, now, false, &LIMITS);
        assert_eq!(low.interest, Interest::READABLE.with(Interest::WRITABLE));
        assert!(low.drained);
    }

    #[test]
    fn manual_pacing_keeps_reading_above_high_water() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.set_manual_pacing(true);
        s.settle(1_000, 0, now, false, &LIMITS);
        assert_eq!(s.read_mode(), ReadMode::Deliver);
    }

    #[test]
    fn held_reading_is_not_watched_until_resumed() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.hold_reading(true);
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).interest, Interest::NONE);
        s.hold_reading(false);
        assert_eq!(
            s.settle(0, 0, now, false, &LIMITS).interest,
            Interest::READABLE
        );
    }

    #[test]
    fn connecting_waits_for_writable_and_queues_writes() {
        let now = t0();
        let mut s = ConnState::connecting(now);
        assert!(s.accepts_writes());
        assert_eq!(s.read_mode(), ReadMode::Ignore);
        assert_eq!(
            s.settle(0, 0, now, false, &LIMITS).interest,
            Interest::WRITABLE
        );
        s.connected(now);
        assert_eq!(s.phase(), Phase::Open);
        assert_eq!(
            s.settle(0, 0, now, false, &LIMITS).interest,
            Interest::READABLE
        );
    }

    #[test]
    fn connect_timeout_fails_only_while_connecting() {
        let now = t0();
        let mut s = ConnState::connecting(now);
        let v = s.on_timer(ConnTimer::Connect, 0, now + secs(3), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Close);
        assert!(matches!(s.take_error(), Some(Error::ConnectTimeout(_))));
        let mut open = ConnState::connecting(now);
        open.connected(now);
        let v = open.on_timer(ConnTimer::Connect, 0, now + secs(3), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Nothing);
    }

    #[test]
    fn close_with_nothing_queued_sends_fin_and_drains_for_the_drain_limit() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close();
        let step = s.settle(0, 0, now, false, &LIMITS);
        assert_eq!(step.effect, Effect::SendFin);
        assert_eq!(s.phase(), Phase::Draining);
        assert_eq!(step.timer, Some((ConnTimer::Linger, now + DRAIN_LIMIT)));
        // Input is read and dropped while draining.
        assert_eq!(step.interest, Interest::READABLE);
        assert_eq!(s.read_mode(), ReadMode::Discard);
        assert!(!s.accepts_writes());
        // The peer's FIN ends the drain: an orderly close.
        assert!(!s.read_eof());
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
        assert!(s.take_error().is_none());
    }

    #[test]
    fn drain_limit_without_the_peers_fin_closes_without_error() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close();
        s.settle(0, 0, now, false, &LIMITS);
        let v = s.on_timer(ConnTimer::Linger, 0, now + DRAIN_LIMIT, &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Close);
        assert!(s.take_error().is_none());
    }

    #[test]
    fn drain_limit_is_capped_by_a_shorter_close_timeout() {
        let now = t0();
        let limits = Limits {
            close_timeout: Duration::from_millis(300),
            ..LIMITS
        };
        let mut s = ConnState::accepted(now);
        s.close();
        let step = s.settle(0, 0, now, false, &limits);
        assert_eq!(
            step.timer,
            Some((ConnTimer::Linger, now + Duration::from_millis(300)))
        );
    }

    #[test]
    fn close_flushes_first_and_times_out_with_the_unsent_count() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close();
        let step = s.settle(500, 0, now, false, &LIMITS);
        assert_eq!(step.effect, Effect::None);
        assert_eq!(step.timer, Some((ConnTimer::Linger, now + secs(10))));
        assert_eq!(step.interest, Interest::WRITABLE);
        // Armed once only.
        assert_eq!(s.settle(400, 0, now + secs(1), false, &LIMITS).timer, None);
        let v = s.on_timer(ConnTimer::Linger, 400, now + secs(10), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Close);
        assert!(matches!(s.take_error(), Some(Error::CloseTimeout(400))));
    }

    #[test]
    fn close_after_the_peers_fin_closes_once_flushed_without_draining() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        assert!(s.read_eof());
        s.close();
        assert_eq!(s.settle(5, 0, now, false, &LIMITS).effect, Effect::None);
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
    }

    #[test]
    fn engine_stop_closes_once_flushed_without_draining() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close();
        assert_eq!(s.settle(0, 0, now, true, &LIMITS).effect, Effect::Close);
    }

    #[test]
    fn a_fatal_error_closes_at_once_even_with_a_backlog() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.fail(Error::IdleTimeout);
        assert!(s.is_failed());
        assert!(!s.accepts_writes());
        assert_eq!(
            s.settle(1_000, 0, now, false, &LIMITS).effect,
            Effect::Close
        );
    }

    #[test]
    fn a_deferred_error_flushes_and_drains_first_and_keeps_its_cause() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close_with_error(Error::ConnClosed);
        assert!(!s.is_failed());
        assert!(s.accepts_writes(), "replies to earlier input still go out");
        assert_eq!(s.settle(10, 0, now, false, &LIMITS).effect, Effect::None);
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::SendFin);
        s.read_eof();
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
        assert!(matches!(s.take_error(), Some(Error::ConnClosed)));
    }

    #[test]
    fn the_first_error_is_the_one_reported() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close_with_error(Error::ConnClosed);
        s.fail(Error::IdleTimeout);
        assert!(
            s.is_failed(),
            "a later fatal error makes the close immediate"
        );
        assert!(matches!(s.take_error(), Some(Error::ConnClosed)));
    }

    #[test]
    fn eof_is_told_once_and_a_kept_connection_stays_writable() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.fin_reported();
        assert!(s.fin_pending());
        assert_eq!(s.read_mode(), ReadMode::Deliver, "read until end of stream");
        assert!(s.read_eof());
        assert!(!s.read_eof());
        // The handler kept it open: writes go on, input is not watched.
        assert!(s.accepts_handle_writes());
        let step = s.settle(0, 0, now, false, &LIMITS);
        assert_eq!(step.effect, Effect::None);
        assert_eq!(step.interest, Interest::NONE);
        assert_eq!(step.timer, Some((ConnTimer::HalfOpen, now + secs(30))));
        assert_eq!(
            s.settle(20, 0, now, false, &LIMITS).interest,
            Interest::WRITABLE
        );
    }

    #[test]
    fn half_open_connection_closes_when_its_handler_asks_once_flushed() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.read_eof();
        s.settle(0, 0, now, false, &LIMITS);
        s.close();
        assert_eq!(s.settle(3, 0, now, false, &LIMITS).effect, Effect::None);
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
        assert!(s.take_error().is_none());
    }

    #[test]
    fn both_directions_done_closes_without_being_asked() {
        let now = t0();
        // Our FIN first, then the peer's.
        let mut s = ConnState::accepted(now);
        s.shutdown_write();
        assert_eq!(s.settle(8, 0, now, false, &LIMITS).effect, Effect::None);
        assert!(!s.accepts_writes());
        let fin = s.settle(0, 0, now, false, &LIMITS);
        assert_eq!(fin.effect, Effect::SendFin);
        assert_eq!(
            fin.interest,
            Interest::READABLE,
            "keeps reading after our FIN"
        );
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::None);
        s.read_eof();
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
        // The peer's FIN first, then ours once the queue flushed.
        let mut s = ConnState::accepted(now);
        s.read_eof();
        s.shutdown_write();
        assert_eq!(s.settle(8, 0, now, false, &LIMITS).effect, Effect::None);
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
    }

    #[test]
    fn half_open_timeout_closes_a_connection_that_makes_no_progress() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.read_eof();
        let step = s.settle(4_096, 0, now, false, &LIMITS);
        let (timer, at) = step.timer.unwrap();
        assert_eq!(timer, ConnTimer::HalfOpen);
        // The peer reads: the kernel took bytes in this period.
        s.note_sent(1_000);
        let v = s.on_timer(timer, 4_096, at, &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Reschedule(at + secs(30)));
        // Then it stops reading: nothing more leaves for a whole period.
        let v = s.on_timer(timer, 4_096, at + secs(30), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Close);
        assert!(matches!(
            s.take_error(),
            Some(Error::HalfOpenTimeout(4_096))
        ));
    }

    #[test]
    fn half_open_timer_is_stale_once_the_connection_closes() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.read_eof();
        s.settle(0, 0, now, false, &LIMITS);
        s.close();
        let v = s.on_timer(ConnTimer::HalfOpen, 0, now + secs(30), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Nothing);
    }

    #[test]
    fn idle_timer_reschedules_after_activity_and_fails_after_silence() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.active(now + secs(40));
        let v = s.on_timer(ConnTimer::Idle, 0, now + secs(60), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Reschedule(now + secs(100)));
        let v = s.on_timer(ConnTimer::Idle, 0, now + secs(100), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Close);
        assert!(matches!(s.take_error(), Some(Error::IdleTimeout)));
        let no_idle = Limits {
            idle_timeout: None,
            ..LIMITS
        };
        let mut s = ConnState::accepted(now);
        let v = s.on_timer(ConnTimer::Idle, 0, now + secs(999), &no_idle, &peer());
        assert_eq!(v, TimerVerdict::Nothing);
    }

    #[test]
    fn timers_of_a_closed_connection_do_nothing() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.mark_closed();
        for timer in [
            ConnTimer::Idle,
            ConnTimer::Connect,
            ConnTimer::Linger,
            ConnTimer::HalfOpen,
            ConnTimer::ProxyHeader,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            ConnTimer::Handshake,
        ] {
            let v = s.on_timer(timer, 0, now + secs(1_000), &LIMITS, &peer());
            assert_eq!(v, TimerVerdict::Nothing);
        }
        assert!(!s.accepts_writes());
    }

    #[test]
    fn a_failed_fin_ends_a_drain_quietly_but_fails_an_open_connection() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close();
        s.settle(0, 0, now, false, &LIMITS);
        assert!(s.fin_failed(std::io::Error::from(std::io::ErrorKind::BrokenPipe)));
        assert!(s.take_error().is_none());

        let mut s = ConnState::accepted(now);
        s.shutdown_write();
        s.settle(0, 0, now, false, &LIMITS);
        assert!(!s.fin_failed(std::io::Error::from(std::io::ErrorKind::NotConnected)));
        assert!(s.fin_failed(std::io::Error::from(std::io::ErrorKind::BrokenPipe)));
        assert!(matches!(s.take_error(), Some(Error::Io(_))));
    }

    #[test]
    fn handle_writes_are_taken_until_our_fin_and_the_fin_waits_for_them() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.close();
        assert!(s.accepts_handle_writes());
        // A handle's 7 bytes are still in the inbox: no FIN yet.
        let step = s.settle(0, 7, now, false, &LIMITS);
        assert_eq!(step.effect, Effect::None);
        assert_eq!(step.timer, Some((ConnTimer::Linger, now + secs(10))));
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::SendFin);
        assert!(!s.accepts_handle_writes());

        let mut s = ConnState::accepted(now);
        s.shutdown_write();
        assert!(!s.accepts_writes(), "the handler itself asked for the FIN");
        assert!(s.accepts_handle_writes());
        assert_eq!(s.settle(0, 3, now, false, &LIMITS).effect, Effect::None);
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::SendFin);
        assert!(!s.accepts_handle_writes());
    }
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    #[test]
    fn handshake_timeout_closes_only_a_handshake_still_running() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.begin_handshake();
        assert_eq!(
            s.read_mode(),
            ReadMode::Deliver,
            "handshake records are read"
        );
        let at = now + LIMITS.handshake_timeout;
        let v = s.on_timer(ConnTimer::Handshake, 0, at, &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Close);
        assert!(matches!(s.take_error(), Some(Error::TlsHandshakeTimeout)));

        let mut done = ConnState::accepted(now);
        done.begin_handshake();
        done.handshake_done();
        let v = done.on_timer(ConnTimer::Handshake, 0, at, &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Nothing);
        assert!(done.take_error().is_none());
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    #[test]
    fn close_notify_is_due_after_a_close_or_fin_once_handle_bytes_arrived() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        assert!(!s.wants_close_notify(0));
        s.shutdown_write();
        assert!(s.wants_close_notify(0));
        assert!(!s.wants_close_notify(5), "a handle's bytes go first");
        let mut s = ConnState::accepted(now);
        s.close();
        assert!(s.wants_close_notify(0));
        // A fatal error sends no close_notify (its alert went out).
        let mut s = ConnState::accepted(now);
        s.fail(Error::TlsTruncated);
        assert!(!s.wants_close_notify(0));
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    #[test]
    fn truncation_is_reported_at_close_and_the_handler_still_gets_eof() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.report_at_close(Error::TlsTruncated);
        assert!(!s.is_failed());
        assert!(s.read_eof(), "on_eof is still delivered");
        assert!(s.accepts_writes(), "the handler may still answer");
        s.close();
        assert_eq!(s.settle(4, 0, now, false, &LIMITS).effect, Effect::None);
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
        assert!(matches!(s.take_error(), Some(Error::TlsTruncated)));
    }

    #[test]
    fn proxy_header_timeout_closes_only_a_header_still_awaited() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.begin_proxy_header();
        assert_eq!(s.read_mode(), ReadMode::Deliver, "the header is read");
        let v = s.on_timer(ConnTimer::ProxyHeader, 0, now + secs(5), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Close);
        assert!(matches!(
            s.take_error(),
            Some(Error::ProxyHeader(ProxyHeaderError::Timeout))
        ));

        let mut done = ConnState::accepted(now);
        done.begin_proxy_header();
        done.proxy_header_done();
        let v = done.on_timer(ConnTimer::ProxyHeader, 0, now + secs(5), &LIMITS, &peer());
        assert_eq!(v, TimerVerdict::Nothing);
        assert!(done.take_error().is_none());
    }

    #[test]
    fn end_of_stream_inside_the_proxy_header_fails_without_on_eof() {
        let now = t0();
        let mut s = ConnState::accepted(now);
        s.begin_proxy_header();
        assert!(!s.read_eof(), "the handler has not seen on_open");
        assert_eq!(s.settle(0, 0, now, false, &LIMITS).effect, Effect::Close);
        assert!(matches!(
            s.take_error(),
            Some(Error::ProxyHeader(ProxyHeaderError::Truncated))
        ));
    }
}
