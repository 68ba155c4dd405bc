//! Serving inherited sockets in-process: `fd://N`, `Engine::drain`, and the
//! zero-downtime handoff between two engines (`Engine::serve_handoff`,
//! `EngineBuilder::inherit_from`), with the descriptors counted before and
//! after. The same exchange between two processes, under `wrk`, is
//! `deploy_restart.rs`; systemd's activation is `deploy_systemd.rs`.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use netloom::{Action, Conn, Engine, Handler, Options};

/// Descriptor counts are per process: these tests run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers each read with its generation's tag, `d` when the engine
/// drains (`-` otherwise), then the bytes read.
struct Generation(u8);

impl Handler for Generation {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let mut reply = vec![self.0, if conn.is_draining() { b'd' } else { b'-' }];
        reply.extend_from_slice(conn.peek(usize::MAX));
        conn.discard(usize::MAX);
        if conn.write(&reply).is_err() {
            return Action::Close;
        }
        Action::None
    }
}

fn options(grace: Duration) -> Options {
    Options::default().loops(2).shutdown_grace(grace)
}

/// Sends `data` and returns the 2-byte tag of the answer, checking that the
/// rest echoes `data` byte for byte.
fn ask(stream: &mut impl ReadWrite, data: &[u8]) -> [u8; 2] {
    stream.write_all(data).unwrap();
    let mut got = vec![0u8; data.len() + 2];
    stream.read_exact(&mut got).unwrap();
    assert!(got[2..] == *data, "echo differs");
    [got[0], got[1]]
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn ask_udp(socket: &UdpSocket, data: &[u8]) -> [u8; 2] {
    socket.send(data).unwrap();
    let mut got = vec![0u8; data.len() + 16];
    let n = socket.recv(&mut got).unwrap();
    assert!(n == data.len() + 2 && got[2..n] == *data, "echo differs");
    [got[0], got[1]]
}

fn unix_client(path: &std::path::Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Waits for `engine` to stop, at most `limit`; returns how long it took.
fn wait_stopped(engine: Engine, limit: Duration) -> Duration {
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(engine.wait()));
    rx.recv_timeout(limit)
        .expect("the engine stops in time")
        .expect("a clean stop");
    started.elapsed()
}

#[test]
fn handoff_moves_every_socket_and_the_old_engine_drains() {
    let _serial = serial();
    let dir = util::TempDir::new("handoff");
    let (handoff, unix_path) = (dir.path("handoff.sock"), dir.path("served.sock"));
    let baseline = util::open_fds();

    let unix_url = format!("unix://{}", unix_path.display());
    let old = Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .bind(&unix_url)
        .bind("udp://127.0.0.1:0")
        .options(options(Duration::from_secs(10)))
        .start(Generation(b'A'))
        .unwrap();
    old.serve_handoff(&handoff).unwrap();
    let tcp_addr = old.local_addrs()[0].inet().unwrap();
    let udp_addr = old.local_addrs()[2].inet().unwrap();
    let mut kept = util::connect(tcp_addr);
    assert_eq!(&ask(&mut kept, b"before"), b"A-");

    let new = Engine::builder()
        .bind(&format!("tcp://{tcp_addr}"))
        .bind(&unix_url)
        .bind(&format!("udp://{udp_addr}"))
        .options(options(Duration::from_secs(10)))
        .inherit_from(&handoff)
        .start(Generation(b'B'))
        .unwrap();
    assert_eq!(new.local_addrs(), old.local_addrs());
    assert!(
        old.is_draining(),
        "the old engine drains once the new serves"
    );
    assert!(!handoff.exists(), "the old engine gave the handoff path up");

    // The old engine still serves the connection it has, and says it drains.
    assert_eq!(&ask(&mut kept, b"during"), b"Ad");
    // New connections, on every address, reach the new engine.
    assert_eq!(&ask(&mut util::connect(tcp_addr), b"tcp"), b"B-");
    assert_eq!(&ask(&mut unix_client(&unix_path), b"unix"), b"B-");

    drop(kept);
    let took = wait_stopped(old, Duration::from_secs(8));
    assert!(took < Duration::from_secs(5), "drained in {took:?}");
    assert!(unix_path.exists(), "the handed-off socket file stays");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.connect(udp_addr).unwrap();
    assert_eq!(&ask_udp(&udp, b"datagram"), b"B-");
    assert_eq!(&ask(&mut util::connect(tcp_addr), b"after"), b"B-");
    drop(udp);

    util::stop(new);
    assert!(
        !unix_path.exists(),
        "the new engine removes the file it took over"
    );
    assert!(
        util::wait_until(Duration::from_secs(5), || util::open_fds() <= baseline),
        "descriptors leaked: {} open, {baseline} before",
        util::open_fds()
    );
}

#[test]
fn a_successor_that_never_serves_leaves_the_old_engine_serving() {
    let _serial = serial();
    let dir = util::TempDir::new("handoff-fail");
    let (handoff, unix_path) = (dir.path("handoff.sock"), dir.path("served.sock"));
    let unix_url = format!("unix://{}", unix_path.display());
    let old = Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .bind(&unix_url)
        .options(options(Duration::from_secs(10)))
        .start(Generation(b'A'))
        .unwrap();
    old.serve_handoff(&handoff).unwrap();
    let addr = old.local_addrs()[0].inet().unwrap();

    // A successor that takes the sockets and fails to start (an address of
    // its own is taken) leaves the old engine serving, socket file included.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let failed = Engine::builder()
        .bind(&format!("tcp://{addr}"))
        .bind(&unix_url)
        .bind(&format!("tcp://{}", taken.local_addr().unwrap()))
        .options(options(Duration::from_secs(10)))
        .inherit_from(&handoff)
        .start(Generation(b'X'));
    assert!(
        matches!(failed, Err(netloom::Error::AddrInUse(_))),
        "{failed:?}"
    );
    assert!(!old.is_draining());
    assert!(unix_path.exists());
    assert_eq!(&ask(&mut unix_client(&unix_path), b"unix"), b"A-");

    // A successor that reads the offer and dies before it serves.
    let mut quitter = unix_client(&handoff);
    let mut hello = [0u8; 17];
    quitter.read_exact(&mut hello).unwrap();
    assert_eq!(&hello, b"netloom-handoff/1");
    drop(quitter);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!old.is_draining());
    assert_eq!(&ask(&mut util::connect(addr), b"still"), b"A-");

    // The next one takes over.
    let new = Engine::builder()
        .bind(&format!("tcp://{addr}"))
        .bind(&unix_url)
        .options(options(Duration::from_secs(10)))
        .inherit_from(&handoff)
        .start(Generation(b'B'))
        .unwrap();
    wait_stopped(old, Duration::from_secs(8));
    assert_eq!(&ask(&mut util::connect(addr), b"next"), b"B-");
    assert_eq!(&ask(&mut unix_client(&unix_path), b"unix"), b"B-");
    util::stop(new);
}

#[test]
fn inherit_from_binds_when_nobody_offers() {
    let _serial = serial();
    let dir = util::TempDir::new("handoff-none");
    let engine = Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .inherit_from(dir.path("nobody.sock"))
        .options(options(Duration::from_secs(1)))
        .start(Generation(b'A'))
        .unwrap();
    let addr = engine.local_addrs()[0].inet().unwrap();
    assert_eq!(&ask(&mut util::connect(addr), b"fresh"), b"A-");
    util::stop(engine);
}

#[test]
fn drain_serves_open_connections_refuses_new_ones_and_stops_when_they_close() {
    let _serial = serial();
    let (engine, addr) = util::start(Generation(b'A'), options(Duration::from_secs(10)));
    let mut open = util::connect(addr);
    assert_eq!(&ask(&mut open, b"one"), b"A-");
    engine.drain();
    assert!(engine.is_draining());
    assert_eq!(&ask(&mut open, b"two"), b"Ad");
    assert!(
        util::wait_until(Duration::from_secs(5), || TcpStream::connect(addr)
            .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)),
        "the listener closes"
    );
    drop(open);
    let took = wait_stopped(engine, Duration::from_secs(8));
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
}

#[test]
fn drain_closes_what_is_left_when_the_grace_ends() {
    let _serial = serial();
    let grace = Duration::from_millis(300);
    let (engine, addr) = util::start(Generation(b'A'), options(grace));
    let mut idle = util::connect(addr);
    assert_eq!(&ask(&mut idle, b"hi"), b"A-");
    let started = Instant::now();
    engine.drain();
    wait_stopped(engine, Duration::from_secs(8));
    assert!(started.elapsed() >= grace, "stopped before the grace");
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing but the close: {rest:?}");
}

#[test]
fn fd_addresses_serve_tcp_unix_and_udp_and_refuse_other_sockets() {
    let _serial = serial();
    let dir = util::TempDir::new("fd");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let unix_path = dir.path("fd.sock");
    let unix = std::os::unix::net::UnixListener::bind(&unix_path).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let urls: Vec<String> = [tcp.into_raw_fd(), unix.into_raw_fd(), udp.into_raw_fd()]
        .iter()
        .map(|fd| format!("fd://{fd}"))
        .collect();
    let engine = Engine::builder()
        .bind(&urls[0])
        .bind(&urls[1])
        .bind(&urls[2])
        .options(options(Duration::from_secs(1)))
        .start(Generation(b'F'))
        .unwrap();
    assert_eq!(engine.local_addrs()[0], tcp_addr);
    assert_eq!(engine.local_addrs()[2], udp_addr);
    assert_eq!(&ask(&mut util::connect(tcp_addr), b"tcp"), b"F-");
    assert_eq!(&ask(&mut unix_client(&unix_path), b"unix"), b"F-");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.connect(udp_addr).unwrap();
    assert_eq!(&ask_udp(&client, b"udp"), b"F-");
    // A descriptor is served once.
    let err = Engine::builder()
        .bind(&urls[0])
        .start(Generation(b'F'))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already served"), "{err}");
    util::stop(engine);
    assert!(unix_path.exists(), "an inherited socket's file is not ours");

    // A connection is not a listener.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let url = format!("fd://{}", conn.into_raw_fd());
    let err = Engine::builder()
        .bind(&url)
        .start(Generation(b'F'))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not listen"), "{err}");
}
