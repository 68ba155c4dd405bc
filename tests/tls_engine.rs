//! TLS in the callback engine: plain and TLS listeners side by side,
//! `on_open` after the handshake with what it negotiated, byte-exact echo,
//! `close_notify` versus truncation, hostile peers (garbage, a huge record
//! length, a trickled handshake, a peer that never reads), hot reload, and
//! the client side (`Client::dial_tls_wait`, `Conn::dial_tls`,
//! `Client::adopt_tls`). The independent client is rustls's own blocking
//! stream. Run with `cargo test --features tls --test tls_engine`.
#![cfg(feature = "tls")]

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netloom::tls::{TlsAcceptor, TlsClientConfig, TlsConnector, TlsServerConfig};
use netloom::{Action, Client, Conn, Engine, Error, Handler, LoopStats, Options, TlsError};

/// A self-signed certificate for localhost: (cert PEM, key PEM).
fn localhost_cert() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn server_config(cert: &(String, String)) -> TlsServerConfig {
    TlsServerConfig::from_pem(cert.0.as_bytes(), cert.1.as_bytes()).unwrap()
}

fn connector_for(cert: &(String, String)) -> TlsConnector {
    TlsConnector::new(TlsClientConfig::from_pem(cert.0.as_bytes()).unwrap()).unwrap()
}

/// What the server saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// on_open: SNI, ALPN, version present.
    Open(Option<String>, Option<Vec<u8>>, bool),
    Eof,
    /// on_close with the error's text (None: orderly).
    Close(Option<String>),
}

/// Echoes every byte and records the lifecycle; tracks the largest backlog
/// it ever saw.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    errors: Mutex<Vec<String>>,
    max_backlog: Mutex<usize>,
    /// Replies to on_eof: keep the connection open to answer.
    eof_reply: Option<&'static [u8]>,
}

impl Handler for Recorder {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let seen = match conn.tls() {
            Some(tls) => Seen::Open(
                tls.server_name().map(str::to_string),
                tls.alpn_protocol().map(<[u8]>::to_vec),
                tls.version().is_some(),
            ),
            None => Seen::Open(None, None, false),
        };
        self.seen.lock().unwrap().push(seen);
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let (inbound, mut out) = conn.split();
        let n = inbound.len();
        let written = out.write(inbound);
        conn.discard(n);
        let mut max = self.max_backlog.lock().unwrap();
        *max = (*max).max(conn.outbound_len());
        if written.is_err() {
            return Action::Close;
        }
        Action::None
    }
    fn on_eof(&self, conn: &mut Conn<'_, ()>) -> Action {
        self.seen.lock().unwrap().push(Seen::Eof);
        if let Some(reply) = self.eof_reply {
            let _ = conn.write(reply);
        }
        Action::Close
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        let text = err.map(|e| format!("{e:?}"));
        self.seen.lock().unwrap().push(Seen::Close(text.clone()));
        if let Some(t) = text {
            self.errors.lock().unwrap().push(t);
        }
        Action::None
    }
}

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn wait_closes(&self, n: usize) -> Vec<Seen> {
        let closed = util::wait_until(Duration::from_secs(10), || {
            self.seen()
                .iter()
                .filter(|s| matches!(s, Seen::Close(_)))
                .count()
                >= n
        });
        assert!(closed, "{n} on_close within 10 s: {:?}", self.seen());
        self.seen()
    }
}

/// An engine serving `handler` on a plain and a TLS address (in that order).
fn start_mixed(
    handler: Arc<Recorder>,
    acceptor: TlsAcceptor,
    options: Options,
) -> (Engine, SocketAddr, SocketAddr) {
    let engine = Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .bind_tls("tcp://127.0.0.1:0", acceptor)
        .options(options.loops(2))
        .start(handler)
        .expect("engine starts");
    let plain = engine.local_addrs()[0].inet().unwrap();
    let tls = engine.local_addrs()[1].inet().unwrap();
    (engine, plain, tls)
}

type RustlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// rustls's blocking client, trusting `cert`, offering `alpn`.
fn rustls_connect(addr: SocketAddr, cert: &(String, String), alpn: &[&[u8]]) -> RustlsStream {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(cert.0.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = util::connect(addr);
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn plain_and_tls_listeners_echo_byte_for_byte_and_on_open_sees_the_handshake() {
    let cert = localhost_cert();
    let acceptor = TlsAcceptor::new(server_config(&cert).alpn(&[b"echo/1"])).unwrap();
    let rec = Arc::new(Recorder::default());
    let (engine, plain_addr, tls_addr) = start_mixed(rec.clone(), acceptor, Options::default());

    let plain = util::connect(plain_addr);
    util::echo_roundtrip(&plain, &util::pattern(1, 100_000));

    let mut tls = rustls_connect(tls_addr, &cert, &[b"echo/1"]);
    let mut buf = vec![0; 64 * 1024];
    let mut got = Vec::new();
    let mut read_until = |tls: &mut RustlsStream, got: &mut Vec<u8>, target: usize| {
        while got.len() < target {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "echo ended early at {}", got.len());
            got.extend_from_slice(&buf[..n]);
        }
    };
    // Many small writes, then large ones: 1 MiB in all, read back whole.
    // rustls's stream is not split, so reads keep up between writes.
    let mut sent = Vec::new();
    for i in 0..64 {
        let piece = util::pattern(i, 100 + i as usize);
        tls.write_all(&piece).unwrap();
        sent.extend_from_slice(&piece);
    }
    let large = util::pattern(99, (1 << 20) - sent.len());
    for chunk in large.chunks(32 * 1024) {
        tls.write_all(chunk).unwrap();
        sent.extend_from_slice(chunk);
        read_until(&mut tls, &mut got, sent.len().saturating_sub(64 * 1024));
    }
    read_until(&mut tls, &mut got, sent.len());
    assert!(got == sent, "echoed plaintext differs");
    // Plaintext is counted once the loop settles the connection; the
    // socket bytes of both connections carry the TLS records' overhead.
    let mib = 1 << 20;
    let counted = util::wait_until(Duration::from_secs(10), || {
        engine.stats().total().tls_plaintext_written == mib
    });
    let stats = engine.stats().total();
    assert!(counted, "{stats:?}");
    assert_eq!(stats.tls_plaintext_read, mib);
    assert!(stats.bytes_read > 100_000 + mib, "{stats:?}");

    // An orderly end: close_notify, then FIN; the server answers in kind.
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    tls.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let n = tls
        .read(&mut buf)
        .expect("the server's close_notify, not a truncation");
    assert_eq!(n, 0);
    drop(plain);

    let seen = rec.wait_closes(2);
    assert!(
        seen.contains(&Seen::Open(
            Some("localhost".into()),
            Some(b"echo/1".to_vec()),
            true
        )),
        "on_open saw SNI, ALPN and the version: {seen:?}"
    );
    assert!(
        seen.contains(&Seen::Open(None, None, false)),
        "the plain one"
    );
    assert!(
        seen.contains(&Seen::Eof),
        "close_notify is an end of stream"
    );
    assert_eq!(
        seen.iter().filter(|s| **s == Seen::Close(None)).count(),
        2,
        "both orderly: {seen:?}"
    );
    util::stop(engine);
}

#[test]
fn a_fin_without_close_notify_is_a_truncation_reported_after_on_eof() {
    let cert = localhost_cert();
    let acceptor = TlsAcceptor::new(server_config(&cert)).unwrap();
    let rec = Arc::new(Recorder {
        eof_reply: Some(b"bye"),
        ..Recorder::default()
    });
    let (engine, _, tls_addr) = start_mixed(rec.clone(), acceptor, Options::default());
    let mut tls = rustls_connect(tls_addr, &cert, &[]);
    tls.write_all(b"hello").unwrap();
    let mut buf = [0; 5];
    tls.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    // FIN without close_notify (curl and many HTTP clients end this way).
    tls.sock.shutdown(std::net::Shutdown::Write).unwrap();
    // The handler still answers in on_eof; its reply and close_notify arrive.
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"bye");
    let seen = rec.wait_closes(1);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[1], Seen::Eof);
    assert_eq!(seen[2], Seen::Close(Some("TlsTruncated".into())));
    util::stop(engine);
}

/// Sends `bytes` to the TLS address and returns what on_close reported
/// (the connection never opened), the server's bytes until it closed, and
/// the engine's counters once the close is counted.
fn hostile(bytes: &[u8], options: Options) -> (Vec<Seen>, Vec<u8>, Duration, LoopStats) {
    let cert = localhost_cert();
    let acceptor = TlsAcceptor::new(server_config(&cert)).unwrap();
    let rec = Arc::new(Recorder::default());
    let (engine, _, tls_addr) = start_mixed(rec.clone(), acceptor, options);
    let mut raw = util::connect(tls_addr);
    let started = Instant::now();
    raw.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer); // the alert, then FIN (or a reset)
    let seen = rec.wait_closes(1);
    let counted = util::wait_until(Duration::from_secs(10), || {
        engine.stats().total().closed == 1
    });
    assert!(counted, "the close is counted: {:?}", engine.stats());
    let stats = engine.stats().total();
    util::stop(engine);
    (seen, answer, started.elapsed(), stats)
}

#[test]
fn garbage_gets_an_alert_and_a_typed_error_without_on_open() {
    let (seen, answer, _, stats) =
        hostile(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Options::default());
    assert_eq!((stats.accepted, stats.open_connections), (1, 0));
    assert_eq!(stats.errors.tls, 1, "{:?}", stats.errors);
    assert_eq!(seen.len(), 1, "no on_open: {seen:?}");
    let Seen::Close(Some(err)) = &seen[0] else {
        panic!("an error: {seen:?}")
    };
    assert!(err.contains("Tls(CorruptRecord"), "{err}");
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert record: {answer:?}"
    );
}

#[test]
fn a_huge_record_length_is_refused_before_any_buffering() {
    // A handshake record header announcing 65,535 bytes, then 64 KiB of
    // filler: refused at the header, nothing waits for the body.
    let mut bytes = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    bytes.extend(std::iter::repeat_n(0u8, 1024));
    let (seen, _, _, _) = hostile(&bytes, Options::default());
    let Seen::Close(Some(err)) = &seen[0] else {
        panic!("an error: {seen:?}")
    };
    assert!(err.contains("Tls(CorruptRecord"), "{err}");
}

#[test]
fn a_trickled_handshake_is_closed_by_the_handshake_timeout() {
    let cert = localhost_cert();
    let acceptor = TlsAcceptor::new(server_config(&cert)).unwrap();
    let rec = Arc::new(Recorder::default());
    let options = Options::default().tls_handshake_timeout(Duration::from_millis(600));
    let (engine, _, tls_addr) = start_mixed(rec.clone(), acceptor, options);
    let mut raw = util::connect(tls_addr);
    let started = Instant::now();
    // The start of a ClientHello, one byte every 50 ms.
    let hello = [
        0x16u8, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    let mut cut_off = false;
    for (i, b) in hello.iter().cycle().take(200).enumerate() {
        if raw.write_all(&[*b]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if i > 10 && rec.seen().len() == 1 {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the server closed the trickling peer");
    let seen = rec.wait_closes(1);
    assert_eq!(seen, vec![Seen::Close(Some("TlsHandshakeTimeout".into()))]);
    let counted = util::wait_until(Duration::from_secs(10), || {
        engine.stats().total().errors.timeout == 1
    });
    assert!(counted, "counted as a timeout: {:?}", engine.stats());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(8),
        "closed by the timeout, not before: {elapsed:?}"
    );
    util::stop(engine);
}

#[test]
fn a_peer_that_sends_and_never_reads_cannot_grow_the_backlog() {
    let cert = localhost_cert();
    let acceptor = TlsAcceptor::new(server_config(&cert)).unwrap();
    let rec = Arc::new(Recorder::default());
    let (high, low) = (256 * 1024, 64 * 1024);
    let options = Options::default()
        .high_water(high)
        .low_water(low)
        .send_buffer_size(Some(64 * 1024));
    let (engine, _, tls_addr) = start_mixed(rec.clone(), acceptor, options);
    let mut tls = rustls_connect(tls_addr, &cert, &[]);
    tls.sock
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket2::SockRef::from(&tls.sock)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    let chunk = util::pattern(7, 16 * 1024);
    let mut written = 0usize;
    let started = Instant::now();
    // Write until the server stops reading (our writes time out), at most
    // 64 MiB or 20 s.
    while written < 64 << 20 && started.elapsed() < Duration::from_secs(20) {
        match tls.write_all(&chunk) {
            Ok(()) => written += chunk.len(),
            Err(_) => break,
        }
    }
    assert!(
        written < 64 << 20,
        "the server kept reading a peer that never reads"
    );
    let max = *rec.max_backlog.lock().unwrap();
    eprintln!("a peer that never reads: {written} bytes accepted, largest backlog {max}");
    // One read's records more than the high-water mark at most.
    assert!(
        max <= high + 128 * 1024,
        "backlog {max} grew past the high-water mark {high}"
    );
    drop(tls);
    rec.wait_closes(1);
    util::stop(engine);
}

#[test]
fn hot_reload_changes_the_certificate_of_new_handshakes_only() {
    let first = localhost_cert();
    let second = localhost_cert();
    let acceptor = TlsAcceptor::new(server_config(&first)).unwrap();
    let rec = Arc::new(Recorder::default());
    let (engine, _, tls_addr) = start_mixed(rec.clone(), acceptor.clone(), Options::default());
    let mut old = rustls_connect(tls_addr, &first, &[]);
    old.write_all(b"a").unwrap();
    let mut one = [0; 1];
    old.read_exact(&mut one).unwrap();
    acceptor.reload(server_config(&second)).unwrap();
    // The established connection goes on; a new one needs the new cert.
    old.write_all(b"b").unwrap();
    old.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"b");
    let mut new = rustls_connect(tls_addr, &second, &[]);
    new.write_all(b"c").unwrap();
    new.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"c");
    let mut stale = rustls_connect(tls_addr, &first, &[]);
    assert!(stale
        .write_all(b"d")
        .and_then(|()| stale.read(&mut one))
        .is_err());
    drop((old, new, stale));
    rec.wait_closes(3);
    util::stop(engine);
}

/// The client side: echoes what the server sends back into a shared log.
#[derive(Default)]
struct Collector {
    got: Mutex<Vec<u8>>,
    opened_with: Mutex<Vec<Option<String>>>,
    closed: Mutex<Vec<Option<String>>>,
    /// Dial this TLS address from on_open of a plain connection.
    dial_from_callback: Mutex<Option<(SocketAddr, TlsConnector)>>,
    /// TLS connections greet from on_open.
    greet: Mutex<bool>,
}

impl Handler for Collector {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let version = conn.tls().and_then(|t| t.version()).map(str::to_string);
        self.opened_with.lock().unwrap().push(version);
        if conn.tls().is_none() {
            if let Some((addr, connector)) = self.dial_from_callback.lock().unwrap().take() {
                conn.dial_tls(addr, None, &connector, "localhost", ())
                    .unwrap();
            }
        } else if *self.greet.lock().unwrap() {
            conn.write(b"greetings").unwrap();
        }
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        self.got.lock().unwrap().extend_from_slice(&data);
        Action::None
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        self.closed
            .lock()
            .unwrap()
            .push(err.map(|e| format!("{e:?}")));
        Action::None
    }
}

#[test]
fn the_client_dials_adopts_and_writes_through_handles_over_tls() {
    let cert = localhost_cert();
    let acceptor = TlsAcceptor::new(server_config(&cert)).unwrap();
    let rec = Arc::new(Recorder::default());
    let (engine, plain_addr, tls_addr) = start_mixed(rec.clone(), acceptor, Options::default());
    let connector = connector_for(&cert);

    let collector = Arc::new(Collector::default());
    let client = Client::start(collector.clone(), Options::default().loops(1)).unwrap();
    let handle = client
        .dial_tls_wait(
            &tls_addr.to_string(),
            &connector,
            "localhost",
            (),
            Duration::from_secs(5),
        )
        .expect("the handshake completes");
    let payload = util::pattern(3, 300_000);
    for piece in payload.chunks(10_000) {
        handle.async_write(piece.to_vec()).unwrap();
    }
    let echoed = util::wait_until(Duration::from_secs(10), || {
        collector.got.lock().unwrap().len() >= payload.len()
    });
    assert!(echoed, "the echo came back");
    assert!(*collector.got.lock().unwrap() == payload, "byte for byte");
    assert_eq!(
        collector.opened_with.lock().unwrap()[0].as_deref(),
        Some("TLSv1_3"),
        "on_open after the handshake"
    );
    handle.close().unwrap();
    assert!(util::wait_until(Duration::from_secs(10), || {
        collector.closed.lock().unwrap().len() == 1
    }));
    assert_eq!(collector.closed.lock().unwrap()[0], None, "orderly");
    collector.got.lock().unwrap().clear();

    // From a callback: the plain connection's on_open dials TLS on its loop.
    *collector.greet.lock().unwrap() = true;
    *collector.dial_from_callback.lock().unwrap() = Some((tls_addr, connector.clone()));
    client.dial(&plain_addr.to_string(), ()).unwrap();
    // Adopting a connected socket.
    client
        .adopt_tls(
            TcpStream::connect(tls_addr).unwrap(),
            &connector,
            "localhost",
        )
        .unwrap();
    let expected = b"greetings".len() * 2;
    let both = util::wait_until(Duration::from_secs(10), || {
        collector.got.lock().unwrap().len() >= expected
    });
    assert!(both, "both TLS connections echoed their greeting");
    assert_eq!(
        *collector.got.lock().unwrap(),
        b"greetingsgreetings".to_vec()
    );

    // TLS over a Unix domain socket, on an engine of its own.
    let dir = util::TempDir::new("tls-unix");
    let unix = format!("unix://{}", dir.path("tls.sock").display());
    let unix_engine = Engine::builder()
        .bind_tls(&unix, TlsAcceptor::new(server_config(&cert)).unwrap())
        .options(Options::default().loops(1))
        .start(Arc::new(Recorder::default()))
        .unwrap();
    *collector.greet.lock().unwrap() = false;
    collector.got.lock().unwrap().clear();
    let over_unix = client
        .dial_tls_wait(&unix, &connector, "localhost", (), Duration::from_secs(5))
        .expect("the handshake over a Unix socket completes");
    let payload = util::pattern(4, 100_000);
    over_unix.async_write(payload.clone()).unwrap();
    assert!(util::wait_until(Duration::from_secs(10), || {
        collector.got.lock().unwrap().len() >= payload.len()
    }));
    assert!(
        *collector.got.lock().unwrap() == payload,
        "byte for byte over Unix"
    );
    util::stop(unix_engine);

    // A server the client does not trust: only on_close, with a typed error.
    let stranger = localhost_cert();
    let err = client
        .dial_tls_wait(
            &tls_addr.to_string(),
            &connector_for(&stranger),
            "localhost",
            (),
            Duration::from_secs(5),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::Certificate(_))),
        "{err:?}"
    );
    client.stop();
    client.wait().unwrap();
    util::stop(engine);
}

/// Echoes length-prefixed frames: the codec sees plaintext.
struct FrameEcho;

impl netloom::FrameHandler for FrameEcho {
    type Codec = netloom::codec::LengthFieldCodec;
    type Context = ();
    fn new_codec(&self) -> Self::Codec {
        netloom::codec::LengthFieldCodec::u32_be(1 << 20).unwrap()
    }
    fn on_frame(&self, conn: &mut netloom::FrameConn<'_, Self>, frame: &[u8]) -> Action {
        if conn.send_frame(frame).is_err() {
            return Action::Close;
        }
        Action::None
    }
}

#[test]
fn framed_handlers_decode_plaintext_frames_over_tls() {
    let cert = localhost_cert();
    let engine = Engine::builder()
        .bind_tls(
            "tcp://127.0.0.1:0",
            TlsAcceptor::new(server_config(&cert)).unwrap(),
        )
        .options(Options::default().loops(1))
        .start(netloom::Framed(FrameEcho))
        .unwrap();
    let addr = engine.local_addrs()[0].inet().unwrap();
    let mut tls = rustls_connect(addr, &cert, &[]);
    let frames: Vec<Vec<u8>> = (0..200)
        .map(|i| util::pattern(i, (i as usize * 97) % 5000))
        .collect();
    let mut wire = Vec::new();
    for f in &frames {
        wire.extend_from_slice(&(f.len() as u32).to_be_bytes());
        wire.extend_from_slice(f);
    }
    // Written in odd-sized pieces, so frames straddle TLS records.
    for piece in wire.chunks(777) {
        tls.write_all(piece).unwrap();
    }
    tls.flush().unwrap();
    let mut back = vec![0; wire.len()];
    tls.read_exact(&mut back).unwrap();
    assert!(back == wire, "every frame back, in order, byte for byte");
    drop(tls);
    util::stop(engine);
}

/// Records what each side's `on_open` saw of the handshake.
#[derive(Default)]
struct HandshakeLog {
    /// (peer certificates, resumed) per on_open.
    opened: Mutex<Vec<(usize, bool)>>,
}

impl Handler for HandshakeLog {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let tls = conn.tls().expect("a TLS connection");
        let seen = (tls.peer_certificates().len(), tls.resumed());
        self.opened.lock().unwrap().push(seen);
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.discard(usize::MAX);
        Action::None
    }
}

#[test]
fn mutual_tls_shows_the_client_certificate_and_a_second_dial_resumes() {
    let server_cert = localhost_cert();
    let client_cert = rcgen::generate_simple_self_signed(vec!["client".into()]).unwrap();
    let client_pem = client_cert.cert.pem();
    let config = server_config(&server_cert)
        .client_auth_required(client_pem.as_bytes())
        .unwrap();
    let server_log = Arc::new(HandshakeLog::default());
    let engine = Engine::builder()
        .bind_tls("tcp://127.0.0.1:0", TlsAcceptor::new(config).unwrap())
        .options(Options::default().loops(1))
        .start(server_log.clone())
        .unwrap();
    let addr = engine.local_addrs()[0].inet().unwrap().to_string();
    let connector = TlsConnector::new(
        TlsClientConfig::from_pem(server_cert.0.as_bytes())
            .unwrap()
            .client_certificate(
                client_pem.as_bytes(),
                client_cert.key_pair.serialize_pem().as_bytes(),
            )
            .unwrap(),
    )
    .unwrap();
    let client_log = Arc::new(HandshakeLog::default());
    let client = Client::start(client_log.clone(), Options::default().loops(1)).unwrap();
    for _ in 0..2 {
        let handle = client
            .dial_tls_wait(&addr, &connector, "localhost", (), Duration::from_secs(5))
            .expect("the mutual handshake completes");
        // Let the session ticket arrive before the next dial.
        handle.async_write(b"x".to_vec()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        handle.close().unwrap();
    }
    assert!(util::wait_until(Duration::from_secs(5), || {
        server_log.opened.lock().unwrap().len() == 2
    }));
    let server_seen = server_log.opened.lock().unwrap().clone();
    assert_eq!(
        server_seen[0],
        (1, false),
        "the client's certificate, full handshake"
    );
    let client_seen = client_log.opened.lock().unwrap().clone();
    assert_eq!(client_seen[0], (1, false), "the server's certificate");
    assert!(client_seen[1].1, "the second dial resumed: {client_seen:?}");
    assert!(
        server_seen[1].1,
        "the server resumed it too: {server_seen:?}"
    );

    // Without a client certificate: TLS 1.3 clients finish their side of
    // the handshake first, then the server's alert closes the connection;
    // the server never opens it.
    let anonymous = connector_for(&server_cert);
    let refused = client
        .dial_tls_wait(&addr, &anonymous, "localhost", (), Duration::from_secs(5))
        .expect("the client's side of the handshake completes");
    assert!(
        util::wait_until(Duration::from_secs(5), || refused.is_closed()),
        "the server's alert closes it"
    );
    assert_eq!(
        server_log.opened.lock().unwrap().len(),
        2,
        "no on_open for it"
    );
    client.stop();
    client.wait().unwrap();
    util::stop(engine);
}

/// Half-closes at once (close_notify, then FIN) and counts what it reads
/// afterwards.
#[derive(Default)]
struct HalfCloser {
    read: Mutex<Vec<u8>>,
    closed: Mutex<Vec<Option<String>>>,
}

impl Handler for HalfCloser {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.write(b"last words").unwrap();
        conn.shutdown_write();
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        self.read.lock().unwrap().extend_from_slice(&data);
        Action::None
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        self.closed
            .lock()
            .unwrap()
            .push(err.map(|e| format!("{e:?}")));
        Action::None
    }
}

#[test]
fn shutdown_write_sends_close_notify_then_fin_and_keeps_reading() {
    let cert = localhost_cert();
    let handler = Arc::new(HalfCloser::default());
    let engine = Engine::builder()
        .bind_tls(
            "tcp://127.0.0.1:0",
            TlsAcceptor::new(server_config(&cert)).unwrap(),
        )
        .options(Options::default().loops(1))
        .start(handler.clone())
        .unwrap();
    let addr = engine.local_addrs()[0].inet().unwrap();
    let mut tls = rustls_connect(addr, &cert, &[]);
    let mut got = Vec::new();
    tls.read_to_end(&mut got)
        .expect("close_notify ends the stream cleanly");
    assert_eq!(got, b"last words");
    // The server's read side is still open: it reads what follows.
    let late = util::pattern(5, 50_000);
    tls.write_all(&late).unwrap();
    assert!(util::wait_until(Duration::from_secs(5), || {
        handler.read.lock().unwrap().len() == late.len()
    }));
    assert!(*handler.read.lock().unwrap() == late);
    // Our close_notify and FIN end the connection in order.
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    tls.sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(util::wait_until(Duration::from_secs(5), || {
        handler.closed.lock().unwrap().len() == 1
    }));
    assert_eq!(handler.closed.lock().unwrap()[0], None, "an orderly close");
    util::stop(engine);
}
