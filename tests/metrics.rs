//! `Engine::stats`: known traffic through an echo engine on loopback, and
//! the exact counts it must leave behind; failures counted by kind.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use netloom::{Action, Client, Conn, ConnHandle, Engine, Handler, LoopStats, Options};
use util::{connect, echo_roundtrip, pattern, start, stop, wait_until, Echo};

const CONNS: usize = 6;
const CLOSED: usize = 2;
const BYTES_EACH: usize = 10_000;
const HIGH_WATER: usize = 64 << 10;
const WAIT: Duration = Duration::from_secs(10);

fn total(engine: &Engine) -> LoopStats {
    engine.stats().total()
}

/// Writes to `stream` (never reading) until the kernel takes no more for
/// a while: the server's outbound queue then holds the rest. Returns the
/// bytes written.
fn write_until_blocked(mut stream: &std::net::TcpStream) -> usize {
    stream.set_nonblocking(true).unwrap();
    let chunk = pattern(99, 64 << 10);
    let (mut written, mut stalled_since) = (0, None::<Instant>);
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match stream.write(&chunk) {
            Ok(n) => {
                written += n;
                stalled_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    return written;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    panic!("the server kept reading a peer that does not read");
}

#[test]
fn counts_connections_bytes_backpressure_and_closes_exactly() {
    let options = Options::default()
        .loops(2)
        .high_water(HIGH_WATER)
        .low_water(HIGH_WATER / 4)
        .send_buffer_size(Some(64 << 10))
        .recv_buffer_size(Some(64 << 10));
    let (engine, addr) = start(Echo, options);
    let started = Instant::now();
    assert_eq!(engine.stats().loops().len(), 2);
    let s = total(&engine);
    assert_eq!((s.accepted, s.open_connections, s.bytes_read), (0, 0, 0));

    // N connections, K bytes each, echoed and checked byte for byte.
    let clients: Vec<_> = (0..CONNS).map(|_| connect(addr)).collect();
    for (i, c) in clients.iter().enumerate() {
        echo_roundtrip(c, &pattern(i as u64, BYTES_EACH));
    }
    // Written bytes are counted as the loop settles a connection, just
    // after the kernel took them.
    let all = (CONNS * BYTES_EACH) as u64;
    assert!(wait_until(WAIT, || total(&engine).bytes_written == all));
    let s = total(&engine);
    assert_eq!(s.accepted, CONNS as u64);
    assert_eq!(s.open_connections, CONNS as u64);
    assert_eq!(s.bytes_read, (CONNS * BYTES_EACH) as u64);
    assert_eq!(s.bytes_written, (CONNS * BYTES_EACH) as u64);
    assert_eq!(
        (s.closed, s.outbound_queued_bytes, s.backpressure_paused),
        (0, 0, 0)
    );
    let per_loop: u64 = engine.stats().loops().iter().map(|l| l.accepted).sum();
    assert_eq!(per_loop, CONNS as u64, "loops add up to the total");

    // Some close: the peer's FIN, then ours.
    let mut clients = clients.into_iter();
    for c in clients.by_ref().take(CLOSED) {
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        (&c).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
    assert!(
        wait_until(WAIT, || total(&engine).closed == CLOSED as u64),
        "closes counted: {:?}",
        total(&engine)
    );
    let s = total(&engine);
    assert_eq!(s.open_connections, (CONNS - CLOSED) as u64);
    assert_eq!(s.errors, Default::default(), "orderly closes are no errors");

    // One peer that does not read: its connection fills up and pauses.
    let stuck = connect(addr);
    let sent = write_until_blocked(&stuck) as u64;
    assert!(
        wait_until(WAIT, || total(&engine).backpressure_paused == 1),
        "paused by backpressure: {:?}",
        total(&engine)
    );
    let s = total(&engine);
    assert_eq!(s.accepted, CONNS as u64 + 1);
    // Paused once the queue passed the high water mark; it stays paused
    // until the queue falls under the low one, and meanwhile the kernel may
    // take more (the peer's receive window can still grow).
    assert!(s.outbound_queued_bytes > (HIGH_WATER / 4) as u64, "{s:?}");
    // What the echo read, it either sent or still queues.
    let stuck_read = s.bytes_read - (CONNS * BYTES_EACH) as u64;
    let stuck_written = s.bytes_written - (CONNS * BYTES_EACH) as u64;
    assert_eq!(stuck_read, stuck_written + s.outbound_queued_bytes);
    assert!(stuck_read <= sent, "read {stuck_read} of {sent} sent");
    assert_eq!(s.inbox_depth, 0);

    // The stuck peer goes away with unread bytes: a reset, an I/O error.
    socket2::SockRef::from(&stuck)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stuck);
    assert!(
        wait_until(WAIT, || total(&engine).closed == CLOSED as u64 + 1),
        "the reset connection closes: {:?}",
        total(&engine)
    );
    let s = total(&engine);
    assert_eq!((s.outbound_queued_bytes, s.backpressure_paused), (0, 0));
    assert_eq!(s.open_connections, (CONNS - CLOSED) as u64);
    assert_eq!(s.errors.io, 1, "{:?}", s.errors);

    assert!(s.busy > Duration::ZERO);
    assert!(s.busy <= started.elapsed() * 2, "busy {:?}", s.busy);
    let mut text = String::new();
    engine.stats().write_prometheus(&mut text).unwrap();
    let line = format!(
        "netloom_accepted_connections_total{{loop=\"0\"}} {}\n",
        engine.stats().loops()[0].accepted
    );
    assert!(text.contains(&line), "{text}");
    drop(clients);
    stop(engine);
}

#[test]
fn counts_timeouts_and_failed_connects_by_kind() {
    let idle = Options::default()
        .loops(1)
        .idle_timeout(Some(Duration::from_millis(100)));
    let (engine, addr) = start(Echo, idle);
    let quiet = connect(addr);
    let mut rest = Vec::new();
    (&quiet)
        .read_to_end(&mut rest)
        .expect("the idle connection is closed");
    assert!(
        wait_until(WAIT, || total(&engine).closed == 1),
        "{:?}",
        total(&engine)
    );
    let s = total(&engine);
    assert_eq!((s.accepted, s.errors.timeout), (1, 1), "{s:?}");
    stop(engine);

    // A port nobody listens on: bind one, note it, close it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let client = Client::start(Echo, Options::default().loops(1)).unwrap();
    let dialed = client.dial_wait(&format!("tcp://127.0.0.1:{port}"), (), WAIT);
    assert!(dialed.is_err());
    let engine = client.engine().clone();
    assert!(wait_until(WAIT, || total(&engine).closed == 1));
    let s = total(&engine);
    assert_eq!((s.dialed, s.accepted, s.open_connections), (1, 0, 0));
    assert_eq!(s.errors.connect, 1, "{:?}", s.errors);
    client.stop();
    client.wait().unwrap();
}

/// Publishes each connection's handle; a connection that sends `block`
/// holds its loop in `on_traffic` until the test releases it.
#[derive(Default)]
struct Blocker {
    handles: Mutex<Vec<ConnHandle<()>>>,
    blocking: AtomicBool,
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

impl Handler for Blocker {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        self.handles.lock().unwrap().push(conn.handle());
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.next(usize::MAX) == b"block" {
            self.blocking.store(true, Ordering::SeqCst);
            if let Some(release) = self.release.lock().unwrap().take() {
                let _ = release.recv_timeout(WAIT);
            }
        }
        Action::None
    }
}

#[test]
fn inbox_depth_counts_messages_the_loop_has_not_taken() {
    let (release, released) = mpsc::channel();
    let blocker = Arc::new(Blocker {
        release: Mutex::new(Some(released)),
        ..Blocker::default()
    });
    let (engine, addr) = start(blocker.clone(), Options::default().loops(1));
    let mut client = connect(addr);
    assert!(wait_until(WAIT, || blocker.handles.lock().unwrap().len() == 1));
    let handle = blocker.handles.lock().unwrap()[0].clone();
    client.write_all(b"block").unwrap();
    assert!(wait_until(WAIT, || blocker.blocking.load(Ordering::SeqCst)));

    // The loop is held in a callback: handle writes wait in its inbox, and
    // a task spawned on it in its executor's.
    for byte in [b'x', b'y', b'z'] {
        handle.async_write(vec![byte]).unwrap();
    }
    let task = engine.runtime().spawn_on(0, async { 6 * 7 });
    assert_eq!(total(&engine).inbox_depth, 4);

    release.send(()).unwrap();
    assert_eq!(engine.runtime().block_on(task), Ok(42));
    let mut got = [0u8; 3];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"xyz");
    // Counted as the loop settles the connection, just after the kernel
    // took the bytes.
    assert!(wait_until(WAIT, || total(&engine).bytes_written == 3));
    assert_eq!(total(&engine).inbox_depth, 0);
    drop(client);
    stop(engine);
}
