//! Binding a callback example's addresses with its TLS flags: TCP and Unix
//! listeners through TLS when the flags ask for it, UDP always plain.
//! Included with `#[path]` next to `tls_flags.rs`.

use netloom::EngineBuilder;

use crate::tls_flags::TlsFlags;

impl TlsFlags {
    /// Binds every URL of `urls` on `builder`: TCP and Unix ones through
    /// TLS when the flags asked for it (offering `alpn`), the rest plain.
    pub fn bind(
        self,
        name: &str,
        mut builder: EngineBuilder,
        urls: &[String],
        alpn: &[&[u8]],
    ) -> Result<EngineBuilder, String> {
        let acceptor = self.acceptor(name, alpn)?;
        for url in urls {
            builder = match &acceptor {
                #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
                Some(acceptor) if !url.starts_with("udp") => {
                    builder.bind_tls(url, acceptor.clone())
                }
                _ => builder.bind(url),
            };
        }
        Ok(builder)
    }
}
