//! Binding a callback example's addresses with its TLS flags and listener
//! options (a PROXY protocol header): TCP and Unix listeners through TLS
//! when the flags ask for it, UDP always plain. Included with `#[path]`
//! next to `tls_flags.rs`.

use netloom::{EngineBuilder, ListenerOptions};

use crate::tls_flags::TlsFlags;

impl TlsFlags {
    /// Binds every URL of `urls` on `builder` with `listener`'s options:
    /// TCP and Unix ones through TLS (after the PROXY header, if any) when
    /// the flags asked for it (offering `alpn`), the rest plain.
    pub fn bind(
        self,
        name: &str,
        mut builder: EngineBuilder,
        urls: &[String],
        alpn: &[&[u8]],
        listener: ListenerOptions,
    ) -> Result<EngineBuilder, String> {
        let acceptor = self.acceptor(name, alpn)?;
        for url in urls {
            let options = match &acceptor {
                #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
                Some(acceptor) if !url.starts_with("udp") => listener.clone().tls(acceptor.clone()),
                _ => listener.clone(),
            };
            builder = builder.bind_with(url, options);
        }
        Ok(builder)
    }
}
