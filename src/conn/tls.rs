//! A callback connection's TLS: the session of [`crate::tls`] between the
//! socket and the handler.
//!
//! Copies per record: a read's ciphertext is decrypted in place in the
//! loop's shared read buffer, and the plaintext copied once into the
//! connection's inbound buffer that `on_traffic` sees (the bytes of an
//! incomplete record are first carried over to the next read). Writes are
//! encrypted straight into the outbound queue; slices under
//! [`COALESCE_BELOW`] are first copied into the session's staging area, so
//! the small writes of one callback leave as one record when the loop
//! settles the connection.

use crate::buffer::{BufferPool, InboundBuffer, OutboundQueue};
use crate::error::{Error, Result, TlsError};
use crate::tls::{CiphertextSink, TlsInfo, TlsSession, STAGE_LIMIT};

/// A write slice shorter than this is staged (coalesced with its
/// neighbours into one record) rather than sealed on its own.
const COALESCE_BELOW: usize = 4096;

/// Most ciphertext left unconsumed between reads: an incomplete record
/// (at most 5 + 2^14 + 2048 bytes), or the records of a handshake message
/// rustls is reassembling (it refuses messages over 64 KiB) and one more.
const CARRY_LIMIT: usize = 96 * 1024;

/// The outbound queue as the session's ciphertext sink.
pub(crate) struct OutboundSink<'a> {
    pub(crate) queue: &'a mut OutboundQueue,
    pub(crate) pool: &'a mut BufferPool,
}

impl CiphertextSink for OutboundSink<'_> {
    fn append<E>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> std::result::Result<usize, E>,
    ) -> std::result::Result<usize, E> {
        self.queue.append_with(len, self.pool, fill)
    }
}

/// What [`TlsConn::decrypt`] found besides plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decrypted {
    /// This read finished the handshake: the connection opens.
    pub(crate) opened: bool,
    /// The peer's `close_notify` arrived: its end of stream.
    pub(crate) peer_closed: bool,
}

/// A connection's TLS session and the ciphertext it carries between reads.
pub(crate) struct TlsConn {
    session: TlsSession,
    /// Unconsumed ciphertext from earlier reads (an incomplete record).
    carry: Vec<u8>,
    /// What the handshake negotiated, once it has finished.
    info: Option<TlsInfo>,
    /// Our `close_notify` is queued.
    close_queued: bool,
    /// Plaintext taken by `write` and not yet reported to the loop's
    /// counters.
    unreported_written: u64,
}

impl TlsConn {
    pub(crate) fn new(session: TlsSession) -> Box<TlsConn> {
        Box::new(TlsConn {
            session,
            carry: Vec::new(),
            info: None,
            close_queued: false,
            unreported_written: 0,
        })
    }

    pub(crate) fn info(&self) -> Option<&TlsInfo> {
        self.info.as_ref()
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Plaintext staged and not yet sealed.
    pub(crate) fn staged(&self) -> usize {
        self.session.staged_len()
    }

    /// How the peer's byte stream ended at its FIN: `Ok` after its
    /// `close_notify`, [`Error::TlsTruncated`] without one.
    pub(crate) fn end_of_stream(&self) -> Result<()> {
        self.session.end_of_stream()
    }

    /// Processes `fresh` ciphertext (after what earlier reads left):
    /// handshake answers go to `out`, plaintext to `plain`. On an error the
    /// fatal alert for the peer is in `out`.
    pub(crate) fn decrypt(
        &mut self,
        fresh: &mut [u8],
        out: &mut OutboundSink<'_>,
        plain: &mut InboundBuffer,
    ) -> Result<Decrypted> {
        let was_handshaking = self.session.is_handshaking();
        let was_closed = self.session.peer_closed();
        // Plaintext is never longer than the ciphertext it came from.
        plain.reserve(self.carry.len() + fresh.len(), out.pool);
        let mut deliver = |data: &[u8]| plain.append_reserved(data);
        if self.carry.is_empty() {
            let consumed = self.session.read_tls(fresh, out, &mut deliver)?;
            self.carry.extend_from_slice(&fresh[consumed..]);
        } else {
            self.carry.extend_from_slice(fresh);
            let consumed = self.session.read_tls(&mut self.carry, out, &mut deliver)?;
            self.carry.drain(..consumed);
        }
        if self.carry.len() > CARRY_LIMIT {
            return Err(TlsError::CorruptRecord(format!(
                "over {CARRY_LIMIT} bytes of ciphertext left without a complete record"
            ))
            .into());
        }
        if self.carry.is_empty() {
            self.carry = Vec::new();
        }
        let opened = was_handshaking && !self.session.is_handshaking();
        if opened {
            self.info = Some(self.session.info());
        }
        Ok(Decrypted {
            opened,
            peer_closed: !was_closed && self.session.peer_closed(),
        })
    }

    /// Starts a client's handshake (its ClientHello into `out`).
    pub(crate) fn start(&mut self, out: &mut OutboundSink<'_>) -> Result<()> {
        self.session.read_tls(&mut [], out, &mut |_| {}).map(drop)
    }

    /// Encrypts `data` into `out`: small slices are staged (sealed by
    /// [`seal`](TlsConn::seal), with whatever else is written before it),
    /// large ones sealed at once after the staged bytes.
    ///
    /// # Errors
    /// The session's; [`Error::OutboundFull`] for more than the staging
    /// area holds while the handshake still runs.
    pub(crate) fn write(&mut self, data: &[&[u8]], out: &mut OutboundSink<'_>) -> Result<()> {
        for piece in data {
            let mut rest = *piece;
            while !rest.is_empty() {
                let taken = if rest.len() < COALESCE_BELOW {
                    match self.session.stage(rest) {
                        0 => {
                            self.session.flush(out)?;
                            self.session.stage(rest)
                        }
                        n => n,
                    }
                } else {
                    self.session.write(rest, out)?
                };
                if taken == 0 {
                    return Err(Error::OutboundFull {
                        pending: self.staged(),
                        cap: STAGE_LIMIT,
                    });
                }
                rest = &rest[taken..];
                self.unreported_written += taken as u64;
            }
        }
        Ok(())
    }

    /// Plaintext written since the last call (for the loop's counters).
    pub(crate) fn take_unreported_written(&mut self) -> u64 {
        std::mem::take(&mut self.unreported_written)
    }

    /// Seals the staged plaintext into `out` (nothing during the handshake).
    pub(crate) fn seal(&mut self, out: &mut OutboundSink<'_>) -> Result<()> {
        self.session.flush(out)
    }

    /// Seals the staged plaintext and then our `close_notify` into `out`,
    /// once.
    pub(crate) fn close_notify(&mut self, out: &mut OutboundSink<'_>) -> Result<()> {
        if self.close_queued {
            return Ok(());
        }
        self.close_queued = true;
        self.session.close(out)
    }
}
