//! The client: non-blocking connects performed by the loops, every failure
//! kind as a typed error within its timeout, thousands of client
//! connections against a netloom server in the same process, dialing from
//! a callback onto the caller's own loop, and adopting std streams.

mod util;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netloom::{Action, Client, Conn, Error, Handler, Options};
use util::{pattern, raise_fd_limit, start, start_on, stop, wait_until, Echo};

/// Sends `message` when opened, checks the echo byte for byte, then closes.
#[derive(Default)]
struct Checker {
    opened: AtomicUsize,
    verified: AtomicUsize,
    failures: Mutex<Vec<String>>,
    threads: Mutex<Vec<std::thread::ThreadId>>,
}

#[derive(Default)]
struct Expect {
    message: Vec<u8>,
    matched: usize,
}

impl Handler for Checker {
    type Context = Expect;

    fn on_open(&self, conn: &mut Conn<'_, Expect>) -> Action {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        let message = conn.context().message.clone();
        match conn.write(&message) {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }

    fn on_traffic(&self, conn: &mut Conn<'_, Expect>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        let ctx = conn.context_mut();
        let end = ctx.matched + data.len();
        if end > ctx.message.len() || ctx.message[ctx.matched..end] != data[..] {
            self.failures.lock().unwrap().push("echo differs".into());
            return Action::Close;
        }
        ctx.matched = end;
        if end == ctx.message.len() {
            self.verified.fetch_add(1, Ordering::Relaxed);
            return Action::Close;
        }
        Action::None
    }

    fn on_close(&self, _: &mut Conn<'_, Expect>, err: Option<&Error>) -> Action {
        if let Some(e) = err {
            let kind = match e {
                Error::Connect { source, .. } => format!("connect {:?}", source.kind()),
                Error::ConnectTimeout(_) => "timeout".to_string(),
                other => format!("other {other}"),
            };
            self.failures.lock().unwrap().push(kind);
        }
        Action::None
    }
}

fn expect(seed: u64, len: usize) -> Expect {
    Expect {
        message: pattern(seed, len),
        matched: 0,
    }
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn dial_wait_returns_a_working_handle_after_on_open() {
    let (server, addr) = start(Echo, Options::default().loops(1));
    let checker = Arc::new(Checker::default());
    let client = Client::start(checker.clone(), Options::default().loops(1)).unwrap();
    let handle = client
        .dial_wait(
            &format!("tcp://{addr}"),
            expect(1, 100_000),
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(
        checker.opened.load(Ordering::Relaxed),
        1,
        "on_open ran first"
    );
    assert!(wait_until(Duration::from_secs(10), || handle.is_closed()));
    assert_eq!(checker.verified.load(Ordering::Relaxed), 1);
    assert!(checker.failures.lock().unwrap().is_empty());
    client.stop();
    client.wait().unwrap();
    stop(server);
}

#[test]
fn refused_connects_are_typed_errors_both_ways() {
    let checker = Arc::new(Checker::default());
    let client = Client::start(checker.clone(), Options::default().loops(2)).unwrap();
    let target = closed_port().to_string();
    // Refused, not timed out: the outcome shows the refusal came first.
    match client.dial_wait(&target, expect(2, 10), Duration::from_secs(60)) {
        Err(Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("expected a refused connect, got {other:?}"),
    }
    // Fire and forget: the outcome is on_close with the error, no on_open.
    for i in 0..20 {
        client.dial(&target, expect(i, 10)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(30), || {
        checker.failures.lock().unwrap().len() == 21
    }));
    assert!(checker
        .failures
        .lock()
        .unwrap()
        .iter()
        .all(|f| f == "connect ConnectionRefused"));
    assert_eq!(checker.opened.load(Ordering::Relaxed), 0);
    client.stop();
    client.wait().unwrap();
}

#[test]
fn a_connect_that_never_completes_times_out() {
    // A listener that never accepts, with its accept queue full, drops the
    // SYNs of further connects: they hang until the dialer gives up.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr: SocketAddr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if s.connect_timeout(&addr.into(), Duration::from_millis(200))
            .is_err()
        {
            break;
        }
        fillers.push(s);
    }
    let checker = Arc::new(Checker::default());
    let options = Options::default()
        .loops(1)
        .connect_timeout(Some(Duration::from_millis(300)));
    let client = Client::start(checker.clone(), options).unwrap();
    let started = Instant::now();
    match client.dial_wait(&addr.to_string(), expect(3, 10), Duration::from_millis(300)) {
        Err(Error::ConnectTimeout(at)) => assert_eq!(at, addr),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(60),
        "{waited:?}"
    );
    client.dial(&addr.to_string(), expect(4, 10)).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        checker.failures.lock().unwrap().len() == 2
    }));
    assert!(checker
        .failures
        .lock()
        .unwrap()
        .iter()
        .all(|f| f == "timeout"));
    client.stop();
    client.wait().unwrap();
}

#[test]
fn bad_addresses_fail_at_once() {
    let client = Client::start(Checker::default(), Options::default().loops(1)).unwrap();
    assert!(matches!(
        client.dial("sctp://127.0.0.1:1", Expect::default()),
        Err(Error::UnknownScheme(_))
    ));
    assert!(matches!(
        client.dial("tcp://127.0.0.1", Expect::default()),
        Err(Error::InvalidAddress { .. })
    ));
    assert!(matches!(
        client.dial("tcp://no-such-host.invalid:9", Expect::default()),
        Err(Error::Resolve { .. })
    ));
    client.stop();
    client.wait().unwrap();
    assert!(matches!(
        client.dial("127.0.0.1:9", Expect::default()),
        Err(Error::EngineStopped)
    ));
}

#[test]
fn five_thousand_client_connections_against_a_netloom_server() {
    raise_fd_limit();
    let (server, addr) = start(Echo, Options::default().loops(2));
    let checker = Arc::new(Checker::default());
    let client = Client::start(checker.clone(), Options::default().loops(2)).unwrap();
    let target = addr.to_string();
    for i in 0..5000u64 {
        client
            .dial(&target, expect(i, 512 + (i as usize * 131) % 8192))
            .unwrap();
    }
    let done = wait_until(Duration::from_secs(60), || {
        checker.verified.load(Ordering::Relaxed) + checker.failures.lock().unwrap().len() >= 5000
    });
    assert!(
        done,
        "{} verified",
        checker.verified.load(Ordering::Relaxed)
    );
    assert!(
        checker.failures.lock().unwrap().is_empty(),
        "{:?}",
        &checker.failures.lock().unwrap()[..1]
    );
    assert_eq!(checker.verified.load(Ordering::Relaxed), 5000);
    let threads = checker.threads.lock().unwrap();
    let distinct: std::collections::HashSet<_> = threads.iter().collect();
    assert_eq!(
        distinct.len(),
        2,
        "round-robin spreads dials over both loops"
    );
    drop(threads);
    client.stop();
    client.wait().unwrap();
    stop(server);
}

#[test]
fn adopted_streams_are_served_by_a_loop() {
    let (server, addr) = start(Echo, Options::default().loops(1));
    let checker = Arc::new(Checker::default());
    let client = Client::start(checker.clone(), Options::default().loops(1)).unwrap();
    // An adopted stream gets a default context (an empty message): on_open
    // runs on the client's loop, and the server keeps seeing the connection
    // until the client stops.
    let stream = std::net::TcpStream::connect(addr).unwrap();
    client.adopt(stream).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        checker.opened.load(Ordering::Relaxed) == 1
    }));
    assert!(wait_until(Duration::from_secs(30), || server.conn_count() == 1));
    client.stop();
    client.wait().unwrap();
    assert!(wait_until(Duration::from_secs(30), || server.conn_count() == 0));
    stop(server);
}

/// Dials a backend from `on_open`, on the same loop, and records on which
/// thread both sides opened.
struct Dialer {
    backend: SocketAddr,
    opened_on: Mutex<Vec<(bool, std::thread::ThreadId)>>,
}

impl Handler for Dialer {
    /// Whether this is the outbound (backend) side.
    type Context = bool;

    fn on_open(&self, conn: &mut Conn<'_, bool>) -> Action {
        let outbound = *conn.context();
        self.opened_on
            .lock()
            .unwrap()
            .push((outbound, std::thread::current().id()));
        if !outbound
            && conn
                .dial(self.backend, Some(Duration::from_secs(30)), true)
                .is_err()
        {
            return Action::Close;
        }
        Action::None
    }

    fn on_traffic(&self, conn: &mut Conn<'_, bool>) -> Action {
        conn.discard(usize::MAX);
        Action::None
    }
}

#[test]
fn a_callback_dials_onto_its_own_loop() {
    let (backend, backend_addr) = start(Echo, Options::default().loops(1));
    let dialer = Arc::new(Dialer {
        backend: backend_addr,
        opened_on: Mutex::new(Vec::new()),
    });
    let (front, front_addr) = start(dialer.clone(), Options::default().loops(4));
    let clients: Vec<_> = (0..16).map(|_| util::connect(front_addr)).collect();
    assert!(wait_until(Duration::from_secs(30), || {
        dialer.opened_on.lock().unwrap().len() == 32
    }));
    let opened = dialer.opened_on.lock().unwrap().clone();
    let inbound: Vec<_> = opened.iter().filter(|(o, _)| !o).map(|(_, t)| *t).collect();
    let outbound: Vec<_> = opened.iter().filter(|(o, _)| *o).map(|(_, t)| *t).collect();
    // Each loop dialed as many backends as it accepted clients.
    for thread in inbound.iter().collect::<std::collections::HashSet<_>>() {
        let accepted = inbound.iter().filter(|t| *t == thread).count();
        let dialed = outbound.iter().filter(|t| *t == thread).count();
        assert_eq!(accepted, dialed, "a backend opened on another loop");
    }
    drop(clients);
    stop(front);
    stop(backend);
}

// Abstract Unix names are Linux's.
#[cfg(target_os = "linux")]
#[test]
fn unix_stream_dials_and_adopted_unix_streams_echo() {
    let name = util::abstract_name("client-unix");
    let url = format!("unix://@{name}");
    let server = start_on(Echo, &[&url], Options::default().loops(1));
    let checker = Arc::new(Checker::default());
    let client = Client::start(checker.clone(), Options::default().loops(2)).unwrap();
    let handle = client
        .dial_wait(&url, expect(9, 300_000), Duration::from_secs(30))
        .unwrap();
    for i in 0..10 {
        client.dial(&url, expect(10 + i, 5000)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || {
        checker.verified.load(Ordering::Relaxed) == 11
    }));
    // Closed once its last bytes are sent (on io_uring a turn later).
    assert!(wait_until(Duration::from_secs(10), || handle.is_closed()));
    // An adopted std UnixStream is served (on_open runs on a client loop).
    let std_addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            name.as_bytes(),
        )
        .unwrap();
    let stream = std::os::unix::net::UnixStream::connect_addr(&std_addr).unwrap();
    client.adopt(stream).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        checker.opened.load(Ordering::Relaxed) == 12
    }));
    assert!(checker.failures.lock().unwrap().is_empty());
    client.stop();
    client.wait().unwrap();
    stop(server);
}

/// Collects the datagrams a client's UDP socket receives.
#[derive(Default)]
struct Datagrams {
    received: Mutex<Vec<(netloom::Addr, Vec<u8>)>>,
}

impl Handler for Datagrams {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        let from = conn.peer_addr().clone();
        self.received.lock().unwrap().push((from, data));
        Action::None
    }
}

#[test]
fn udp_dials_and_adopted_udp_sockets_exchange_datagrams() {
    let server = start_on(Echo, &["udp://127.0.0.1:0"], Options::default().loops(1));
    let server_addr = server.local_addrs()[0].inet().unwrap();
    let datagrams = Arc::new(Datagrams::default());
    let client = Client::start(datagrams.clone(), Options::default().loops(2)).unwrap();
    let dialed = client
        .dial_wait(&format!("udp://{server_addr}"), (), Duration::from_secs(30))
        .unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server_addr).unwrap();
    let adopted = client.adopt_udp(socket).unwrap();
    for i in 0..50u64 {
        dialed.async_write(pattern(i, 1 + i as usize * 20)).unwrap();
        adopted.async_write(pattern(1000 + i, 1400)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || {
        datagrams.received.lock().unwrap().len() == 100
    }));
    let received = datagrams.received.lock().unwrap();
    assert!(received.iter().all(|(from, _)| *from == server_addr));
    let mut payloads: Vec<_> = received.iter().map(|(_, d)| d.clone()).collect();
    let mut expected: Vec<_> = (0..50u64)
        .flat_map(|i| [pattern(i, 1 + i as usize * 20), pattern(1000 + i, 1400)])
        .collect();
    payloads.sort();
    expected.sort();
    assert!(payloads == expected, "datagrams differ");
    drop(received);
    client.stop();
    client.wait().unwrap();
    stop(server);
}

/// A context whose `Default` panics once `POISONED` is set: the loop that
/// registers an adopted stream with it dies (a user bug the loop does not
/// contain), which is how a test gets a loop to exit with a dial queued.
struct Fragile;

static POISONED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Default for Fragile {
    fn default() -> Self {
        assert!(!POISONED.load(Ordering::SeqCst), "Fragile::default");
        Fragile
    }
}

/// Holds its loop inside the first `on_open` until `release` is sent.
struct Gate {
    entered: Mutex<std::sync::mpsc::Sender<()>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Handler for Gate {
    type Context = Fragile;
    fn on_open(&self, _: &mut Conn<'_, Fragile>) -> Action {
        let _ = self.entered.lock().unwrap().send(());
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10));
        Action::None
    }
    fn on_traffic(&self, _: &mut Conn<'_, Fragile>) -> Action {
        Action::None
    }
}

#[test]
fn dial_wait_reports_a_loop_that_exited_as_engine_stopped() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let gate = Gate {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    };
    let client = Arc::new(Client::start(gate, Options::default().loops(1)).unwrap());
    // The loop is held in on_open while a dial and then a poisoned stream
    // queue up behind it.
    let held = std::net::TcpStream::connect(addr).unwrap();
    client.adopt(held).unwrap();
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    let dialer = {
        let client = client.clone();
        std::thread::spawn(move || {
            client.dial_wait(&addr.to_string(), Fragile, Duration::from_secs(30))
        })
    };
    // The dial counts in the loop's load once it is on its way to the inbox.
    assert!(wait_until(Duration::from_secs(10), || client
        .engine()
        .conn_count()
        == 2));
    std::thread::sleep(Duration::from_millis(50));
    POISONED.store(true, Ordering::SeqCst);
    client
        .adopt(std::net::TcpStream::connect(addr).unwrap())
        .unwrap();
    release.send(()).unwrap();
    let started = Instant::now();
    match dialer.join().unwrap() {
        Err(Error::EngineStopped) => {}
        other => panic!("expected EngineStopped, got {other:?}"),
    }
    // Answered when the loop died, not when the dial's timeout ran out.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(client.wait().is_err(), "the loop thread panicked");
}
