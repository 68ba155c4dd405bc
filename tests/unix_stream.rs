//! Unix domain stream sockets: echo, half-close, backpressure, graceful stop,
//! the stale-socket-file rule, abstract names, file mode, peer credentials.

mod util;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netloom::{Action, Addr, Conn, Error, Handler, Options, PeerCred, Transport, UnixAddr};
use util::*;

fn unix_url(dir: &TempDir, name: &str) -> (String, std::path::PathBuf) {
    let path = dir.path(name);
    (format!("unix://{}", path.display()), path)
}

#[test]
fn echo_many_connections_and_a_large_stream() {
    let dir = TempDir::new("unix-echo");
    let (url, path) = unix_url(&dir, "echo.sock");
    let engine = start_on(Echo, &[&url], Options::default().loops(2));
    assert_eq!(
        engine.local_addrs(),
        &[Addr::Unix(UnixAddr::Path(path.clone()))]
    );
    let addr = engine.local_addrs()[0].clone();
    let clients: Vec<_> = (0..50).map(|_| Client::connect(&addr)).collect();
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 50));
    assert_eq!(engine.conn_counts(), vec![25, 25], "round-robin over loops");
    std::thread::scope(|s| {
        for (i, c) in clients.iter().enumerate() {
            s.spawn(move || client_roundtrip(c, &pattern(i as u64, 100_000)));
        }
    });
    client_roundtrip(&clients[0], &pattern(77, 16 * 1024 * 1024));
    drop(clients);
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 0));
    stop(engine);
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[test]
fn half_close_delivers_and_flushes_everything() {
    let dir = TempDir::new("unix-half");
    let (url, _) = unix_url(&dir, "half.sock");
    let engine = start_on(Echo, &[&url], Options::default().loops(1));
    let client = Client::connect(&engine.local_addrs()[0]);
    let data = pattern(3, 8 * 1024 * 1024);
    let writer = client.try_clone();
    let sent = data.clone();
    let t = std::thread::spawn(move || {
        (&writer).write_all(&sent).unwrap();
        writer.shutdown_write();
    });
    let mut got = Vec::new();
    (&client).read_to_end(&mut got).expect("reads until EOF");
    t.join().unwrap();
    assert!(got == data);
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 0));
    stop(engine);
}

/// Echo that records the largest outbound backlog it ever saw.
#[derive(Default)]
struct MeasuringEcho {
    max_outbound: Mutex<usize>,
}

impl Handler for MeasuringEcho {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        Echo.on_traffic(conn);
        let mut max = self.max_outbound.lock().unwrap();
        *max = (*max).max(conn.outbound_len());
        Action::None
    }
}

#[test]
fn a_slow_reader_is_paused_by_backpressure() {
    let dir = TempDir::new("unix-bp");
    let (url, path) = unix_url(&dir, "bp.sock");
    let high = 256 * 1024;
    let probe = Arc::new(MeasuringEcho::default());
    let engine = start_on(
        probe.clone(),
        &[&url],
        Options::default()
            .loops(1)
            .high_water(high)
            .low_water(64 * 1024),
    );
    let stream = UnixStream::connect(path).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let chunk = vec![9u8; 64 * 1024];
    let mut sent = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        match (&stream).write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60), "never paused");
    let max = *probe.max_outbound.lock().unwrap();
    assert!(max <= high + 64 * 1024, "outbound grew to {max}");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = vec![0u8; sent];
    (&stream).read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == 9));
    stop(engine);
}

/// Greets with 4 MiB, then the test stops the engine before reading it.
struct BigGreeting;

impl Handler for BigGreeting {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = conn.write(&pattern(5, 4 * 1024 * 1024));
        Action::None
    }
    fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
}

#[test]
fn graceful_stop_flushes_pending_data() {
    let dir = TempDir::new("unix-stop");
    let (url, path) = unix_url(&dir, "stop.sock");
    let engine = start_on(BigGreeting, &[&url], Options::default().loops(1));
    let client = Client::connect(&engine.local_addrs()[0]);
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 1));
    let stopper = engine.clone();
    let t = std::thread::spawn(move || stop(stopper));
    let mut got = Vec::new();
    (&client).read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert!(got == pattern(5, 4 * 1024 * 1024));
    assert!(!path.exists());
    drop(engine);
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_is_an_error() {
    let dir = TempDir::new("unix-stale");
    let (url, path) = unix_url(&dir, "s.sock");

    // A crashed server leaves its file behind: nobody listens on it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let engine = start_on(Echo, &[&url], Options::default().loops(1));
    client_roundtrip(&Client::connect(&engine.local_addrs()[0]), b"revived");
    stop(engine);
    assert!(!path.exists());

    // A live server keeps its socket: a typed error, and it still serves.
    let live = UnixListener::bind(&path).unwrap();
    let err = netloom::Engine::builder()
        .bind(&url)
        .options(Options::default().loops(1))
        .start(Echo)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::AddrInUse(_)), "{err:?}");
    assert!(path.exists());
    let _client = UnixStream::connect(&path).expect("the live server still accepts");
    assert!(live.accept().is_ok());
    drop(live);

    // Something that is not a socket is never removed.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"precious").unwrap();
    let err = netloom::Engine::builder()
        .bind(&url)
        .start(Echo)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn the_file_is_left_alone_if_another_server_replaced_it() {
    let dir = TempDir::new("unix-replaced");
    let (url, path) = unix_url(&dir, "r.sock");
    let engine = start_on(Echo, &[&url], Options::default().loops(1));
    // An operator moves the file away and another server binds the path.
    std::fs::rename(&path, dir.path("old.sock")).unwrap();
    let other = UnixListener::bind(&path).unwrap();
    stop(engine);
    assert!(
        path.exists(),
        "the newer server's file survives our shutdown"
    );
    drop(other);
}

#[test]
fn file_mode_is_applied() {
    let dir = TempDir::new("unix-mode");
    let (url, path) = unix_url(&dir, "m.sock");
    let engine = start_on(
        Echo,
        &[&url],
        Options::default().loops(1).unix_socket_mode(Some(0o600)),
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    stop(engine);
    assert!(matches!(
        netloom::Engine::builder()
            .bind(&url)
            .options(Options::default().unix_socket_mode(Some(0o10000)))
            .start(Echo)
            .map(|_| ()),
        Err(Error::InvalidOption(_))
    ));
}

#[cfg(target_os = "linux")]
#[test]
fn abstract_names_serve_and_conflict() {
    let name = abstract_name("abs");
    let url = format!("unix://@{name}");
    let engine = start_on(Echo, &[&url], Options::default().loops(2));
    assert_eq!(
        engine.local_addrs(),
        &[Addr::Unix(UnixAddr::Abstract(name.clone().into_bytes()))]
    );
    let client = Client::connect(&engine.local_addrs()[0]);
    client_roundtrip(&client, &pattern(1, 1_000_000));
    let err = netloom::Engine::builder()
        .bind(&url)
        .start(Echo)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::AddrInUse(_)), "{err:?}");
    stop(engine);
}

#[cfg(not(target_os = "linux"))]
#[test]
fn abstract_names_are_refused_off_linux() {
    let err = netloom::Engine::builder()
        .bind("unix://@netloom-abstract")
        .start(Echo)
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("exist on Linux only"), "{err}");
}

/// Records what each connection says about its peer.
#[derive(Default)]
struct WhoIsThere {
    seen: Mutex<Vec<(Transport, Addr, Option<PeerCred>)>>,
}

impl Handler for WhoIsThere {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let cred = conn.peer_cred();
        if conn.transport() != Transport::Unix {
            assert!(matches!(cred, Err(Error::Unsupported(_))));
        }
        self.seen
            .lock()
            .unwrap()
            .push((conn.transport(), conn.peer_addr().clone(), cred.ok()));
        Action::None
    }
    fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
}

#[test]
fn peer_credentials_and_addresses() {
    let dir = TempDir::new("unix-cred");
    let (url, _) = unix_url(&dir, "c.sock");
    let who = Arc::new(WhoIsThere::default());
    let engine = start_on(
        who.clone(),
        &[&url, "tcp://127.0.0.1:0"],
        Options::default().loops(1),
    );
    let _unix = Client::connect(&engine.local_addrs()[0]);
    let _tcp = Client::connect(&engine.local_addrs()[1]);
    assert!(wait_until(Duration::from_secs(30), || who
        .seen
        .lock()
        .unwrap()
        .len()
        == 2));
    let seen = who.seen.lock().unwrap().clone();
    let unix = seen.iter().find(|s| s.0 == Transport::Unix).unwrap();
    assert_eq!(unix.1, Addr::Unix(UnixAddr::Unnamed));
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!(
        unix.2,
        Some(PeerCred {
            pid: std::process::id() as i32,
            uid,
            gid
        })
    );
    let tcp = seen.iter().find(|s| s.0 == Transport::Tcp).unwrap();
    assert!(tcp.1.inet().unwrap().ip().is_loopback());
    assert_eq!(tcp.2, None);
    stop(engine);
}
