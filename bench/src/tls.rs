//! The TLS side of the tokio peers: tokio-rustls with aws-lc-rs (the
//! provider of netloom's default `tls` feature), one certificate from PEM
//! files, ALPN `http/1.1`, TLS 1.3 session tickets as rustls defaults.

use std::sync::Arc;

use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::flags::Flags;

/// The acceptor for `--tls-cert PEM --tls-key PEM`, or `None` when neither
/// is given; exits with a message when they do not load.
pub fn acceptor(program: &str, flags: &Flags) -> Option<TlsAcceptor> {
    let cert = flags.text("tls-cert", "");
    let key = flags.text("tls-key", "");
    if cert.is_empty() && key.is_empty() {
        return None;
    }
    Some(TlsAcceptor::from(server_config(
        program,
        &cert,
        key.as_str(),
    )))
}

/// The server configuration of the peers: the certificate chain in PEM
/// file `cert`, its key in `key`, ALPN `http/1.1`; exits with a message
/// when they do not load.
pub fn server_config(program: &str, cert: &str, key: &str) -> Arc<ServerConfig> {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("{program}: {what}: {e}");
        std::process::exit(2)
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(cert, &e));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(key, &e));
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail("protocol versions", &e))
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap_or_else(|e| fail("certificate", &e));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves an accepted `socket` on a new task with `serve` (an `async fn`
/// generic over the stream): through `tls`'s handshake first when it is an
/// acceptor, as it is otherwise.
#[macro_export]
macro_rules! spawn_served {
    ($tls:expr, $socket:expr, $serve:path) => {
        match $tls {
            Some(acceptor) => {
                let handshake = acceptor.accept($socket);
                tokio::spawn(async move {
                    if let Ok(tls) = handshake.await {
                        $serve(tls).await;
                    }
                });
            }
            None => {
                tokio::spawn($serve($socket));
            }
        }
    };
}
