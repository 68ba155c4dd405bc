//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer sends before the client's first byte to tell the server who the
//! client is.
//!
//! A pure module: [`HeaderParser`] takes the bytes of the reads as they
//! come (a header split across reads, even one byte per read, resumes
//! where it stopped and never re-scans), bounded by [`V1_MAX_LEN`] and
//! [`V2_MAX_LEN`]; [`encode`] writes a header for a dialer. The engine runs
//! the parser before `on_open` on the addresses bound with
//! [`ListenerOptions::proxy_protocol`](crate::ListenerOptions::proxy_protocol)
//! and shows the outcome as [`Conn::peer_addr`](crate::Conn::peer_addr)
//! and [`Conn::proxy`](crate::Conn::proxy); an async task reads it with
//! [`TcpStream::read_proxy_header`](crate::rt::net::TcpStream::read_proxy_header).
//!
//! | version | form | bound | addresses |
//! |---|---|---|---|
//! | 1 | `PROXY TCP4 src dst sport dport\r\n` | 107 bytes | TCP over IPv4, IPv6, `UNKNOWN` |
//! | 2 | 12-byte signature, version/command, family, length, addresses, TLVs | 16 + length ≤ [`V2_MAX_LEN`] | IPv4, IPv6, Unix, `UNSPEC`; TLVs (ALPN, authority, unique id, SSL, CRC32C) |
//!
//! A `LOCAL` command (a balancer's health check) and an `UNKNOWN` or
//! `UNSPEC` family carry no client: the connection keeps the socket's own
//! addresses.
//!
//! ```
//! use netloom::proxy_protocol::{encode, HeaderParser, Parsed, ProxyProtocol};
//! let client = "192.0.2.7:50000".parse().unwrap();
//! let server = "198.51.100.1:443".parse().unwrap();
//! let mut wire = encode(ProxyProtocol::V2, Some((client, server)));
//! wire.extend_from_slice(b"GET / HTTP/1.1\r\n");
//! let mut parser = HeaderParser::new(ProxyProtocol::V2);
//! let Parsed::Done { header, consumed } = parser.feed(&wire)? else { unreachable!() };
//! assert_eq!(header.source(), Some(&client.into()));
//! assert_eq!(&wire[consumed..], b"GET / HTTP/1.1\r\n");
//! # Ok::<(), netloom::proxy_protocol::ProxyHeaderError>(())
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::{Addr, UnixAddr};

/// Longest version 1 header, `\r\n` included (the specification's bound).
pub const V1_MAX_LEN: usize = 107;
/// Longest version 2 header netloom accepts: the 16-byte fixed part and
/// up to 4080 bytes of addresses and TLVs (HAProxy's own headers stay far
/// below; the wire format would allow 64 KiB).
pub const V2_MAX_LEN: usize = 4096;

/// The 12 bytes every version 2 header starts with.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";

/// TLV types of version 2 (section 2.2 of the specification).
const PP2_TYPE_ALPN: u8 = 0x01;
const PP2_TYPE_AUTHORITY: u8 = 0x02;
const PP2_TYPE_CRC32C: u8 = 0x03;
const PP2_TYPE_UNIQUE_ID: u8 = 0x05;
const PP2_TYPE_SSL: u8 = 0x20;
const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
const PP2_SUBTYPE_SSL_CN: u8 = 0x22;
const PP2_SUBTYPE_SSL_CIPHER: u8 = 0x23;

/// Which PROXY protocol version a listener expects or a dialer sends.
///
/// ```
/// let options = netloom::ListenerOptions::new()
///     .proxy_protocol(netloom::proxy_protocol::ProxyProtocol::V2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyProtocol {
    /// The human-readable text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// The binary header, with TLVs.
    V2,
}

impl std::str::FromStr for ProxyProtocol {
    type Err = String;

    /// `v1` or `v2` (as the examples' `--proxy-protocol` flag takes it).
    ///
    /// ```
    /// use netloom::proxy_protocol::ProxyProtocol;
    /// assert_eq!("v2".parse::<ProxyProtocol>(), Ok(ProxyProtocol::V2));
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v1" | "1" => Ok(ProxyProtocol::V1),
            "v2" | "2" => Ok(ProxyProtocol::V2),
            other => Err(format!(
                "unknown PROXY protocol version `{other}` (v1 or v2)"
            )),
        }
    }
}

/// Why a PROXY header was refused; the connection closes with
/// [`Error::ProxyHeader`](crate::Error::ProxyHeader).
///
/// ```
/// use netloom::proxy_protocol::{HeaderParser, ProxyHeaderError, ProxyProtocol};
/// let mut parser = HeaderParser::new(ProxyProtocol::V1);
/// assert_eq!(parser.feed(b"GET / HTTP/1.1\r\n"), Err(ProxyHeaderError::Missing));
/// ```
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeaderError {
    /// The first bytes are not the header the listener expects (a client
    /// that bypassed the balancer, or the other version).
    #[error("no PROXY protocol header where one is required")]
    Missing,
    /// The header breaks the format: its reason.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    /// The header is longer than the bound ([`V1_MAX_LEN`], [`V2_MAX_LEN`]).
    #[error("PROXY protocol header of {len} bytes or more exceeds the limit of {max}")]
    TooLong {
        /// Bytes seen or announced.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The version 2 header's CRC32C TLV does not match its bytes.
    #[error("PROXY protocol header checksum mismatch")]
    Checksum,
    /// The peer closed the connection before the header was complete.
    #[error("connection closed inside the PROXY protocol header")]
    Truncated,
    /// The header did not arrive within the listener's
    /// [`proxy_header_timeout`](crate::ListenerOptions::proxy_header_timeout).
    #[error("PROXY protocol header timed out")]
    Timeout,
}

/// A parse step's outcome ([`HeaderParser::feed`]).
///
/// ```
/// use netloom::proxy_protocol::{HeaderParser, Parsed, ProxyProtocol};
/// let mut parser = HeaderParser::new(ProxyProtocol::V1);
/// assert!(matches!(parser.feed(b"PROXY UNKN"), Ok(Parsed::Incomplete)));
/// assert!(matches!(parser.feed(b"OWN\r\nhello"), Ok(Parsed::Done { consumed: 5, .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed; everything fed so far was taken.
    Incomplete,
    /// The header is complete.
    Done {
        /// What it says.
        header: Box<ProxyHeader>,
        /// Bytes of the last input that belong to the header: the rest of
        /// that input is the connection's first application bytes.
        consumed: usize,
    },
}

/// The command of a header.
///
/// ```
/// # fn f(conn: &netloom::Conn<'_, ()>) {
/// use netloom::proxy_protocol::ProxyCommand;
/// if conn.proxy().is_some_and(|p| p.command() == ProxyCommand::Local) {
///     // a health check of the balancer itself
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyCommand {
    /// Relayed for a client: the addresses are the client's connection's.
    Proxy,
    /// Opened by the balancer itself (health checks; version 1's
    /// `UNKNOWN` too): no client addresses.
    Local,
}

/// One version 2 TLV (type-length-value) of a header, raw.
///
/// ```
/// # fn f(conn: &netloom::Conn<'_, ()>) {
/// for tlv in conn.proxy().map(|p| p.tlvs()).unwrap_or_default() {
///     println!("TLV {:#04x}: {} bytes", tlv.kind, tlv.value.len());
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tlv {
    /// The type byte (`PP2_TYPE_*`).
    pub kind: u8,
    /// The value.
    pub value: Vec<u8>,
}

/// A parsed PROXY header: the client's connection as the balancer saw it.
/// On an accepted connection, [`Conn::proxy`](crate::Conn::proxy) shows it
/// with the balancer's own address.
///
/// ```
/// # fn f(conn: &netloom::Conn<'_, ()>) {
/// if let Some(proxy) = conn.proxy() {
///     println!("client {:?} via balancer {}", proxy.source(), proxy.balancer());
///     println!("TLS SNI {:?}, request id {:?}", proxy.authority(), proxy.unique_id());
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    version: ProxyProtocol,
    command: ProxyCommand,
    source: Option<Addr>,
    destination: Option<Addr>,
    tlvs: Vec<Tlv>,
    /// The peer of the socket: the balancer (set by the engine).
    balancer: Option<Addr>,
}

impl ProxyHeader {
    /// The header's version.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let version = conn.proxy().map(|p| p.version());
    /// # }
    /// ```
    pub fn version(&self) -> ProxyProtocol {
        self.version
    }

    /// `Proxy` for a relayed client, `Local` for the balancer's own
    /// connection (its addresses are then `None`).
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let command = conn.proxy().map(|p| p.command());
    /// # }
    /// ```
    pub fn command(&self) -> ProxyCommand {
        self.command
    }

    /// The client's address; `None` for `LOCAL`, `UNKNOWN` and `UNSPEC`.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let client = conn.proxy().and_then(|p| p.source());
    /// # }
    /// ```
    pub fn source(&self) -> Option<&Addr> {
        self.source.as_ref()
    }

    /// The address the client connected to (the balancer's frontend);
    /// `None` where [`source`](ProxyHeader::source) is.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let frontend = conn.proxy().and_then(|p| p.destination());
    /// # }
    /// ```
    pub fn destination(&self) -> Option<&Addr> {
        self.destination.as_ref()
    }

    /// The socket's own peer: the balancer that sent the header. An
    /// unnamed address on a header parsed outside a connection.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let balancer = conn.proxy().map(|p| p.balancer().clone());
    /// # }
    /// ```
    pub fn balancer(&self) -> &Addr {
        const UNNAMED: Addr = Addr::Unix(UnixAddr::Unnamed);
        self.balancer.as_ref().unwrap_or(&UNNAMED)
    }

    /// Every TLV of a version 2 header, in order, raw.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let count = conn.proxy().map_or(0, |p| p.tlvs().len());
    /// # }
    /// ```
    pub fn tlvs(&self) -> &[Tlv] {
        &self.tlvs
    }

    /// The value of the first TLV of type `kind`.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let netns = conn.proxy().and_then(|p| p.tlv(0x30)); // PP2_TYPE_NETNS
    /// # }
    /// ```
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        find_tlv(&self.tlvs, kind)
    }

    /// The ALPN protocol the client negotiated with the balancer
    /// (`PP2_TYPE_ALPN`), e.g. `b"h2"`.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let h2 = conn.proxy().and_then(|p| p.alpn()) == Some(b"h2".as_slice());
    /// # }
    /// ```
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(PP2_TYPE_ALPN)
    }

    /// The host name the client asked for (`PP2_TYPE_AUTHORITY`: the TLS
    /// SNI), if it is UTF-8.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let host = conn.proxy().and_then(|p| p.authority());
    /// # }
    /// ```
    pub fn authority(&self) -> Option<&str> {
        self.tlv(PP2_TYPE_AUTHORITY)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The balancer's identifier of the connection (`PP2_TYPE_UNIQUE_ID`,
    /// HAProxy's `unique-id-format`), raw.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let id = conn.proxy().and_then(|p| p.unique_id());
    /// # }
    /// ```
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(PP2_TYPE_UNIQUE_ID)
    }

    /// The client's TLS session with the balancer (`PP2_TYPE_SSL`).
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// if let Some(ssl) = conn.proxy().and_then(|p| p.ssl()) {
    ///     println!("{:?} {:?}, verified: {}", ssl.version(), ssl.cipher(), ssl.verified());
    /// }
    /// # }
    /// ```
    pub fn ssl(&self) -> Option<SslTlv> {
        let value = self.tlv(PP2_TYPE_SSL)?;
        let (&client, rest) = value.split_first()?;
        let verify = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        let tlvs = parse_tlvs(&rest[4..]).ok()?;
        Some(SslTlv {
            client,
            verify,
            tlvs,
        })
    }

    /// The header with the socket's peer recorded as the balancer.
    pub(crate) fn with_balancer(mut self, balancer: Addr) -> ProxyHeader {
        self.balancer = Some(balancer);
        self
    }
}

/// The `PP2_TYPE_SSL` TLV: the client's TLS session with the balancer.
///
/// ```
/// # fn f(ssl: &netloom::proxy_protocol::SslTlv) {
/// println!("client cert CN {:?}", ssl.common_name());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslTlv {
    /// `PP2_CLIENT_SSL` (1), `PP2_CLIENT_CERT_CONN` (2),
    /// `PP2_CLIENT_CERT_SESS` (4), or-ed.
    pub client: u8,
    /// 0 when the client's certificate was verified.
    pub verify: u32,
    /// The sub-TLVs (`PP2_SUBTYPE_SSL_*`), raw.
    pub tlvs: Vec<Tlv>,
}

impl SslTlv {
    /// The client spoke TLS and its certificate, if any, was verified.
    ///
    /// ```
    /// # fn f(ssl: &netloom::proxy_protocol::SslTlv) {
    /// let trusted = ssl.verified();
    /// # }
    /// ```
    pub fn verified(&self) -> bool {
        self.client & 1 != 0 && self.verify == 0
    }

    /// The TLS version, e.g. `TLSv1.3` (`PP2_SUBTYPE_SSL_VERSION`).
    ///
    /// ```
    /// # fn f(ssl: &netloom::proxy_protocol::SslTlv) {
    /// let version = ssl.version();
    /// # }
    /// ```
    pub fn version(&self) -> Option<&str> {
        self.text(PP2_SUBTYPE_SSL_VERSION)
    }

    /// The common name of the client certificate's subject
    /// (`PP2_SUBTYPE_SSL_CN`).
    ///
    /// ```
    /// # fn f(ssl: &netloom::proxy_protocol::SslTlv) {
    /// let cn = ssl.common_name();
    /// # }
    /// ```
    pub fn common_name(&self) -> Option<&str> {
        self.text(PP2_SUBTYPE_SSL_CN)
    }

    /// The cipher suite's name (`PP2_SUBTYPE_SSL_CIPHER`).
    ///
    /// ```
    /// # fn f(ssl: &netloom::proxy_protocol::SslTlv) {
    /// let cipher = ssl.cipher();
    /// # }
    /// ```
    pub fn cipher(&self) -> Option<&str> {
        self.text(PP2_SUBTYPE_SSL_CIPHER)
    }

    fn text(&self, kind: u8) -> Option<&str> {
        find_tlv(&self.tlvs, kind).and_then(|v| std::str::from_utf8(v).ok())
    }
}

fn find_tlv(tlvs: &[Tlv], kind: u8) -> Option<&[u8]> {
    tlvs.iter()
        .find(|t| t.kind == kind)
        .map(|t| t.value.as_slice())
}

/// An incremental PROXY header parser for one connection.
///
/// Feed it each read's bytes until it answers [`Parsed::Done`] or an
/// error. It keeps only the header's bytes (at most [`V1_MAX_LEN`] or
/// [`V2_MAX_LEN`]), checks every byte once as it arrives (a client that
/// is not a balancer fails at its first wrong byte), and never takes a
/// byte past the header.
///
/// ```
/// use netloom::proxy_protocol::{HeaderParser, Parsed, ProxyProtocol};
/// let wire = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\nPING\r\n";
/// let mut parser = HeaderParser::new(ProxyProtocol::V1);
/// for (i, byte) in wire.iter().enumerate() {
///     if let Parsed::Done { header, consumed } = parser.feed(std::slice::from_ref(byte))? {
///         assert_eq!((i, consumed), (44, 1));
///         assert_eq!(header.source().unwrap().to_string(), "192.0.2.7:50000");
///         break;
///     }
/// }
/// # Ok::<(), netloom::proxy_protocol::ProxyHeaderError>(())
/// ```
#[derive(Clone, Debug)]
pub struct HeaderParser {
    version: ProxyProtocol,
    /// The header's bytes received so far.
    buf: Vec<u8>,
    /// Version 2: the whole header's length, once the fixed part is in.
    total: Option<usize>,
}

impl HeaderParser {
    /// A parser expecting a header of `version`.
    ///
    /// ```
    /// use netloom::proxy_protocol::{HeaderParser, ProxyProtocol};
    /// let parser = HeaderParser::new(ProxyProtocol::V2);
    /// ```
    pub fn new(version: ProxyProtocol) -> HeaderParser {
        HeaderParser {
            version,
            buf: Vec::new(),
            total: None,
        }
    }

    /// Takes the next bytes of the stream.
    ///
    /// # Errors
    /// [`ProxyHeaderError`]: the bytes are not a valid header of the
    /// expected version, or exceed its bound. Feeding more after an error
    /// or after `Done` is a misuse whose answers mean nothing (it never
    /// panics).
    ///
    /// ```
    /// use netloom::proxy_protocol::{HeaderParser, Parsed, ProxyProtocol};
    /// let mut parser = HeaderParser::new(ProxyProtocol::V1);
    /// assert_eq!(parser.feed(b"PROXY ")?, Parsed::Incomplete);
    /// # Ok::<(), netloom::proxy_protocol::ProxyHeaderError>(())
    /// ```
    pub fn feed(&mut self, input: &[u8]) -> Result<Parsed, ProxyHeaderError> {
        match self.version {
            ProxyProtocol::V1 => self.feed_v1(input),
            ProxyProtocol::V2 => self.feed_v2(input),
        }
    }

    fn feed_v1(&mut self, input: &[u8]) -> Result<Parsed, ProxyHeaderError> {
        let start = self.buf.len();
        let room = V1_MAX_LEN - start;
        let newline = input[..input.len().min(room)]
            .iter()
            .position(|&b| b == b'\n');
        let taken = newline.map_or(input.len().min(room), |i| i + 1);
        self.buf.extend_from_slice(&input[..taken]);
        check_prefix(&self.buf, start, V1_PREFIX)?;
        if newline.is_none() {
            if self.buf.len() >= V1_MAX_LEN {
                return Err(ProxyHeaderError::TooLong {
                    len: self.buf.len(),
                    max: V1_MAX_LEN,
                });
            }
            return Ok(Parsed::Incomplete);
        }
        let header = parse_v1(&self.buf)?;
        Ok(Parsed::Done {
            header: Box::new(header),
            consumed: taken,
        })
    }

    fn feed_v2(&mut self, input: &[u8]) -> Result<Parsed, ProxyHeaderError> {
        let start = self.buf.len();
        let wanted = self.total.unwrap_or(16);
        let taken = (wanted - start).min(input.len());
        self.buf.extend_from_slice(&input[..taken]);
        check_prefix(&self.buf, start, &V2_SIGNATURE)?;
        let mut consumed = taken;
        if self.total.is_none() {
            if self.buf.len() < 16 {
                return Ok(Parsed::Incomplete);
            }
            if self.buf[12] >> 4 != 2 {
                return Err(ProxyHeaderError::Malformed("version 2 expected"));
            }
            let total = 16 + usize::from(u16::from_be_bytes([self.buf[14], self.buf[15]]));
            if total > V2_MAX_LEN {
                return Err(ProxyHeaderError::TooLong {
                    len: total,
                    max: V2_MAX_LEN,
                });
            }
            self.total = Some(total);
            let more = (total - 16).min(input.len() - taken);
            self.buf.extend_from_slice(&input[taken..taken + more]);
            consumed += more;
        }
        if Some(self.buf.len()) != self.total {
            return Ok(Parsed::Incomplete);
        }
        let header = parse_v2(&self.buf)?;
        Ok(Parsed::Done {
            header: Box::new(header),
            consumed,
        })
    }
}

/// Checks the bytes of `buf` from `from` against the expected prefix.
fn check_prefix(buf: &[u8], from: usize, prefix: &[u8]) -> Result<(), ProxyHeaderError> {
    let end = buf.len().min(prefix.len());
    if from < end && buf[from..end] != prefix[from..end] {
        return Err(ProxyHeaderError::Missing);
    }
    Ok(())
}

/// A complete version 1 line, `\r\n` included.
fn parse_v1(line: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    let body = line
        .strip_suffix(b"\r\n")
        .ok_or(malformed("the line must end with CRLF"))?;
    let body = std::str::from_utf8(&body[V1_PREFIX.len()..])
        .map_err(|_| malformed("the line is not ASCII"))?;
    let mut fields = body.split(' ');
    let family = fields.next().unwrap_or_default();
    let local = ProxyHeader {
        version: ProxyProtocol::V1,
        command: ProxyCommand::Local,
        source: None,
        destination: None,
        tlvs: Vec::new(),
        balancer: None,
    };
    if family == "UNKNOWN" {
        // The rest of the line is to be ignored (the specification).
        return Ok(local);
    }
    let v6 = match family {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(malformed("the protocol must be TCP4, TCP6 or UNKNOWN")),
    };
    let mut next = || fields.next().ok_or(malformed("too few fields"));
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(malformed("too many fields"));
    }
    let ip = |text: &str| -> Result<IpAddr, ProxyHeaderError> {
        let ip = if v6 {
            text.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            text.parse::<Ipv4Addr>().map(IpAddr::V4)
        };
        ip.map_err(|_| malformed("an address does not match the protocol"))
    };
    let port = |text: &str| -> Result<u16, ProxyHeaderError> {
        let digits = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        match digits {
            true => text.parse().map_err(|_| malformed("a port is over 65535")),
            false => Err(malformed("a port is not a decimal number")),
        }
    };
    Ok(ProxyHeader {
        command: ProxyCommand::Proxy,
        source: Some(Addr::Inet(SocketAddr::new(ip(src)?, port(sport)?))),
        destination: Some(Addr::Inet(SocketAddr::new(ip(dst)?, port(dport)?))),
        ..local
    })
}

/// A complete version 2 header.
fn parse_v2(header: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    let command = match header[12] & 0x0f {
        0 => ProxyCommand::Local,
        1 => ProxyCommand::Proxy,
        _ => return Err(malformed("the command must be LOCAL or PROXY")),
    };
    let family = header[13] >> 4;
    let protocol = header[13] & 0x0f;
    if family > 3 || protocol > 2 {
        return Err(malformed("unknown address family or protocol"));
    }
    let body = &header[16..];
    let address_len = address_len(family);
    if body.len() < address_len {
        return Err(malformed("the length is too short for the addresses"));
    }
    let (addresses, tlv_bytes) = body.split_at(address_len);
    let tlvs = parse_tlvs(tlv_bytes)?;
    if let Some(crc) = find_tlv(&tlvs, PP2_TYPE_CRC32C) {
        verify_crc32c(header, crc)?;
    }
    let mut parsed = ProxyHeader {
        version: ProxyProtocol::V2,
        command,
        source: None,
        destination: None,
        tlvs,
        balancer: None,
    };
    if command == ProxyCommand::Local || protocol == 0 {
        return Ok(parsed);
    }
    let (source, destination) = match family {
        1 => {
            let ip = |at: usize| IpAddr::from(<[u8; 4]>::try_from(&addresses[at..at + 4]).unwrap());
            let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
            (
                Addr::Inet(SocketAddr::new(ip(0), port(8))),
                Addr::Inet(SocketAddr::new(ip(4), port(10))),
            )
        }
        2 => {
            let ip =
                |at: usize| IpAddr::from(<[u8; 16]>::try_from(&addresses[at..at + 16]).unwrap());
            let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
            (
                Addr::Inet(SocketAddr::new(ip(0), port(32))),
                Addr::Inet(SocketAddr::new(ip(16), port(34))),
            )
        }
        3 => (
            Addr::Unix(unix_name(&addresses[..108])),
            Addr::Unix(unix_name(&addresses[108..])),
        ),
        _ => return Ok(parsed),
    };
    parsed.source = Some(source);
    parsed.destination = Some(destination);
    Ok(parsed)
}

/// Bytes of the address block of a version 2 `family` (AF_INET, AF_INET6,
/// AF_UNIX; none for AF_UNSPEC).
fn address_len(family: u8) -> usize {
    match family {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    }
}

/// A `sun_path` of 108 bytes: a NUL-terminated path, a leading NUL for an
/// abstract name (up to the last non-NUL byte), all NULs for none.
fn unix_name(raw: &[u8]) -> UnixAddr {
    match raw.split_first() {
        Some((&0, rest)) => {
            let end = rest.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            match end {
                0 => UnixAddr::Unnamed,
                _ => UnixAddr::Abstract(rest[..end].to_vec()),
            }
        }
        _ => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            UnixAddr::Path(PathBuf::from(std::ffi::OsStr::from_bytes(&raw[..end])))
        }
    }
}

fn parse_tlvs(mut bytes: &[u8]) -> Result<Vec<Tlv>, ProxyHeaderError> {
    let mut tlvs = Vec::new();
    while !bytes.is_empty() {
        let [kind, hi, lo, rest @ ..] = bytes else {
            return Err(ProxyHeaderError::Malformed("a TLV is cut short"));
        };
        let (kind, len) = (*kind, usize::from(u16::from_be_bytes([*hi, *lo])));
        if rest.len() < len {
            return Err(ProxyHeaderError::Malformed("a TLV is cut short"));
        }
        tlvs.push(Tlv {
            kind,
            value: rest[..len].to_vec(),
        });
        bytes = &rest[len..];
    }
    Ok(tlvs)
}

/// Checks the `PP2_TYPE_CRC32C` TLV: the CRC32C of the whole header with
/// the TLV's value taken as zeros.
fn verify_crc32c(header: &[u8], expected: &[u8]) -> Result<(), ProxyHeaderError> {
    let expected: [u8; 4] = expected
        .try_into()
        .map_err(|_| ProxyHeaderError::Malformed("the CRC32C TLV is not 4 bytes"))?;
    // The value's offset: the first CRC32C TLV's (what `find_tlv` found).
    let mut at = 16 + address_len(header[13] >> 4);
    while header[at] != PP2_TYPE_CRC32C {
        at += 3 + usize::from(u16::from_be_bytes([header[at + 1], header[at + 2]]));
    }
    let value = at + 3;
    let mut crc = crc32c_update(!0, &header[..value]);
    crc = crc32c_update(crc, &[0; 4]);
    crc = !crc32c_update(crc, &header[value + 4..]);
    match crc == u32::from_be_bytes(expected) {
        true => Ok(()),
        false => Err(ProxyHeaderError::Checksum),
    }
}

/// CRC32C (Castagnoli, reflected), bit by bit: headers are short and
/// checked once per connection.
fn crc32c_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

/// A header for a dialer to send first: `Some((source, destination))`
/// relays that client (`PROXY`); `None` is a `LOCAL` header (`UNKNOWN` in
/// version 1). An IPv4 address beside an IPv6 one is sent IPv4-mapped.
///
/// ```
/// use netloom::proxy_protocol::{encode, ProxyProtocol};
/// let client = "192.0.2.7:50000".parse().unwrap();
/// let server = "198.51.100.1:443".parse().unwrap();
/// assert_eq!(
///     encode(ProxyProtocol::V1, Some((client, server))),
///     b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n"
/// );
/// assert_eq!(encode(ProxyProtocol::V2, None).len(), 16);
/// ```
pub fn encode(version: ProxyProtocol, addrs: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let addrs = addrs.map(|(src, dst)| match (src, dst) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => {
            (src, dst)
        }
        _ => (mapped(src), mapped(dst)),
    });
    match (version, addrs) {
        (ProxyProtocol::V1, None) => b"PROXY UNKNOWN\r\n".to_vec(),
        (ProxyProtocol::V1, Some((src, dst))) => {
            let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
            let (sport, dport) = (src.port(), dst.port());
            let (src, dst) = (src.ip(), dst.ip());
            format!("PROXY {family} {src} {dst} {sport} {dport}\r\n").into_bytes()
        }
        (ProxyProtocol::V2, addrs) => {
            let mut out = V2_SIGNATURE.to_vec();
            match addrs {
                None => out.extend_from_slice(&[0x20, 0x00, 0, 0]),
                Some((SocketAddr::V4(src), SocketAddr::V4(dst))) => {
                    out.extend_from_slice(&[0x21, 0x11, 0, 12]);
                    out.extend_from_slice(&src.ip().octets());
                    out.extend_from_slice(&dst.ip().octets());
                    out.extend_from_slice(&src.port().to_be_bytes());
                    out.extend_from_slice(&dst.port().to_be_bytes());
                }
                Some((src, dst)) => {
                    out.extend_from_slice(&[0x21, 0x21, 0, 36]);
                    out.extend_from_slice(&v6_octets(src.ip()));
                    out.extend_from_slice(&v6_octets(dst.ip()));
                    out.extend_from_slice(&src.port().to_be_bytes());
                    out.extend_from_slice(&dst.port().to_be_bytes());
                }
            }
            out
        }
    }
}

fn mapped(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(v6_octets(addr.ip()).into()), addr.port())
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests;
