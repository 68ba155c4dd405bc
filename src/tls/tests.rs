//! The session layer in memory: a client and a server session pumping
//! bytes between each other, no sockets.

use super::*;
use crate::Error;

/// A self-signed certificate for `names`: (cert PEM, key PEM).
fn self_signed(names: &[&str]) -> (String, String) {
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let c = rcgen::generate_simple_self_signed(names).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}

/// A CA and a certificate it issued for `name`: (CA PEM, leaf PEM, leaf key PEM).
fn ca_and_leaf(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn server_config(cert: &(String, String)) -> TlsServerConfig {
    TlsServerConfig::from_pem(cert.0.as_bytes(), cert.1.as_bytes()).unwrap()
}

fn connector(roots: &str) -> TlsConnector {
    TlsConnector::new(TlsClientConfig::from_pem(roots.as_bytes()).unwrap()).unwrap()
}

/// One side of an in-memory connection.
struct End {
    session: TlsSession,
    inbound: Vec<u8>,
    outbound: Vec<u8>,
    plaintext: Vec<u8>,
    records: usize,
}

impl std::fmt::Debug for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("End")
    }
}

impl End {
    fn new(session: TlsSession) -> End {
        End {
            session,
            inbound: Vec::new(),
            outbound: Vec::new(),
            plaintext: Vec::new(),
            records: 0,
        }
    }

    /// Appends `bytes` to the inbound buffer `step` bytes at a time,
    /// processing after each step and discarding what was consumed.
    fn feed(&mut self, bytes: &[u8], step: usize) -> crate::Result<()> {
        let End {
            session,
            inbound,
            outbound,
            plaintext,
            records,
        } = self;
        let mut deliver = |p: &[u8]| {
            plaintext.extend_from_slice(p);
            *records += 1;
        };
        if bytes.is_empty() {
            let consumed = session.read_tls(inbound, outbound, &mut deliver)?;
            inbound.drain(..consumed);
        }
        for chunk in bytes.chunks(step) {
            inbound.extend_from_slice(chunk);
            let consumed = session.read_tls(inbound, outbound, &mut deliver)?;
            inbound.drain(..consumed);
        }
        Ok(())
    }
}

/// Moves ciphertext both ways until neither side has any to send.
fn exchange(a: &mut End, b: &mut End, step: usize) -> crate::Result<()> {
    for _ in 0..1000 {
        let to_b = std::mem::take(&mut a.outbound);
        let to_a = std::mem::take(&mut b.outbound);
        if to_a.is_empty() && to_b.is_empty() {
            return Ok(());
        }
        b.feed(&to_b, step)?;
        a.feed(&to_a, step)?;
    }
    panic!("the sessions never went quiet");
}

/// A client (as `name`) and a server session, handshaken.
fn connected(
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
    name: &str,
    step: usize,
) -> crate::Result<(End, End)> {
    let mut client = End::new(connector.session(name)?);
    let mut server = End::new(acceptor.session()?);
    client.feed(&[], step)?; // ClientHello
    exchange(&mut client, &mut server, step)?;
    assert!(!client.session.is_handshaking() && !server.session.is_handshaking());
    Ok((client, server))
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn localhost() -> (TlsAcceptor, TlsConnector) {
    let cert = self_signed(&["localhost"]);
    (
        TlsAcceptor::new(server_config(&cert)).unwrap(),
        connector(&cert.0),
    )
}

#[test]
fn data_crosses_byte_exact_both_ways() {
    let (acceptor, connector) = localhost();
    let (mut client, mut server) =
        connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    let up = pattern(1, 100_000);
    let down = pattern(2, 70_001);
    assert_eq!(
        client.session.write(&up, &mut client.outbound).unwrap(),
        up.len()
    );
    assert_eq!(
        server.session.write(&down, &mut server.outbound).unwrap(),
        down.len()
    );
    exchange(&mut client, &mut server, usize::MAX).unwrap();
    assert!(server.plaintext == up);
    assert!(client.plaintext == down);
    // 16 KiB per record at most.
    assert_eq!(server.records, up.len().div_ceil(STAGE_LIMIT));

    let (server_info, client_info) = (server.session.info(), client.session.info());
    assert_eq!(server_info.server_name(), Some("localhost"));
    assert_eq!(client_info.server_name(), Some("localhost"));
    assert_eq!(server_info.version(), Some("TLSv1_3"));
    assert!(client_info.cipher_suite().unwrap().starts_with("TLS13_"));
    assert_eq!(client_info.peer_certificates().len(), 1);
    assert!(server_info.peer_certificates().is_empty());
    assert!(!client_info.resumed());
}

#[test]
fn ciphertext_fed_one_byte_at_a_time() {
    let (acceptor, connector) = localhost();
    let (mut client, mut server) = connected(&acceptor, &connector, "localhost", 1).unwrap();
    let up = pattern(3, 20_000);
    client.session.write(&up, &mut client.outbound).unwrap();
    exchange(&mut client, &mut server, 1).unwrap();
    assert!(server.plaintext == up);
    // Nothing is held back: every complete record was consumed.
    assert!(server.inbound.is_empty() && client.inbound.is_empty());
}

#[test]
fn data_written_during_the_handshake_goes_out_after_it() {
    let (acceptor, connector) = localhost();
    let mut client = End::new(connector.session("localhost").unwrap());
    let mut server = End::new(acceptor.session().unwrap());
    assert_eq!(
        client
            .session
            .write(b"early", &mut client.outbound)
            .unwrap(),
        5
    );
    assert_eq!(client.session.staged_len(), 5);
    client.feed(&[], 1).unwrap();
    exchange(&mut client, &mut server, 7).unwrap();
    assert_eq!(server.plaintext, b"early");
    assert_eq!(client.session.staged_len(), 0);
}

#[test]
fn small_writes_coalesce_into_one_record() {
    let (acceptor, connector) = localhost();
    let (mut client, mut server) =
        connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    // A 4-byte frame header and its body: one record, not two.
    assert_eq!(client.session.stage(&5u32.to_be_bytes()), 4);
    assert_eq!(client.session.stage(b"hello"), 5);
    assert!(client.outbound.is_empty(), "staging seals nothing");
    client.session.flush(&mut client.outbound).unwrap();
    exchange(&mut client, &mut server, usize::MAX).unwrap();
    assert_eq!(server.records, 1);
    assert_eq!(server.plaintext, b"\0\0\0\x05hello");

    // Written one by one, they are two records.
    client.session.write(b"head", &mut client.outbound).unwrap();
    client.session.write(b"body", &mut client.outbound).unwrap();
    exchange(&mut client, &mut server, usize::MAX).unwrap();
    assert_eq!(server.records, 3);

    // The staging area is bounded.
    let big = pattern(4, STAGE_LIMIT + 10);
    assert_eq!(client.session.stage(&big), STAGE_LIMIT);
    assert_eq!(client.session.stage(&big), 0);
    client.session.flush(&mut client.outbound).unwrap();
    assert_eq!(client.session.stage(&big[STAGE_LIMIT..]), 10);
    client.session.flush(&mut client.outbound).unwrap();
    exchange(&mut client, &mut server, usize::MAX).unwrap();
    assert!(server.plaintext[17..] == big[..]);
}

#[test]
fn close_notify_is_an_orderly_end_and_a_bare_fin_is_truncation() {
    let (acceptor, connector) = localhost();
    let (mut client, mut server) =
        connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    client
        .session
        .write(b"last words", &mut client.outbound)
        .unwrap();
    client.session.close(&mut client.outbound).unwrap();
    assert!(matches!(
        client.session.write(b"more", &mut client.outbound),
        Err(Error::ConnClosed)
    ));
    assert!(matches!(
        server.session.end_of_stream(),
        Err(Error::TlsTruncated)
    ));
    exchange(&mut client, &mut server, usize::MAX).unwrap();
    assert_eq!(server.plaintext, b"last words");
    assert!(server.session.peer_closed());
    server.session.end_of_stream().unwrap();
    // The server may still answer, then close too.
    server.session.write(b"bye", &mut server.outbound).unwrap();
    server.session.close(&mut server.outbound).unwrap();
    exchange(&mut client, &mut server, usize::MAX).unwrap();
    assert_eq!(client.plaintext, b"bye");
    assert!(client.session.peer_closed());
}

#[test]
fn garbage_is_a_corrupt_record_error_with_an_alert() {
    let (acceptor, _) = localhost();
    let mut server = End::new(acceptor.session().unwrap());
    let err = server
        .feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", usize::MAX)
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::CorruptRecord(_))),
        "{err:?}"
    );
    assert!(!server.outbound.is_empty(), "a fatal alert for the peer");
    assert_eq!(server.outbound[0], 0x15, "an alert record");
    let again = server.feed(b"x", 1).unwrap_err();
    assert!(
        matches!(again, Error::Tls(TlsError::CorruptRecord(_))),
        "{again:?}"
    );
}

#[test]
fn an_oversized_record_is_refused_from_its_header() {
    let (acceptor, connector) = localhost();
    let (_client, mut server) = connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    // Application data announcing 65,535 bytes: more than TLS allows, so
    // it is refused before any of it is buffered.
    let err = server
        .feed(&[0x17, 0x03, 0x03, 0xff, 0xff], usize::MAX)
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::CorruptRecord(_))),
        "{err:?}"
    );
}

#[test]
fn a_tampered_record_does_not_decrypt() {
    let (acceptor, connector) = localhost();
    let (mut client, mut server) =
        connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    client
        .session
        .write(b"integrity", &mut client.outbound)
        .unwrap();
    let mut record = std::mem::take(&mut client.outbound);
    record[8] ^= 1;
    let err = server.feed(&record, usize::MAX).unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::CorruptRecord(_))),
        "{err:?}"
    );
}

#[test]
fn sni_selects_the_certificate() {
    let default = self_signed(&["default.test"]);
    let b = self_signed(&["b.test"]);
    let acceptor = TlsAcceptor::new(
        server_config(&default)
            .sni_certificate("B.test", b.0.as_bytes(), b.1.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let roots = format!("{}{}", default.0, b.0);
    let connector = connector(&roots);

    let (client, server) = connected(&acceptor, &connector, "b.test", 5).unwrap();
    assert_eq!(server.session.info().server_name(), Some("b.test"));
    let b_der = rustls::pki_types::CertificateDer::from_pem_slice(b.0.as_bytes()).unwrap();
    assert_eq!(client.session.info().peer_certificates()[0], b_der.as_ref());

    let (client, _) = connected(&acceptor, &connector, "default.test", usize::MAX).unwrap();
    assert_ne!(client.session.info().peer_certificates()[0], b_der.as_ref());

    // A name the server has no certificate for gets the default one, which
    // the client rejects.
    let err = connected(&acceptor, &connector, "c.test", usize::MAX).unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::Certificate(_))),
        "{err:?}"
    );

    // The whole server flight in one go, refused at its certificate (the
    // messages after it are left unprocessed): the session then fails
    // every call with the same error, and rustls is not touched again.
    let mut client = End::new(connector.session("c.test").unwrap());
    let mut server = End::new(acceptor.session().unwrap());
    client.feed(&[], usize::MAX).unwrap();
    server
        .feed(&std::mem::take(&mut client.outbound), usize::MAX)
        .unwrap();
    let flight = std::mem::take(&mut server.outbound);
    let err = client.feed(&flight, usize::MAX).unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::Certificate(_))),
        "{err:?}"
    );
    let same = |r: crate::Result<()>| matches!(r, Err(Error::Tls(TlsError::Certificate(_))));
    assert!(same(
        client.session.write(b"x", &mut client.outbound).map(drop)
    ));
    assert!(same(client.session.flush(&mut client.outbound)));
    assert!(same(client.feed(b"more", 1)));
    client.session.close(&mut client.outbound).unwrap();
}

#[test]
fn alpn_agrees_or_fails_typed() {
    let cert = self_signed(&["localhost"]);
    let acceptor = TlsAcceptor::new(server_config(&cert).alpn(&[b"h2", b"http/1.1"])).unwrap();
    let client_with = |protocols: &[&[u8]]| {
        TlsConnector::new(
            TlsClientConfig::from_pem(cert.0.as_bytes())
                .unwrap()
                .alpn(protocols),
        )
        .unwrap()
    };
    let (client, server) = connected(
        &acceptor,
        &client_with(&[b"http/1.1"]),
        "localhost",
        usize::MAX,
    )
    .unwrap();
    assert_eq!(
        client.session.info().alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(
        server.session.info().alpn_protocol(),
        Some(&b"http/1.1"[..])
    );

    let err = connected(
        &acceptor,
        &client_with(&[b"spdy/3"]),
        "localhost",
        usize::MAX,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::NoApplicationProtocol)),
        "{err:?}"
    );
}

#[test]
fn mutual_tls_accepts_the_ca_s_clients_only() {
    let server_cert = self_signed(&["localhost"]);
    let (ca, leaf, leaf_key) = ca_and_leaf("client-1");
    let required = TlsAcceptor::new(
        server_config(&server_cert)
            .client_auth_required(ca.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let with_cert = TlsConnector::new(
        TlsClientConfig::from_pem(server_cert.0.as_bytes())
            .unwrap()
            .client_certificate(leaf.as_bytes(), leaf_key.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let (_, server) = connected(&required, &with_cert, "localhost", usize::MAX).unwrap();
    let leaf_der = rustls::pki_types::CertificateDer::from_pem_slice(leaf.as_bytes()).unwrap();
    assert_eq!(
        server.session.info().peer_certificates()[0],
        leaf_der.as_ref()
    );

    // No certificate: refused.
    let without = connector(&server_cert.0);
    let err = connected(&required, &without, "localhost", usize::MAX).unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::Certificate(_))),
        "{err:?}"
    );

    // A certificate from another issuer: refused.
    let stranger = self_signed(&["client-2"]);
    let with_stranger = TlsConnector::new(
        TlsClientConfig::from_pem(server_cert.0.as_bytes())
            .unwrap()
            .client_certificate(stranger.0.as_bytes(), stranger.1.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let err = connected(&required, &with_stranger, "localhost", usize::MAX).unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::Certificate(_))),
        "{err:?}"
    );

    // Optional: no certificate is let in, and shows as none.
    let optional = TlsAcceptor::new(
        server_config(&server_cert)
            .client_auth_optional(ca.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let (_, server) = connected(&optional, &without, "localhost", usize::MAX).unwrap();
    assert!(server.session.info().peer_certificates().is_empty());
}

#[test]
fn a_second_connection_resumes_the_first_session() {
    let (acceptor, connector) = localhost();
    let (mut client, mut server) =
        connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    // The client takes in the server's tickets with the first data.
    server.session.write(b"hi", &mut server.outbound).unwrap();
    exchange(&mut client, &mut server, usize::MAX).unwrap();
    assert_eq!(client.plaintext, b"hi");
    assert!(!client.session.info().resumed());

    let (client, server) = connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    assert!(client.session.info().resumed());
    assert!(server.session.info().resumed());
    // Resumed sessions still know their peer.
    assert_eq!(client.session.info().peer_certificates().len(), 1);
}

#[test]
fn reload_affects_new_handshakes_only() {
    let first = self_signed(&["localhost"]);
    let second = self_signed(&["localhost"]);
    let acceptor = TlsAcceptor::new(server_config(&first).session_tickets(false)).unwrap();
    let connector = connector(&format!("{}{}", first.0, second.0));
    let der = |pem: &str| {
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    };

    let (mut old_client, mut old_server) =
        connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    // A handshake already under way keeps the configuration it started with.
    let mut pending_client = End::new(connector.session("localhost").unwrap());
    let mut pending_server = End::new(acceptor.clone().session().unwrap());
    pending_client.feed(&[], 1).unwrap();

    acceptor.reload(server_config(&second)).unwrap();

    let (new_client, _) = connected(&acceptor, &connector, "localhost", usize::MAX).unwrap();
    assert_eq!(
        new_client.session.info().peer_certificates()[0],
        der(&second.0)
    );

    exchange(&mut pending_client, &mut pending_server, usize::MAX).unwrap();
    assert_eq!(
        pending_client.session.info().peer_certificates()[0],
        der(&first.0)
    );

    // The established session carries on.
    old_client
        .session
        .write(b"still here", &mut old_client.outbound)
        .unwrap();
    exchange(&mut old_client, &mut old_server, usize::MAX).unwrap();
    assert_eq!(old_server.plaintext, b"still here");
    assert_eq!(
        old_client.session.info().peer_certificates()[0],
        der(&first.0)
    );
}

#[test]
fn a_bad_configuration_is_a_config_error() {
    let a = self_signed(&["localhost"]);
    let b = self_signed(&["localhost"]);
    // b's key does not belong to a's certificate.
    let err = TlsServerConfig::from_pem(a.0.as_bytes(), b.1.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::Tls(TlsError::Config(_))), "{err:?}");
    let err = TlsServerConfig::from_pem(a.0.as_bytes(), b"no key").unwrap_err();
    assert!(matches!(err, Error::Tls(TlsError::Config(_))), "{err:?}");
    let (acceptor, connector) = localhost();
    drop(acceptor);
    assert!(matches!(
        connector.session("not a name!"),
        Err(Error::Tls(TlsError::Config(_)))
    ));
}

#[test]
fn the_sni_name_is_read_from_a_whole_client_hello_only() {
    let (_, connector) = localhost();
    let mut client = End::new(connector.session("Example.TEST").unwrap());
    client.feed(&[], 1).unwrap();
    let hello = std::mem::take(&mut client.outbound);
    assert_eq!(
        session::client_hello_server_name(&hello).as_deref(),
        Some("example.test")
    );
    // Until the whole record is there, nothing (the next read looks again).
    for cut in 0..hello.len() {
        assert_eq!(
            session::client_hello_server_name(&hello[..cut]),
            None,
            "cut at {cut}"
        );
    }
    // An IP address is not sent as SNI.
    let mut by_ip = End::new(connector.session("127.0.0.1").unwrap());
    by_ip.feed(&[], 1).unwrap();
    assert_eq!(session::client_hello_server_name(&by_ip.outbound), None);
    // Application data is not a ClientHello.
    assert_eq!(
        session::client_hello_server_name(&[0x17, 3, 3, 0, 1, 0]),
        None
    );
}
