//! TLS interop on the async front-end: tokio-rustls (a separate rustls
//! stack, buffered API) at the other end in both directions, and hyper
//! serving HTTPS on `rt`, fetched by netloom's client and by `curl`. Run
//! with `cargo test --features tls,tokio-io --test rt_tls_compat`.
#![cfg(all(
    target_os = "linux",
    any(feature = "tls-aws-lc-rs", feature = "tls-ring"),
    feature = "tokio-io"
))]

mod util;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use netloom::rt::net::{TcpListener, TcpStream};
use netloom::rt::{self, Runtime};
use netloom::tls::{TlsAcceptor, TlsClientConfig, TlsConnector, TlsServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

fn localhost_cert() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, mut data: &[u8]) {
    while !data.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, data))
            .await
            .unwrap();
        data = &data[n..];
    }
    poll_fn(|cx| Pin::new(&mut *w).poll_flush(cx))
        .await
        .unwrap();
}

async fn read_exact<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    let mut filled = 0;
    while filled < len {
        let mut buf = ReadBuf::new(&mut out[filled..]);
        poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, &mut buf))
            .await
            .unwrap();
        let n = buf.filled().len();
        assert!(n > 0, "early end after {filled} of {len} bytes");
        filled += n;
    }
    out
}

async fn shutdown<W: AsyncWrite + Unpin>(w: &mut W) {
    poll_fn(|cx| Pin::new(&mut *w).poll_shutdown(cx))
        .await
        .unwrap();
}

/// tokio-rustls client -> netloom server, and netloom client ->
/// tokio-rustls server limited to TLS 1.2; 200 KB each way, byte-exact.
#[test]
fn tokio_rustls_interoperates_both_ways() {
    let cert = localhost_cert();
    let rt = Runtime::builder().loops(1).build().unwrap();
    let data = util::pattern(11, 200_000);
    rt.block_on(async {
        // netloom server, tokio-rustls client.
        let acceptor = TlsAcceptor::new(
            TlsServerConfig::from_pem(cert.0.as_bytes(), cert.1.as_bytes()).unwrap(),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let len = data.len();
        let server = rt::spawn_local(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let got = read_exact(&mut tls, len).await;
            write_all(&mut tls, &got).await;
            shutdown(&mut tls).await;
            tls.info()
        });
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(cert.0.as_bytes()).unwrap())
            .unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client_config))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        write_all(&mut tls, &data).await;
        assert!(read_exact(&mut tls, data.len()).await == data);
        // The netloom server's close_notify reads as a clean end.
        let mut rest = [0; 16];
        let mut buf = ReadBuf::new(&mut rest);
        poll_fn(|cx| Pin::new(&mut tls).poll_read(cx, &mut buf))
            .await
            .unwrap();
        assert!(buf.filled().is_empty());
        let info = rt::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.server_name(), Some("localhost"));

        // tokio-rustls server (TLS 1.2 only), netloom client.
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).unwrap();
        let chain =
            vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.0.as_bytes()).unwrap()];
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn_local(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(Arc::new(server_config))
                .accept(tcp)
                .await
                .unwrap();
            let got = read_exact(&mut tls, len).await;
            write_all(&mut tls, &got).await;
            shutdown(&mut tls).await;
        });
        let connector =
            TlsConnector::new(TlsClientConfig::from_pem(cert.0.as_bytes()).unwrap()).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector.connect("localhost", tcp).await.unwrap();
        assert_eq!(tls.info().version(), Some("TLSv1_2"));
        tls.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0; 7000];
        loop {
            let n = tls.read(&mut buf).await.unwrap();
            if n == 0 {
                break; // tokio-rustls's close_notify
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == data, "TLS 1.2 echo differs");
        rt::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
    });
}

/// Reads an HTTP/1.1 response with a content-length: (head, body).
async fn read_response(tls: &mut netloom::rt::net::TlsStream) -> (String, String) {
    let mut raw = Vec::new();
    let mut buf = [0; 1024];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(raw[..end + 4].to_vec()).unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a content-length");
            if raw.len() >= end + 4 + length {
                let body = String::from_utf8(raw[end + 4..end + 4 + length].to_vec()).unwrap();
                return (head, body);
            }
        }
        let n = tls.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "response cut short: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn hyper_serves_https_on_rt_to_netloom_and_curl() {
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    let cert = localhost_cert();
    let dir = util::TempDir::new("tls-curl");
    let ca = dir.path("ca.pem");
    std::fs::write(&ca, &cert.0).unwrap();
    let acceptor = TlsAcceptor::new(
        TlsServerConfig::from_pem(cert.0.as_bytes(), cert.1.as_bytes())
            .unwrap()
            .alpn(&[b"http/1.1"]),
    )
    .unwrap();
    let rt = Runtime::builder().loops(1).build().unwrap();
    let listener = rt
        .block_on(async { TcpListener::bind("127.0.0.1:0") })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(async move {
        let mut served = 0;
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            assert_eq!(tls.info().alpn_protocol(), Some(&b"http/1.1"[..]));
            let service = service_fn(|req: Request<Incoming>| async move {
                let body = format!("{} {} over TLS", req.method(), req.uri().path());
                Ok::<_, std::convert::Infallible>(Response::new(body))
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
                .unwrap();
            served += 1;
        }
        served
    });

    // netloom's TLS client: two keep-alive requests on one connection.
    let connector = TlsConnector::new(
        TlsClientConfig::from_pem(cert.0.as_bytes())
            .unwrap()
            .alpn(&[b"http/1.1"]),
    )
    .unwrap();
    rt.block_on(async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector.connect("localhost", tcp).await.unwrap();
        for i in 0..2 {
            let request = format!("GET /item/{i} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            tls.write_all(request.as_bytes()).await.unwrap();
            let (head, body) = rt::timeout(Duration::from_secs(10), read_response(&mut tls))
                .await
                .unwrap();
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert_eq!(body, format!("GET /item/{i} over TLS"));
        }
        tls.shutdown().await.unwrap();
    });

    // curl, verifying the certificate for localhost.
    let output = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .arg(format!("https://localhost:{}/from-curl", addr.port()))
        .output()
        .expect("`curl` not found: run .ci/install-tls-tools (apt-get) first");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "GET /from-curl over TLS"
    );

    let served = rt
        .block_on(rt::timeout(Duration::from_secs(10), server))
        .unwrap()
        .unwrap();
    assert_eq!(served, 2);
}
