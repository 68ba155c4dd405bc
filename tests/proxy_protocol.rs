//! PROXY protocol listeners in the callback engine: the header is read
//! before `on_open` (split across reads too), `peer_addr` is the client's,
//! the balancer's address stays in `Conn::proxy`, the bytes after the
//! header are the first input; a missing, malformed or late header closes
//! with `Error::ProxyHeader` and no `on_open`; a netloom dialer sends one.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use netloom::proxy_protocol::{encode, ProxyCommand, ProxyProtocol};
use netloom::{Action, Addr, Conn, Engine, Error, Handler, ListenerOptions, Options};

/// What a connection showed its handler.
#[derive(Debug)]
enum Seen {
    Open {
        peer: Addr,
        balancer: Option<Addr>,
        command: Option<ProxyCommand>,
    },
    Close(Option<String>, bool),
}

/// Echoes, and reports `on_open` and `on_close`.
struct Report(mpsc::Sender<Seen>);

impl Handler for Report {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.0.send(Seen::Open {
            peer: conn.peer_addr().clone(),
            balancer: conn.proxy().map(|p| p.balancer().clone()),
            command: conn.proxy().map(|p| p.command()),
        });
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        match conn.write(&data) {
            Ok(_) => Action::None,
            Err(_) => Action::Close,
        }
    }
    fn on_close(&self, _conn: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        let header_error = matches!(err, Some(Error::ProxyHeader(_)));
        let _ = self
            .0
            .send(Seen::Close(err.map(|e| e.to_string()), header_error));
        Action::None
    }
}

fn serve(listener: ListenerOptions) -> (Engine, SocketAddr, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let engine = Engine::builder()
        .bind_with("tcp://127.0.0.1:0", listener)
        .options(Options::default().loops(2))
        .start(Report(tx))
        .expect("engine starts");
    let addr = engine.local_addrs()[0].inet().unwrap();
    (engine, addr, rx)
}

fn next(rx: &mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s")
}

fn client() -> SocketAddr {
    "192.0.2.7:50000".parse().unwrap()
}

/// Sends `header` and `payload`, each byte its own write (TCP_NODELAY,
/// a pause between them so most arrive as reads of their own), and checks
/// the payload's echo.
fn send_split(addr: SocketAddr, header: &[u8], payload: &[u8]) -> TcpStream {
    let mut stream = util::connect(addr);
    stream.set_nodelay(true).unwrap();
    for byte in header.iter().chain(payload) {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut echo = vec![0; payload.len()];
    stream.read_exact(&mut echo).expect("echo");
    assert_eq!(echo, payload);
    stream
}

#[test]
fn a_header_split_into_one_byte_reads_opens_with_the_client_as_peer() {
    for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
        let (engine, addr, rx) = serve(ListenerOptions::new().proxy_protocol(version));
        let frontend = "198.51.100.1:443".parse().unwrap();
        let header = encode(version, Some((client(), frontend)));
        let stream = send_split(addr, &header, b"hello after the header");
        let Seen::Open {
            peer,
            balancer,
            command,
        } = next(&rx)
        else {
            panic!("on_open first");
        };
        assert_eq!(peer, client(), "{version:?}");
        assert_eq!(balancer, Some(Addr::Inet(stream.local_addr().unwrap())));
        assert_eq!(command, Some(ProxyCommand::Proxy));
        drop(stream);
        assert!(matches!(next(&rx), Seen::Close(None, false)));
        util::stop(engine);
    }
}

#[test]
fn bytes_in_the_same_read_as_the_header_are_the_first_input() {
    let (engine, addr, rx) = serve(ListenerOptions::new().proxy_protocol(ProxyProtocol::V2));
    let mut wire = encode(ProxyProtocol::V2, Some((client(), addr)));
    let payload = util::pattern(7, 100_000);
    wire.extend_from_slice(&payload);
    let stream = util::connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&wire).unwrap());
    let mut echo = vec![0; payload.len()];
    (&stream).read_exact(&mut echo).expect("echo");
    sender.join().unwrap();
    assert!(echo == payload, "echoed bytes differ");
    assert!(matches!(next(&rx), Seen::Open { peer, .. } if peer == client()));
    util::stop(engine);
}

#[test]
fn a_local_header_keeps_the_socket_addresses() {
    let (engine, addr, rx) = serve(ListenerOptions::new().proxy_protocol(ProxyProtocol::V2));
    let stream = send_split(addr, &encode(ProxyProtocol::V2, None), b"ping");
    let Seen::Open { peer, command, .. } = next(&rx) else {
        panic!("on_open first");
    };
    assert_eq!(peer, Addr::Inet(stream.local_addr().unwrap()));
    assert_eq!(command, Some(ProxyCommand::Local));
    util::stop(engine);
}

/// Sends `wire` and expects the server to close without `on_open`, with
/// `Error::ProxyHeader` whose text contains `reason`.
fn refused(listener: ListenerOptions, wire: &[u8], reason: &str) {
    let (engine, addr, rx) = serve(listener);
    let mut stream = util::connect(addr);
    stream.write_all(wire).unwrap();
    let mut rest = Vec::new();
    // The server closes: end of stream (or a reset), never an echo.
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing is echoed: {rest:?}");
    match next(&rx) {
        Seen::Close(Some(err), true) => assert!(err.contains(reason), "{err}"),
        other => panic!("expected a close with a header error, got {other:?}"),
    }
    util::stop(engine);
}

#[test]
fn a_client_without_a_header_is_closed_with_a_typed_error() {
    let v1 = ListenerOptions::new().proxy_protocol(ProxyProtocol::V1);
    refused(v1, b"GET / HTTP/1.1\r\n\r\n", "no PROXY protocol header");
    let v2 = ListenerOptions::new().proxy_protocol(ProxyProtocol::V2);
    refused(
        v2,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "no PROXY protocol header",
    );
}

#[test]
fn malformed_and_oversized_headers_are_refused() {
    let v1 = || ListenerOptions::new().proxy_protocol(ProxyProtocol::V1);
    refused(v1(), b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n", "malformed");
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(200, b'x');
    refused(v1(), &long, "exceeds the limit of 107");
    let mut huge = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff".to_vec();
    huge.resize(1000, 0);
    let v2 = ListenerOptions::new().proxy_protocol(ProxyProtocol::V2);
    refused(v2, &huge, "exceeds the limit of 4096");
}

#[test]
fn a_header_cut_short_or_late_closes_the_connection() {
    let (engine, addr, rx) = serve(ListenerOptions::new().proxy_protocol(ProxyProtocol::V1));
    let mut stream = util::connect(addr);
    stream.write_all(b"PROXY TCP4 1.2").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    match next(&rx) {
        Seen::Close(Some(err), true) => assert!(err.contains("closed inside"), "{err}"),
        other => panic!("{other:?}"),
    }
    util::stop(engine);

    let late = ListenerOptions::new()
        .proxy_protocol(ProxyProtocol::V2)
        .proxy_header_timeout(Duration::from_millis(200));
    let (engine, addr, rx) = serve(late);
    let mut stream = util::connect(addr);
    stream.write_all(b"\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    match next(&rx) {
        Seen::Close(Some(err), true) => assert!(err.contains("timed out"), "{err}"),
        other => panic!("{other:?}"),
    }
    util::stop(engine);
}

#[test]
fn a_netloom_dialer_sends_the_header_first() {
    for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
        let (engine, addr, rx) = serve(ListenerOptions::new().proxy_protocol(version));
        let (client_tx, client_rx) = mpsc::channel();
        let dialer = netloom::Client::start(Report(client_tx), Options::default().loops(1))
            .expect("client starts");
        let header = encode(version, Some((client(), addr)));
        dialer
            .dial_with_proxy_header(&format!("tcp://{addr}"), header, ())
            .unwrap();
        assert!(matches!(next(&client_rx), Seen::Open { .. }));
        assert!(matches!(next(&rx), Seen::Open { peer, .. } if peer == client()));
        dialer.stop();
        dialer.wait().unwrap();
        util::stop(engine);
    }
}

/// Pauses reading in `on_open` and resumes through its handle (the
/// `proxy` example's pattern while its backend connects), then echoes.
struct PauseOnOpen;

impl Handler for PauseOnOpen {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.pause_reading();
        match conn.handle().resume_reading() {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        match conn.write(&data) {
            Ok(_) => Action::None,
            Err(_) => Action::Close,
        }
    }
}

#[test]
fn bytes_after_the_header_wait_while_on_open_paused_reading() {
    let engine = Engine::builder()
        .bind_with(
            "tcp://127.0.0.1:0",
            ListenerOptions::new().proxy_protocol(ProxyProtocol::V1),
        )
        .options(Options::default().loops(1))
        .start(PauseOnOpen)
        .expect("engine starts");
    let addr = engine.local_addrs()[0].inet().unwrap();
    for round in 0..20 {
        // Header and request in one write: one read on loopback.
        let mut wire = encode(ProxyProtocol::V1, Some((client(), addr)));
        let request = format!("request {round}");
        wire.extend_from_slice(request.as_bytes());
        let mut stream = util::connect(addr);
        stream.write_all(&wire).unwrap();
        let mut echo = vec![0; request.len()];
        stream.read_exact(&mut echo).expect("the request is echoed");
        assert_eq!(echo, request.as_bytes());
    }
    util::stop(engine);
}

#[test]
fn udp_addresses_refuse_the_proxy_protocol() {
    let (tx, _rx) = mpsc::channel();
    let started = Engine::builder()
        .bind_with(
            "udp://127.0.0.1:0",
            ListenerOptions::new().proxy_protocol(ProxyProtocol::V2),
        )
        .start(Report(tx));
    match started {
        Err(Error::InvalidOption(reason)) => assert!(reason.contains("stream address"), "{reason}"),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}
