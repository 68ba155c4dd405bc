//! What one listening address does beyond accepting: a PROXY protocol
//! header before anything else, then (feature `tls`) a TLS handshake.

use std::time::Duration;

use crate::proxy_protocol::ProxyProtocol;

/// Per-address options of [`EngineBuilder::bind_with`](crate::EngineBuilder::bind_with).
///
/// They compose: a connection on an address with both a PROXY protocol
/// header and TLS sends the header first, then its ClientHello (as HAProxy's
/// `send-proxy-v2` in front of a TLS backend does).
///
/// ```
/// use netloom::proxy_protocol::ProxyProtocol;
/// use std::time::Duration;
/// let options = netloom::ListenerOptions::new()
///     .proxy_protocol(ProxyProtocol::V2)
///     .proxy_header_timeout(Duration::from_secs(2));
/// let builder = netloom::Engine::builder().bind_with("tcp://127.0.0.1:0", options);
/// ```
#[derive(Clone, Debug)]
pub struct ListenerOptions {
    pub(crate) proxy_protocol: Option<ProxyProtocol>,
    pub(crate) proxy_header_timeout: Duration,
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) tls: Option<crate::tls::TlsAcceptor>,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            proxy_protocol: None,
            proxy_header_timeout: Duration::from_secs(5),
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            tls: None,
        }
    }
}

impl ListenerOptions {
    /// A plain address: no PROXY header, no TLS.
    ///
    /// ```
    /// let options = netloom::ListenerOptions::new();
    /// ```
    pub fn new() -> ListenerOptions {
        ListenerOptions::default()
    }

    /// Every connection must start with a PROXY protocol header of
    /// `version` (a balancer such as HAProxy with `send-proxy` or
    /// `send-proxy-v2` in front). It is parsed before `on_open` (or the TLS
    /// handshake); then [`Conn::peer_addr`](crate::Conn::peer_addr) is the
    /// client's address and [`Conn::proxy`](crate::Conn::proxy) the whole
    /// header with the balancer's address. A connection without a valid
    /// header, or whose header does not arrive within
    /// [`proxy_header_timeout`](ListenerOptions::proxy_header_timeout),
    /// closes with only `on_close`, its error an
    /// [`Error::ProxyHeader`](crate::Error::ProxyHeader).
    ///
    /// ```
    /// use netloom::proxy_protocol::ProxyProtocol;
    /// let options = netloom::ListenerOptions::new().proxy_protocol(ProxyProtocol::V1);
    /// ```
    pub fn proxy_protocol(mut self, version: ProxyProtocol) -> Self {
        self.proxy_protocol = Some(version);
        self
    }

    /// How long a connection may take to send its whole PROXY header
    /// (5 seconds unless set).
    ///
    /// ```
    /// let options = netloom::ListenerOptions::new()
    ///     .proxy_header_timeout(std::time::Duration::from_millis(500));
    /// ```
    pub fn proxy_header_timeout(mut self, timeout: Duration) -> Self {
        self.proxy_header_timeout = timeout;
        self
    }

    /// Connections speak TLS through `acceptor` (feature `tls`), as on an
    /// address of [`EngineBuilder::bind_tls`](crate::EngineBuilder::bind_tls).
    ///
    /// ```
    /// # fn f(acceptor: netloom::tls::TlsAcceptor) {
    /// let options = netloom::ListenerOptions::new().tls(acceptor);
    /// # }
    /// ```
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub fn tls(mut self, acceptor: crate::tls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }
}
