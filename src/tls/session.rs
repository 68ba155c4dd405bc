//! The one interface to rustls's unbuffered API: a TLS session with no I/O.
//!
//! The caller owns every byte. Ciphertext is read from the caller's inbound
//! buffer ([`TlsSession::read_tls`] reports how many bytes to discard from
//! its front) and written, handshake records and sealed application data
//! alike, to a [`CiphertextSink`] the caller provides (a `Vec<u8>`, later
//! the engine's outbound queue). Plaintext goes out through a callback, one
//! record at a time. Nothing here buffers without a bound: the staging area
//! for coalesced writes holds at most [`STAGE_LIMIT`] bytes, and rustls
//! rejects a record header announcing more than TLS allows.
//!
//! rustls 0.24 (in-place decryption, a new API) only needs this file to
//! change.

use std::sync::Arc;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, UnbufferedStatus, WriteTraffic,
};
use rustls::{ClientConfig, HandshakeKind, ServerConfig};

use crate::error::{Error, Result, TlsError};

use super::TlsInfo;

/// Plaintext that [`TlsSession::stage`] holds until the next seal: one full
/// TLS record's worth.
pub(crate) const STAGE_LIMIT: usize = 16 * 1024;

/// Where encrypted bytes go: the connection's outbound buffer.
pub(crate) trait CiphertextSink {
    /// Lends `len` writable bytes at the tail; `fill` returns how many of
    /// them it wrote (the rest are dropped), or an error, and then nothing
    /// is kept.
    fn append<E>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> std::result::Result<usize, E>,
    ) -> std::result::Result<usize, E>;
}

impl CiphertextSink for Vec<u8> {
    fn append<E>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> std::result::Result<usize, E>,
    ) -> std::result::Result<usize, E> {
        let start = self.len();
        self.resize(start + len, 0);
        let written = fill(&mut self[start..]);
        self.truncate(start + *written.as_ref().unwrap_or(&0));
        written
    }
}

/// A client or server TLS session driven by the caller's buffers.
pub(crate) struct TlsSession {
    side: Side,
    /// Plaintext written before the handshake finished or staged to be
    /// coalesced; sealed into records by the next flush.
    staged: Vec<u8>,
    /// The peer's `close_notify` arrived: an orderly end of its data.
    peer_closed: bool,
    /// Our `close_notify` is in the sink; nothing more may be written.
    close_sent: bool,
    /// Set once rustls has failed; it is not called again (its handshake
    /// reassembly may point into bytes the caller has moved since).
    failed: Option<TlsError>,
    /// The name the client asked for (server: from its ClientHello).
    server_name: Option<String>,
}

enum Side {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// Runs `$body` with `$conn` bound to the rustls connection of either side.
macro_rules! with_side {
    ($side:expr, $conn:ident => $body:expr) => {
        match $side {
            Side::Server($conn) => $body,
            Side::Client($conn) => $body,
        }
    };
}

/// `process_tls_records` of both connection types, as one bound.
trait Unbuffered {
    type Data;
    fn process<'c, 'i>(&'c mut self, inbound: &'i mut [u8])
        -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        inbound: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(inbound)
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        inbound: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(inbound)
    }
}

impl TlsSession {
    /// A server session under `config` (taken when the connection starts,
    /// so a later reload does not affect it).
    pub(crate) fn server(config: Arc<ServerConfig>) -> Result<TlsSession> {
        let conn = UnbufferedServerConnection::new(config).map_err(map_error)?;
        Ok(TlsSession::new(Side::Server(conn), None))
    }

    /// A client session that will verify the server as `server_name`.
    pub(crate) fn client(config: Arc<ClientConfig>, server_name: &str) -> Result<TlsSession> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| TlsError::Config(format!("invalid server name `{server_name}`: {e}")))?;
        let conn = UnbufferedClientConnection::new(config, name).map_err(map_error)?;
        Ok(TlsSession::new(
            Side::Client(conn),
            Some(server_name.to_owned()),
        ))
    }

    fn new(side: Side, server_name: Option<String>) -> TlsSession {
        TlsSession {
            side,
            staged: Vec::new(),
            peer_closed: false,
            close_sent: false,
            failed: None,
            server_name,
        }
    }

    /// True until the handshake has finished.
    pub(crate) fn is_handshaking(&self) -> bool {
        with_side!(&self.side, conn => conn.is_handshaking())
    }

    /// The peer sent `close_notify`: no more plaintext will come.
    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Plaintext staged and not yet sealed (the engine's water marks count
    /// it with the ciphertext).
    pub(crate) fn staged_len(&self) -> usize {
        self.staged.len()
    }

    /// Processes the ciphertext at the front of `inbound`: handshake
    /// messages are answered into `out`, each application-data record's
    /// plaintext is passed to `deliver`, a `close_notify` sets
    /// [`peer_closed`](TlsSession::peer_closed). Returns how many bytes the
    /// caller discards from the front of `inbound`; an incomplete record
    /// stays there until more bytes arrive. Call with an empty slice to
    /// start a client's handshake.
    ///
    /// Errors are typed ([`Error::Tls`]); the fatal alert rustls queues
    /// for the peer is written to `out` before the error returns.
    pub(crate) fn read_tls(
        &mut self,
        inbound: &mut [u8],
        out: &mut impl CiphertextSink,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<usize> {
        self.ensure_usable()?;
        if self.server_name.is_none()
            && matches!(self.side, Side::Server(_))
            && self.is_handshaking()
        {
            self.server_name = client_hello_server_name(inbound);
        }
        let mut consumed = 0;
        let result = with_side!(&mut self.side, conn => read_records(
            conn,
            inbound,
            &mut consumed,
            out,
            deliver,
            &mut self.staged,
            &mut self.peer_closed,
        ));
        if result.is_err() {
            let rest = &mut inbound[consumed..];
            with_side!(&mut self.side, conn => write_pending_alert(conn, rest, out));
        }
        self.remember_failure(result).map(|()| consumed)
    }

    fn ensure_usable(&self) -> Result<()> {
        match &self.failed {
            Some(e) => Err(Error::Tls(e.clone())),
            None => Ok(()),
        }
    }

    fn remember_failure<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(Error::Tls(e)) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Copies as much of `plaintext` as fits into the staging area (up to
    /// [`STAGE_LIMIT`]) and returns how much; the next [`flush`] seals it,
    /// so small writes become one record.
    ///
    /// [`flush`]: TlsSession::flush
    pub(crate) fn stage(&mut self, plaintext: &[u8]) -> usize {
        let take = plaintext.len().min(STAGE_LIMIT - self.staged.len());
        self.staged.extend_from_slice(&plaintext[..take]);
        take
    }

    /// Encrypts `plaintext` into `out` (after any staged bytes), one record
    /// per 16 KiB, with no intermediate copy. Before the handshake has
    /// finished it is staged instead; returns how much was taken.
    pub(crate) fn write(
        &mut self,
        plaintext: &[u8],
        out: &mut impl CiphertextSink,
    ) -> Result<usize> {
        self.ensure_usable()?;
        if self.close_sent {
            return Err(Error::ConnClosed);
        }
        if self.is_handshaking() {
            return Ok(self.stage(plaintext));
        }
        self.flush(out)?;
        let sealed = with_side!(&mut self.side, conn => with_write_traffic(
            conn,
            out,
            &mut self.peer_closed,
            |traffic, out| encrypt(traffic, plaintext, out),
        ));
        let sealed = self.remember_failure(sealed)?;
        Ok(if sealed.is_some() {
            plaintext.len()
        } else {
            self.stage(plaintext)
        })
    }

    /// Seals the staged plaintext into `out` (nothing before the handshake
    /// has finished: it goes out right after).
    pub(crate) fn flush(&mut self, out: &mut impl CiphertextSink) -> Result<()> {
        self.ensure_usable()?;
        if self.staged.is_empty() || self.is_handshaking() {
            return Ok(());
        }
        let staged = &mut self.staged;
        let sealed = with_side!(&mut self.side, conn => with_write_traffic(
            conn,
            out,
            &mut self.peer_closed,
            |traffic, out| seal_staged(traffic, staged, out),
        ));
        self.remember_failure(sealed).map(drop)
    }

    /// Seals the staged plaintext and then a `close_notify` alert into
    /// `out`; afterwards writes fail with [`Error::ConnClosed`]. Before the
    /// handshake has finished, or after a failure, nothing is written. The caller sends `out`, then shuts down its write side.
    pub(crate) fn close(&mut self, out: &mut impl CiphertextSink) -> Result<()> {
        // A failed session has sent its fatal alert already.
        if self.close_sent || self.failed.is_some() || self.is_handshaking() {
            return Ok(());
        }
        self.close_sent = true;
        let staged = &mut self.staged;
        let closed = with_side!(&mut self.side, conn => with_write_traffic(
            conn,
            out,
            &mut self.peer_closed,
            |traffic, out| {
                seal_staged(traffic, staged, out)?;
                append_retrying(out, 64, |buf| traffic.queue_close_notify(buf))
            },
        ));
        self.remember_failure(closed).map(drop)
    }

    /// How the byte stream ended: `Ok` after the peer's `close_notify`,
    /// [`Error::TlsTruncated`] if its FIN came without one.
    pub(crate) fn end_of_stream(&self) -> Result<()> {
        if self.peer_closed {
            Ok(())
        } else {
            Err(Error::TlsTruncated)
        }
    }

    /// What was negotiated (complete once the handshake has finished).
    pub(crate) fn info(&self) -> TlsInfo {
        with_side!(&self.side, conn => TlsInfo {
            server_name: self.server_name.clone(),
            alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_certificates: conn
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
            version: conn.protocol_version().and_then(|v| v.as_str()),
            cipher_suite: conn.negotiated_cipher_suite().and_then(|s| s.suite().as_str()),
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
        })
    }
}

/// The body of [`TlsSession::read_tls`] for either side.
/// Adds what the caller discards to `consumed` as it goes, so that after an
/// error the alert is taken from the right view of `inbound`.
fn read_records<C: Unbuffered>(
    conn: &mut C,
    inbound: &mut [u8],
    consumed: &mut usize,
    out: &mut impl CiphertextSink,
    deliver: &mut dyn FnMut(&[u8]),
    staged: &mut Vec<u8>,
    peer_closed: &mut bool,
) -> Result<()> {
    loop {
        let UnbufferedStatus { discard, state } = conn.process(&mut inbound[*consumed..]);
        let state = state.map_err(map_error);
        *consumed += discard;
        match state? {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(map_error)?;
                    *consumed += record.discard;
                    deliver(record.payload);
                }
            }
            ConnectionState::EncodeTlsData(mut data) => encode_handshake(&mut data, out)?,
            ConnectionState::TransmitTlsData(mut transmit) => {
                // The bytes are in the caller's sink, which sends them.
                if let Some(mut traffic) = transmit.may_encrypt_app_data() {
                    seal_staged(&mut traffic, staged, out)?;
                }
                transmit.done();
            }
            ConnectionState::PeerClosed => *peer_closed = true,
            ConnectionState::Closed => {
                *peer_closed = true;
                return Ok(());
            }
            ConnectionState::WriteTraffic(mut traffic) => {
                // Handshake done and every record processed: plaintext
                // written before now goes out first.
                return seal_staged(&mut traffic, staged, out);
            }
            ConnectionState::BlockedHandshake => return Ok(()),
            // Early data is never enabled, so this is a peer out of step.
            _ => return Err(TlsError::Protocol("unexpected TLS state".into()).into()),
        }
    }
}

/// Reaches the `WriteTraffic` state (encoding any pending handshake or
/// ticket messages into `out` on the way) and runs `f` in it; `None` while
/// the handshake is still blocked on the peer.
fn with_write_traffic<C: Unbuffered, S: CiphertextSink, R>(
    conn: &mut C,
    out: &mut S,
    peer_closed: &mut bool,
    f: impl FnOnce(&mut WriteTraffic<'_, C::Data>, &mut S) -> Result<R>,
) -> Result<Option<R>> {
    loop {
        let UnbufferedStatus { state, .. } = conn.process(&mut []);
        match state.map_err(map_error)? {
            ConnectionState::WriteTraffic(mut traffic) => return f(&mut traffic, out).map(Some),
            ConnectionState::EncodeTlsData(mut data) => encode_handshake(&mut data, out)?,
            ConnectionState::TransmitTlsData(transmit) => transmit.done(),
            ConnectionState::PeerClosed => *peer_closed = true,
            ConnectionState::Closed => return Err(Error::ConnClosed),
            ConnectionState::BlockedHandshake => return Ok(None),
            _ => return Err(TlsError::Protocol("unexpected TLS state".into()).into()),
        }
    }
}

/// After a failure, the fatal alert rustls has queued for the peer (one
/// record). `rest` is the unconsumed inbound: rustls's handshake
/// reassembly may still point into it.
fn write_pending_alert<C: Unbuffered>(
    conn: &mut C,
    rest: &mut [u8],
    out: &mut impl CiphertextSink,
) {
    let UnbufferedStatus { state, .. } = conn.process(rest);
    if let Ok(ConnectionState::EncodeTlsData(mut data)) = state {
        let _ = out.append(64, |buf| data.encode(buf));
    }
}

/// A handshake (or ticket, key update) message into `out`.
fn encode_handshake<D>(
    data: &mut EncodeTlsData<'_, D>,
    out: &mut impl CiphertextSink,
) -> Result<()> {
    append_retrying(out, 2048, |buf| match data.encode(buf) {
        Err(EncodeError::InsufficientSize(e)) => Err(EncryptError::InsufficientSize(e)),
        Err(EncodeError::AlreadyEncoded) => Ok(0),
        Ok(n) => Ok(n),
    })
}

fn encrypt<D>(
    traffic: &mut WriteTraffic<'_, D>,
    plaintext: &[u8],
    out: &mut impl CiphertextSink,
) -> Result<()> {
    // Record overhead: 5 bytes of header, 16 of tag, 1 of content type.
    let records = plaintext.len() / STAGE_LIMIT + 1;
    append_retrying(out, plaintext.len() + records * 22, |buf| {
        traffic.encrypt(plaintext, buf)
    })?;
    Ok(())
}

fn seal_staged<D>(
    traffic: &mut WriteTraffic<'_, D>,
    staged: &mut Vec<u8>,
    out: &mut impl CiphertextSink,
) -> Result<()> {
    if !staged.is_empty() {
        encrypt(traffic, staged, out)?;
        staged.clear();
    }
    Ok(())
}

/// Appends with a first guess of `len` bytes, retrying once with the size
/// rustls asks for.
fn append_retrying(
    out: &mut impl CiphertextSink,
    len: usize,
    mut fill: impl FnMut(&mut [u8]) -> std::result::Result<usize, EncryptError>,
) -> Result<()> {
    match out.append(len, &mut fill) {
        Ok(_) => Ok(()),
        Err(EncryptError::InsufficientSize(e)) => match out.append(e.required_size, fill) {
            Ok(_) => Ok(()),
            Err(e) => Err(TlsError::Protocol(e.to_string()).into()),
        },
        Err(e) => Err(TlsError::Protocol(e.to_string()).into()),
    }
}

/// rustls's error as netloom's typed one.
pub(crate) fn map_error(e: rustls::Error) -> Error {
    use rustls::Error as E;
    let tls = match e {
        E::InvalidMessage(_) | E::DecryptError => TlsError::CorruptRecord(e.to_string()),
        E::InvalidCertificate(_) | E::NoCertificatesPresented => {
            TlsError::Certificate(e.to_string())
        }
        E::AlertReceived(alert) => TlsError::Alert(format!("{alert:?}")),
        E::NoApplicationProtocol => TlsError::NoApplicationProtocol,
        other => TlsError::Protocol(other.to_string()),
    };
    Error::Tls(tls)
}

/// The SNI host name in a ClientHello that sits whole in the first record
/// of `inbound`; `None` if there is none, or not all of it has arrived yet
/// (the next call looks again). rustls validates the message itself; this
/// only reads the name, which 0.23's unbuffered server does not expose.
pub(super) fn client_hello_server_name(inbound: &[u8]) -> Option<String> {
    let mut r = Reader(inbound);
    if r.u8()? != 0x16 {
        return None; // not a handshake record
    }
    r.skip(2)?;
    let mut record = r.vec16()?;
    if record.u8()? != 0x01 {
        return None; // not a ClientHello
    }
    let len = record.u24()?;
    let mut hello = Reader(record.take(len)?);
    hello.skip(2 + 32)?; // legacy version, random
    hello.vec8()?; // session id
    hello.vec16()?; // cipher suites
    hello.vec8()?; // compression methods
    let mut extensions = hello.vec16()?;
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let mut body = extensions.vec16()?;
        if kind != 0 {
            continue; // only server_name (0)
        }
        let mut names = body.vec16()?;
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.vec16()?;
            if name_type == 0 {
                let name = std::str::from_utf8(name.0).ok()?;
                return Some(name.to_ascii_lowercase());
            }
        }
    }
    None
}

/// A cursor over big-endian TLS wire fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    fn skip(&mut self, len: usize) -> Option<()> {
        self.take(len).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// A field with a one-byte length prefix.
    fn vec8(&mut self) -> Option<Reader<'a>> {
        let len = self.u8()?;
        self.take(usize::from(len)).map(Reader)
    }

    /// A field with a two-byte length prefix.
    fn vec16(&mut self) -> Option<Reader<'a>> {
        let len = self.u16()?;
        self.take(len).map(Reader)
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}
