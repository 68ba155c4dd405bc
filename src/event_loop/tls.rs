//! The callback loop's TLS steps: the handshake before `on_open`, records
//! decrypted from the read buffer before `on_traffic`, the peer's
//! `close_notify` as its end of stream. Sealing and `close_notify` happen
//! where every connection settles (`ConnIo::seal_tls`).

use super::{Callbacks, Entry, EventLoop, TimerKey};
use crate::conn::{ConnIo, ConnTimer, OutboundSink, ReadMode};
use crate::reactor::token::Token;
use crate::{Error, TlsError};

/// A read returned end of stream on `io`: a FIN without the peer's
/// `close_notify` is [`Error::TlsTruncated`] for `on_close` (the handler
/// still gets `on_eof`); during the handshake it ends the connection.
pub(super) fn note_end_of_stream(io: &mut ConnIo) {
    let Some(tls) = &io.tls else {
        return;
    };
    if tls.is_handshaking() {
        io.state.fail(Error::Tls(TlsError::Protocol(
            "the peer closed the connection during the handshake".into(),
        )));
    } else if let Err(e) = tls.end_of_stream() {
        io.state.report_at_close(e);
    }
}

impl<H: Callbacks> EventLoop<H> {
    /// A TLS connection is registered: arm its handshake timeout, send a
    /// client's first flight.
    pub(super) fn start_handshake(&mut self, token: Token) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        let Some(tls) = rec.io.tls.as_mut() else {
            return;
        };
        rec.io.state.begin_handshake();
        let at = self.now + self.options.limits.handshake_timeout;
        self.timers
            .schedule(at, TimerKey::Conn(token, ConnTimer::Handshake));
        let mut out = OutboundSink {
            queue: &mut rec.io.outbound,
            pool: &mut self.env.pool,
        };
        if let Err(e) = tls.start(&mut out) {
            rec.io.state.fail(e);
        }
        self.settle(token);
    }

    /// `fresh` bytes of ciphertext are in the read buffer: decrypt them,
    /// then open the connection when its handshake finished, deliver the
    /// plaintext, report the peer's `close_notify` as its end of stream.
    pub(super) fn tls_traffic(&mut self, token: Token, fresh: usize) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        let Some(tls) = rec.io.tls.as_mut() else {
            return;
        };
        let before = rec.inbound.len();
        let mut out = OutboundSink {
            queue: &mut rec.io.outbound,
            pool: &mut self.env.pool,
        };
        let decrypted = tls.decrypt(&mut self.read_buf[..fresh], &mut out, &mut rec.inbound);
        let decrypted = match decrypted {
            Ok(decrypted) => decrypted,
            Err(e) => {
                // The alert is queued: it flushes before the close.
                rec.io.state.close_with_error(e);
                rec.inbound.release_if_empty(&mut self.env.pool);
                return self.settle(token);
            }
        };
        let delivered = rec.inbound.len() > before;
        self.counters.tls_plaintext_read(rec.inbound.len() - before);
        if !delivered {
            rec.inbound.release_if_empty(&mut self.env.pool);
        }
        if decrypted.opened {
            rec.io.state.handshake_done();
            self.open_conn(token);
        }
        if delivered {
            match self.entries.get_mut(token) {
                Some(Entry::Conn(rec)) if rec.io.state.read_mode() == ReadMode::Deliver => {
                    let outcome = self.call(token, 0, |h, c| h.on_traffic(c));
                    self.apply(token, outcome);
                }
                _ => {}
            }
        }
        if decrypted.peer_closed {
            if let Some(Entry::Conn(rec)) = self.entries.get_mut(token) {
                if rec.io.state.read_eof() {
                    let outcome = self.call(token, 0, |h, c| h.on_eof(c));
                    return self.apply(token, outcome);
                }
            }
        }
        self.settle(token);
    }
}
