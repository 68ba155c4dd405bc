//! The one error type of netloom.

use std::io;

/// Everything that can go wrong in netloom.
///
/// I/O failures keep the kernel's error as [`Error::Io`]; everything else is
/// a variant of its own so callers can match on it.
///
/// ```
/// # struct Quiet;
/// # impl netloom::Handler for Quiet {
/// #     type Context = ();
/// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
/// # }
/// let err = netloom::Engine::builder().bind("sctp://127.0.0.1:1").start(Quiet);
/// assert!(matches!(err, Err(netloom::Error::UnknownScheme(_))));
/// ```
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address has a scheme netloom does not serve.
    #[error("unknown address scheme in `{0}` (expected tcp, tcp4, tcp6, udp, udp4, udp6, unix, systemd or fd)")]
    UnknownScheme(String),
    /// The address could not be parsed or resolved.
    #[error("invalid address `{addr}`: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The address is taken: another socket is bound to it (for a Unix
    /// socket file: a live server still answers on it).
    #[error("address `{0}` is already in use")]
    AddrInUse(String),
    /// The operation does not exist for this connection's transport (for
    /// example `send_to` on a TCP connection).
    #[error("not supported on this transport: {0}")]
    Unsupported(&'static str),
    /// The backend asked for (`Options::backend`, `NETLOOM_BACKEND`) cannot
    /// run here; the reason names what the kernel refused.
    #[error("the {backend} backend is unavailable: {reason}")]
    BackendUnavailable {
        /// The backend's name (`io-uring`).
        backend: &'static str,
        /// What the start-up probe found.
        reason: String,
    },
    /// An option has a value that cannot work.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The connection is closed (or closing); nothing more can be written.
    #[error("connection closed")]
    ConnClosed,
    /// The engine has stopped; its loops no longer take work.
    #[error("engine stopped")]
    EngineStopped,
    /// An asynchronous write would push the connection's pending bytes past
    /// the hard cap (`Options::async_write_cap`).
    #[error("outbound buffer full: {pending} bytes pending, cap is {cap}")]
    OutboundFull {
        /// Bytes already pending on the connection.
        pending: usize,
        /// The configured cap.
        cap: usize,
    },
    /// The handler left more unconsumed inbound bytes than
    /// `Options::max_inbound`; the connection is closed.
    #[error("{len} unconsumed inbound bytes exceed the limit of {max}")]
    InboundOverflow {
        /// Bytes received and not consumed.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// No traffic for longer than `Options::idle_timeout`.
    #[error("idle timeout")]
    IdleTimeout,
    /// A half-open connection (the peer sent its FIN, the handler kept
    /// writing) handed nothing to the kernel for a whole
    /// `Options::half_open_timeout`: the peer stopped reading. The value is
    /// the bytes left unsent.
    #[error("half-open connection made no progress; {0} bytes unsent")]
    HalfOpenTimeout(usize),
    /// A graceful close or shutdown could not flush everything in time.
    #[error("close timed out with {0} bytes unsent")]
    CloseTimeout(usize),
    /// A handler callback panicked; the message is the panic's payload.
    #[error("callback panicked: {0}")]
    CallbackPanic(String),
    /// The peer sent a frame the connection's codec rejects (over-long or
    /// corrupt), or a frame to send does not fit the codec.
    #[error("codec: {0}")]
    Codec(#[from] crate::codec::CodecError),
    /// An outbound connection could not be established (refused,
    /// unreachable, reset during the handshake); `source` is the kernel's
    /// error.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The address dialed.
        addr: crate::Addr,
        /// Why it failed.
        source: io::Error,
    },
    /// An outbound connection was not established within its timeout.
    #[error("connect to {0} timed out")]
    ConnectTimeout(crate::Addr),
    /// A host name could not be resolved to an address.
    #[error("cannot resolve `{host}`: {reason}")]
    Resolve {
        /// The host (and port) as given.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// A TLS session failed: a corrupt record, a rejected certificate, a
    /// fatal alert from the peer, an unusable configuration. The variant
    /// exists with and without the `tls` feature, so matches on it compile
    /// either way.
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// The peer closed its side of a TLS connection (TCP FIN) without
    /// sending `close_notify` first: the data may have been cut short.
    /// Many real clients close this way; it ends that connection only.
    #[error("tls: peer closed the connection without close_notify (possible truncation)")]
    TlsTruncated,
    /// A TLS handshake did not finish within
    /// `Options::tls_handshake_timeout` (a stalled or trickling peer).
    #[error("tls: handshake timed out")]
    TlsHandshakeTimeout,
    /// A connection on an address bound with
    /// [`ListenerOptions::proxy_protocol`](crate::ListenerOptions::proxy_protocol)
    /// sent no valid PROXY protocol header in time: it closes with only
    /// `on_close`.
    #[error("{0}")]
    ProxyHeader(#[from] crate::proxy_protocol::ProxyHeaderError),
    /// A kernel call failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why a TLS session or configuration failed ([`Error::Tls`]).
///
/// ```
/// let err = netloom::Error::from(netloom::TlsError::NoApplicationProtocol);
/// assert!(matches!(err, netloom::Error::Tls(netloom::TlsError::NoApplicationProtocol)));
/// ```
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer sent bytes that are not a valid TLS record: garbage, a
    /// record longer than TLS allows, a record that does not decrypt.
    #[error("corrupt record: {0}")]
    CorruptRecord(String),
    /// A certificate was rejected (expired, wrong name, unknown issuer), or
    /// a required client certificate was missing.
    #[error("certificate rejected: {0}")]
    Certificate(String),
    /// The peer ended the handshake or session with a fatal alert.
    #[error("peer sent alert: {0}")]
    Alert(String),
    /// Client and server have no ALPN protocol in common.
    #[error("no application protocol in common")]
    NoApplicationProtocol,
    /// The configuration cannot work: PEM without a certificate or key, a
    /// key that does not match its certificate, an invalid server name.
    #[error("configuration: {0}")]
    Config(String),
    /// Any other handshake failure or protocol violation.
    #[error("{0}")]
    Protocol(String),
}

/// `Result` with netloom's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
