//! A PROXY protocol header in front of TLS on one address: the header is
//! read first, then the handshake runs on the bytes after it (here the
//! ClientHello arrives in the same write as the header), and `on_open`
//! sees both the client's address and what TLS negotiated. Run with
//! `cargo test --features tls --test proxy_protocol_tls`.
#![cfg(feature = "tls")]

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use netloom::proxy_protocol::{encode, ProxyProtocol};
use netloom::tls::{TlsAcceptor, TlsServerConfig};
use netloom::{Action, Addr, Conn, Engine, Handler, ListenerOptions, Options};

/// Echoes; reports the peer and whether TLS was negotiated at `on_open`.
struct Report(mpsc::Sender<(Addr, bool)>);

impl Handler for Report {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self
            .0
            .send((conn.peer_addr().clone(), conn.tls().is_some()));
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        match conn.write(&data) {
            Ok(_) => Action::None,
            Err(_) => Action::Close,
        }
    }
}

/// An engine on a TLS address (a self-signed certificate for localhost)
/// that expects a PROXY header of `version` first; returns it, its
/// address, what its `on_open` reports, and the certificate's PEM.
fn serve(version: ProxyProtocol) -> (Engine, SocketAddr, mpsc::Receiver<(Addr, bool)>, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    let acceptor = TlsAcceptor::new(
        TlsServerConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let listener = ListenerOptions::new().proxy_protocol(version).tls(acceptor);
    let engine = Engine::builder()
        .bind_with("tcp://127.0.0.1:0", listener)
        .options(Options::default().loops(1))
        .start(Report(tx))
        .expect("engine starts");
    let addr = engine.local_addrs()[0].inet().unwrap();
    (engine, addr, rx, cert_pem)
}

#[test]
fn the_header_comes_before_the_client_hello_and_both_are_honoured() {
    let (engine, addr, rx, cert_pem) = serve(ProxyProtocol::V2);

    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut session =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();

    let client: SocketAddr = "203.0.113.9:61000".parse().unwrap();
    let mut first = encode(ProxyProtocol::V2, Some((client, addr)));
    session.write_tls(&mut first).unwrap(); // the ClientHello, after the header
    let mut tcp = util::connect(addr);
    tcp.write_all(&first).unwrap();
    let mut tls = rustls::StreamOwned::new(session, tcp);
    let payload = util::pattern(3, 50_000);
    tls.write_all(&payload).unwrap();
    let mut echo = vec![0; payload.len()];
    tls.read_exact(&mut echo).expect("echo over TLS");
    assert!(echo == payload, "echoed bytes differ");

    let (peer, negotiated) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("on_open");
    assert_eq!(peer, client);
    assert!(negotiated, "on_open comes after the handshake");
    util::stop(engine);
}

/// Echoes nothing; reports `on_open` on the dialing side.
struct Opened(mpsc::Sender<bool>);

impl Handler for Opened {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.0.send(conn.tls().is_some());
        Action::None
    }
    fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
}

#[test]
fn a_netloom_tls_dialer_sends_the_header_before_its_client_hello() {
    let (engine, addr, rx, cert_pem) = serve(ProxyProtocol::V1);
    let connector = netloom::tls::TlsConnector::new(
        netloom::tls::TlsClientConfig::from_pem(cert_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let (opened_tx, opened_rx) = mpsc::channel();
    let dialer = netloom::Client::start(Opened(opened_tx), Options::default().loops(1)).unwrap();
    let client: SocketAddr = "203.0.113.10:62000".parse().unwrap();
    let header = encode(ProxyProtocol::V1, Some((client, addr)));
    dialer
        .dial_tls_with_proxy_header(
            &format!("tcp://{addr}"),
            &connector,
            "localhost",
            header,
            (),
        )
        .unwrap();
    let wait = std::time::Duration::from_secs(10);
    assert_eq!(
        opened_rx.recv_timeout(wait),
        Ok(true),
        "the dialer's handshake"
    );
    let (peer, negotiated) = rx.recv_timeout(wait).expect("the server's on_open");
    assert_eq!(peer, client);
    assert!(negotiated);
    dialer.stop();
    dialer.wait().unwrap();
    util::stop(engine);
}
