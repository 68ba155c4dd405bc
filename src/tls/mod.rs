//! TLS for netloom (cargo feature `tls`): rustls's unbuffered API, so every
//! ciphertext and plaintext byte lives in netloom's own buffers.
//!
//! | type | what it is |
//! |------|------------|
//! | [`TlsServerConfig`] | certificates (several, chosen by SNI), ALPN, client certificates (mTLS), session tickets |
//! | [`TlsAcceptor`] | the server side; [`TlsAcceptor::reload`] swaps the configuration for new handshakes |
//! | [`TlsClientConfig`], [`TlsConnector`] | trusted roots, ALPN, a client certificate; resumption across connections |
//! | [`TlsInfo`] | what a handshake negotiated |
//!
//! The async front-end's streams use them through
//! [`rt::net::TlsStream`](crate::rt::net::TlsStream). The crypto provider
//! is aws-lc-rs (feature `tls-aws-lc-rs`, the default of `tls`) or ring
//! (feature `tls-ring` alone).
//!
//! ```
//! use netloom::tls::{TlsAcceptor, TlsServerConfig};
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
//! let config = TlsServerConfig::from_pem(cert.cert.pem().as_bytes(), cert.key_pair.serialize_pem().as_bytes())?
//!     .alpn(&[b"h2", b"http/1.1"]);
//! let acceptor = TlsAcceptor::new(config)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod session;
#[cfg(all(test, target_os = "linux"))]
mod tests;

pub(crate) use session::{CiphertextSink, TlsSession, STAGE_LIMIT};

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::{Result, TlsError};

/// The crypto provider the features select, made once.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            #[cfg(feature = "tls-aws-lc-rs")]
            let provider = rustls::crypto::aws_lc_rs::default_provider();
            #[cfg(not(feature = "tls-aws-lc-rs"))]
            let provider = rustls::crypto::ring::default_provider();
            Arc::new(provider)
        })
        .clone()
}

fn config_error(what: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(format!("{what}: {e}"))
}

fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error("certificate PEM", e))?;
    if certs.is_empty() {
        return Err(TlsError::Config("no certificate in the PEM".into()).into());
    }
    Ok(certs)
}

fn certified_key(cert_chain: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>> {
    let chain = parse_certificates(cert_chain)?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| config_error("private key PEM", e))?;
    let certified = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| config_error("certificate and key", e))?;
    Ok(Arc::new(certified))
}

fn root_store(pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certificates(pem)? {
        roots
            .add(cert)
            .map_err(|e| config_error("trusted root", e))?;
    }
    Ok(roots)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| TlsError::Config(format!("cannot read {}: {e}", path.display())).into())
}

/// Which client certificates a server asks for.
#[derive(Clone, Debug)]
enum ClientAuth {
    None,
    Optional(Arc<RootCertStore>),
    Required(Arc<RootCertStore>),
}

/// What a TLS server presents and accepts; [`TlsAcceptor::new`] builds it.
///
/// One certificate is the default; [`sni_certificate`] adds more, chosen
/// by the name the client asks for (SNI). Session tickets (TLS 1.3
/// resumption) are on by default.
///
/// ```
/// use netloom::tls::TlsServerConfig;
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// let config = TlsServerConfig::from_pem(cert.cert.pem().as_bytes(), cert.key_pair.serialize_pem().as_bytes())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`sni_certificate`]: TlsServerConfig::sni_certificate
#[derive(Clone, Debug)]
pub struct TlsServerConfig {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
    alpn: Vec<Vec<u8>>,
    client_auth: ClientAuth,
    session_tickets: bool,
}

impl TlsServerConfig {
    /// The default certificate: a PEM chain (leaf first) and its PEM
    /// private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`TlsError::Config`] if the PEM holds no certificate or key, or the
    /// key does not match the certificate.
    ///
    /// ```
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// let pem = (cert.cert.pem(), cert.key_pair.serialize_pem());
    /// netloom::tls::TlsServerConfig::from_pem(pem.0.as_bytes(), pem.1.as_bytes())?;
    /// assert!(netloom::tls::TlsServerConfig::from_pem(b"", pem.1.as_bytes()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsServerConfig> {
        Ok(TlsServerConfig {
            default: certified_key(cert_chain, key)?,
            by_name: HashMap::new(),
            alpn: Vec::new(),
            client_auth: ClientAuth::None,
            session_tickets: true,
        })
    }

    /// As [`from_pem`](TlsServerConfig::from_pem), reading two files.
    ///
    /// # Errors
    /// [`TlsError::Config`] if a file cannot be read, or as `from_pem`.
    ///
    /// ```no_run
    /// let config = netloom::tls::TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsServerConfig> {
        TlsServerConfig::from_pem(&read_file(cert_chain.as_ref())?, &read_file(key.as_ref())?)
    }

    /// Presents this certificate to clients that ask for `name` (SNI,
    /// case-insensitive); others get the default one.
    ///
    /// # Errors
    /// As [`from_pem`](TlsServerConfig::from_pem).
    ///
    /// ```
    /// use netloom::tls::TlsServerConfig;
    /// let a = rcgen::generate_simple_self_signed(vec!["a.test".into()])?;
    /// let b = rcgen::generate_simple_self_signed(vec!["b.test".into()])?;
    /// let config = TlsServerConfig::from_pem(a.cert.pem().as_bytes(), a.key_pair.serialize_pem().as_bytes())?
    ///     .sni_certificate("b.test", b.cert.pem().as_bytes(), b.key_pair.serialize_pem().as_bytes())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sni_certificate(
        mut self,
        name: &str,
        cert_chain: &[u8],
        key: &[u8],
    ) -> Result<TlsServerConfig> {
        self.by_name
            .insert(name.to_ascii_lowercase(), certified_key(cert_chain, key)?);
        Ok(self)
    }

    /// The ALPN protocols the server speaks, most preferred first. A client
    /// that offers ALPN but none of these fails the handshake with
    /// [`TlsError::NoApplicationProtocol`].
    ///
    /// ```
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let config = netloom::tls::TlsServerConfig::from_pem(cert.cert.pem().as_bytes(), cert.key_pair.serialize_pem().as_bytes())?;
    /// let config = config.alpn(&[b"h2", b"http/1.1"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsServerConfig {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Mutual TLS: every client must present a certificate issued by one
    /// of the CA certificates in `ca_pem`.
    ///
    /// # Errors
    /// [`TlsError::Config`] if `ca_pem` holds no usable certificate.
    ///
    /// ```
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let config = netloom::tls::TlsServerConfig::from_pem(cert.cert.pem().as_bytes(), cert.key_pair.serialize_pem().as_bytes())?;
    /// # let ca_pem = cert.cert.pem();
    /// let config = config.client_auth_required(ca_pem.as_bytes())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_auth_required(mut self, ca_pem: &[u8]) -> Result<TlsServerConfig> {
        self.client_auth = ClientAuth::Required(Arc::new(root_store(ca_pem)?));
        Ok(self)
    }

    /// As [`client_auth_required`](TlsServerConfig::client_auth_required),
    /// but a client without a certificate is let in too (one with a bad
    /// certificate is not); [`TlsInfo::peer_certificates`] tells which.
    ///
    /// # Errors
    /// [`TlsError::Config`] if `ca_pem` holds no usable certificate.
    ///
    /// ```
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let config = netloom::tls::TlsServerConfig::from_pem(cert.cert.pem().as_bytes(), cert.key_pair.serialize_pem().as_bytes())?;
    /// # let ca_pem = cert.cert.pem();
    /// let config = config.client_auth_optional(ca_pem.as_bytes())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_auth_optional(mut self, ca_pem: &[u8]) -> Result<TlsServerConfig> {
        self.client_auth = ClientAuth::Optional(Arc::new(root_store(ca_pem)?));
        Ok(self)
    }

    /// Whether to issue TLS 1.3 session tickets, so returning clients skip
    /// the certificate exchange (on by default).
    ///
    /// ```
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let config = netloom::tls::TlsServerConfig::from_pem(cert.cert.pem().as_bytes(), cert.key_pair.serialize_pem().as_bytes())?;
    /// let config = config.session_tickets(false);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_tickets(mut self, on: bool) -> TlsServerConfig {
        self.session_tickets = on;
        self
    }

    fn build(self) -> Result<Arc<ServerConfig>> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("protocol versions", e))?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(roots) | ClientAuth::Required(roots) if roots.is_empty() => {
                return Err(TlsError::Config("no client CA certificate".into()).into())
            }
            ClientAuth::Optional(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| config_error("client verifier", e))?,
            ),
            ClientAuth::Required(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| config_error("client verifier", e))?,
            ),
        };
        let mut config = builder.with_cert_resolver(Arc::new(SniResolver {
            default: self.default,
            by_name: self.by_name,
        }));
        config.alpn_protocols = self.alpn;
        if self.session_tickets {
            #[cfg(feature = "tls-aws-lc-rs")]
            let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new();
            #[cfg(not(feature = "tls-aws-lc-rs"))]
            let ticketer = rustls::crypto::ring::Ticketer::new();
            config.ticketer = ticketer.map_err(|e| config_error("session tickets", e))?;
        } else {
            config.send_tls13_tickets = 0;
        }
        Ok(Arc::new(config))
    }
}

/// Picks the certificate by the client's SNI name, else the default.
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()));
        Some(named.unwrap_or(&self.default).clone())
    }
}

/// The server side of TLS: starts a session per accepted connection.
/// Clones share the configuration, and [`reload`](TlsAcceptor::reload)
/// replaces it for all of them at once.
///
/// ```
/// use netloom::tls::{TlsAcceptor, TlsServerConfig};
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// let acceptor = TlsAcceptor::new(TlsServerConfig::from_pem(
///     cert.cert.pem().as_bytes(),
///     cert.key_pair.serialize_pem().as_bytes(),
/// )?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl TlsAcceptor {
    /// An acceptor serving `config`.
    ///
    /// # Errors
    /// [`TlsError::Config`] if the configuration cannot work.
    ///
    /// ```
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let config = netloom::tls::TlsServerConfig::from_pem(cert.cert.pem().as_bytes(), cert.key_pair.serialize_pem().as_bytes())?;
    /// let acceptor = netloom::tls::TlsAcceptor::new(config)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(config: TlsServerConfig) -> Result<TlsAcceptor> {
        Ok(TlsAcceptor {
            current: Arc::new(RwLock::new(config.build()?)),
        })
    }

    /// Hot reload: handshakes that start from now on use `config` (a
    /// renewed certificate, say); sessions already established, or already
    /// handshaking, keep the configuration they started with.
    ///
    /// # Errors
    /// [`TlsError::Config`]; the current configuration then stays.
    ///
    /// ```
    /// use netloom::tls::{TlsAcceptor, TlsServerConfig};
    /// let pem = |names: Vec<String>| {
    ///     let c = rcgen::generate_simple_self_signed(names).unwrap();
    ///     TlsServerConfig::from_pem(c.cert.pem().as_bytes(), c.key_pair.serialize_pem().as_bytes()).unwrap()
    /// };
    /// let acceptor = TlsAcceptor::new(pem(vec!["localhost".into()]))?;
    /// acceptor.reload(pem(vec!["localhost".into()]))?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn reload(&self, config: TlsServerConfig) -> Result<()> {
        let config = config.build()?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// A new server session under the current configuration.
    pub(crate) fn session(&self) -> Result<TlsSession> {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        TlsSession::server(config)
    }
}

/// What a TLS client trusts and presents; [`TlsConnector::new`] builds it.
///
/// ```
/// let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// let config = netloom::tls::TlsClientConfig::from_pem(ca.cert.pem().as_bytes())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TlsClientConfig {
    roots: RootCertStore,
    alpn: Vec<Vec<u8>>,
    client_certificate: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl TlsClientConfig {
    /// Trusts the CA (or self-signed) certificates in `roots_pem`.
    ///
    /// # Errors
    /// [`TlsError::Config`] if the PEM holds no usable certificate.
    ///
    /// ```
    /// assert!(netloom::tls::TlsClientConfig::from_pem(b"not pem").is_err());
    /// ```
    pub fn from_pem(roots_pem: &[u8]) -> Result<TlsClientConfig> {
        Ok(TlsClientConfig {
            roots: root_store(roots_pem)?,
            alpn: Vec::new(),
            client_certificate: None,
        })
    }

    /// As [`from_pem`](TlsClientConfig::from_pem), reading a file.
    ///
    /// # Errors
    /// [`TlsError::Config`] if the file cannot be read, or as `from_pem`.
    ///
    /// ```no_run
    /// let config = netloom::tls::TlsClientConfig::from_pem_file("ca.pem")?;
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub fn from_pem_file(roots: impl AsRef<Path>) -> Result<TlsClientConfig> {
        TlsClientConfig::from_pem(&read_file(roots.as_ref())?)
    }

    /// The ALPN protocols to offer, most preferred first.
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// let config = netloom::tls::TlsClientConfig::from_pem(ca.cert.pem().as_bytes())?.alpn(&[b"http/1.1"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsClientConfig {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The certificate chain and key to present to servers that ask (mTLS).
    ///
    /// # Errors
    /// As [`TlsServerConfig::from_pem`].
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// let me = rcgen::generate_simple_self_signed(vec!["client".into()])?;
    /// let config = netloom::tls::TlsClientConfig::from_pem(ca.cert.pem().as_bytes())?
    ///     .client_certificate(me.cert.pem().as_bytes(), me.key_pair.serialize_pem().as_bytes())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_certificate(mut self, cert_chain: &[u8], key: &[u8]) -> Result<TlsClientConfig> {
        // Checked here (the key matches the certificate), kept as DER for
        // rustls's client-auth builder.
        let certified = certified_key(cert_chain, key)?;
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| config_error("private key PEM", e))?;
        self.client_certificate = Some((certified.cert.clone(), key));
        Ok(self)
    }
}

/// The client side of TLS: starts a session per outbound connection.
/// Clones share one session cache, so a second connection to a server
/// resumes the first one's session.
///
/// ```
/// let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// let connector = netloom::tls::TlsConnector::new(netloom::tls::TlsClientConfig::from_pem(ca.cert.pem().as_bytes())?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// A connector using `config`.
    ///
    /// # Errors
    /// [`TlsError::Config`] if the configuration cannot work.
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let config = netloom::tls::TlsClientConfig::from_pem(ca.cert.pem().as_bytes())?;
    /// let connector = netloom::tls::TlsConnector::new(config)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(config: TlsClientConfig) -> Result<TlsConnector> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("protocol versions", e))?
            .with_root_certificates(config.roots);
        let mut client = match config.client_certificate {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| config_error("client certificate", e))?,
            None => builder.with_no_client_auth(),
        };
        client.alpn_protocols = config.alpn;
        Ok(TlsConnector {
            config: Arc::new(client),
        })
    }

    /// A new client session that verifies the server as `server_name`.
    pub(crate) fn session(&self, server_name: &str) -> Result<TlsSession> {
        TlsSession::client(self.config.clone(), server_name)
    }
}

/// What a handshake negotiated.
///
/// ```no_run
/// # async fn f(stream: netloom::rt::net::TlsStream) {
/// let info = stream.info();
/// println!("{:?} {:?} resumed: {}", info.version(), info.alpn_protocol(), info.resumed());
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    server_name: Option<String>,
    alpn_protocol: Option<Vec<u8>>,
    peer_certificates: Vec<Vec<u8>>,
    version: Option<&'static str>,
    cipher_suite: Option<&'static str>,
    resumed: bool,
}

impl TlsInfo {
    /// The name the client asked for (SNI), lowercased; on the client, the
    /// name it verified the server as.
    ///
    /// ```
    /// assert_eq!(netloom::tls::TlsInfo::default().server_name(), None);
    /// ```
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The ALPN protocol both sides agreed on.
    ///
    /// ```
    /// assert_eq!(netloom::tls::TlsInfo::default().alpn_protocol(), None);
    /// ```
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.alpn_protocol.as_deref()
    }

    /// The peer's certificate chain (DER, leaf first); empty if it sent
    /// none.
    ///
    /// ```
    /// assert!(netloom::tls::TlsInfo::default().peer_certificates().is_empty());
    /// ```
    pub fn peer_certificates(&self) -> &[Vec<u8>] {
        &self.peer_certificates
    }

    /// The protocol version, as rustls names it (`"TLSv1_3"`, `"TLSv1_2"`).
    ///
    /// ```
    /// assert_eq!(netloom::tls::TlsInfo::default().version(), None);
    /// ```
    pub fn version(&self) -> Option<&'static str> {
        self.version
    }

    /// The cipher suite, as the IANA registry names it
    /// (`"TLS13_AES_256_GCM_SHA384"`).
    ///
    /// ```
    /// assert_eq!(netloom::tls::TlsInfo::default().cipher_suite(), None);
    /// ```
    pub fn cipher_suite(&self) -> Option<&'static str> {
        self.cipher_suite
    }

    /// Whether the session was resumed (no certificate exchange).
    ///
    /// ```
    /// assert!(!netloom::tls::TlsInfo::default().resumed());
    /// ```
    pub fn resumed(&self) -> bool {
        self.resumed
    }
}
