//! The TLS flags of the example servers: `--tls-cert PEM --tls-key PEM`, or
//! `--tls-self-signed` (a certificate for `localhost` and `127.0.0.1`,
//! made at start-up with rcgen, the crate's dev-dependency, so no extra
//! dependency or program is needed; its PEM path is printed on stderr for
//! `curl --cacert`). TLS needs the `tls` feature (`cargo run --features tls
//! --example ...`); it covers TCP and Unix addresses, UDP stays plain.
//! Included with `#[path]`.

use netloom::{EngineBuilder, ListenerOptions};

/// The flags' usage text.
pub const TLS_USAGE: &str = "[--tls-cert PEM --tls-key PEM | --tls-self-signed]";

/// What the TLS flags asked for.
#[derive(Default)]
pub struct TlsFlags {
    cert: Option<String>,
    key: Option<String>,
    self_signed: bool,
}

impl TlsFlags {
    /// Takes `flag` (and its value) if it is a TLS flag; false otherwise.
    pub fn take(&mut self, flag: &str, value: &mut dyn FnMut() -> String) -> bool {
        match flag {
            "--tls-cert" => self.cert = Some(value()),
            "--tls-key" => self.key = Some(value()),
            "--tls-self-signed" => self.self_signed = true,
            _ => return false,
        }
        true
    }

    /// Binds every URL of `urls` on `builder` with `listener`'s options
    /// (a PROXY protocol header): TCP and Unix ones through TLS when the
    /// flags asked for it (offering `alpn`), after that header.
    pub fn bind(
        self,
        name: &str,
        mut builder: EngineBuilder,
        urls: &[String],
        alpn: &[&[u8]],
        listener: ListenerOptions,
    ) -> Result<EngineBuilder, String> {
        let wanted = self.self_signed || self.cert.is_some() || self.key.is_some();
        if !wanted {
            for url in urls {
                builder = builder.bind_with(url, listener.clone());
            }
            return Ok(builder);
        }
        #[cfg(not(any(feature = "tls-aws-lc-rs", feature = "tls-ring")))]
        {
            let _ = alpn;
            Err(format!(
                "TLS needs the tls feature: cargo run --release --features tls --example {name} -- ..."
            ))
        }
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        {
            let acceptor = self.acceptor(name, alpn)?;
            for url in urls {
                builder = if url.starts_with("udp") {
                    builder.bind_with(url, listener.clone())
                } else {
                    builder.bind_with(url, listener.clone().tls(acceptor.clone()))
                };
            }
            Ok(builder)
        }
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    fn acceptor(self, name: &str, alpn: &[&[u8]]) -> Result<netloom::tls::TlsAcceptor, String> {
        use netloom::tls::{TlsAcceptor, TlsServerConfig};
        let config = match (self.cert, self.key, self.self_signed) {
            (Some(cert), Some(key), false) => TlsServerConfig::from_pem_files(cert, key),
            (None, None, true) => {
                let (cert, key) = self_signed(name)?;
                TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes())
            }
            _ => return Err("give --tls-cert and --tls-key together, or --tls-self-signed".into()),
        };
        let config = config.map_err(|e| e.to_string())?.alpn(alpn);
        TlsAcceptor::new(config).map_err(|e| e.to_string())
    }
}

/// A certificate for localhost, written as `cert.pem` and `key.pem` into
/// `$TMPDIR/netloom-NAME-PID/` (tests find it by the child's pid).
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
fn self_signed(name: &str) -> Result<(String, String), String> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let (cert, key) = (made.cert.pem(), made.key_pair.serialize_pem());
    let dir = std::env::temp_dir().join(format!("netloom-{name}-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cert.pem"), &cert)?;
        std::fs::write(dir.join("key.pem"), &key)
    };
    write().map_err(|e| format!("cannot write the certificate into {}: {e}", dir.display()))?;
    let path = dir.join("cert.pem");
    eprintln!(
        "{name}: TLS with a self-signed certificate for localhost: {} (curl --cacert {})",
        path.display(),
        path.display()
    );
    Ok((cert, key))
}
