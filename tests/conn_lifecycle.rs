//! Backpressure, graceful stop, panics, ticker, idle timeout, lifecycle order.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netloom::{Action, Conn, Engine, Error, Handler, Options};
use util::*;

/// Echo that records the largest outbound backlog it ever saw.
#[derive(Default)]
struct MeasuringEcho {
    max_outbound: AtomicUsize,
}

impl Handler for MeasuringEcho {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        Echo.on_traffic(conn);
        self.max_outbound
            .fetch_max(conn.outbound_len(), Ordering::Relaxed);
        Action::None
    }
}

#[test]
fn slow_reader_cannot_grow_server_memory() {
    let high = 256 * 1024;
    let read_buf = 64 * 1024;
    let probe = Arc::new(MeasuringEcho::default());
    let (engine, addr) = start(
        probe.clone(),
        Options::default()
            .loops(1)
            .high_water(high)
            .low_water(64 * 1024)
            .read_buffer_size(read_buf),
    );
    let stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Write without reading until the server stops taking bytes.
    let chunk = vec![5u8; 64 * 1024];
    let mut sent = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        match writer.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // the write timed out: backpressure reached us
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the server kept reading"
    );
    let max = probe.max_outbound.load(Ordering::Relaxed);
    assert!(max <= high + read_buf, "outbound grew to {max}");
    // Now read everything back: nothing was lost.
    writer.set_write_timeout(None).unwrap();
    let mut got = vec![0u8; sent];
    (&stream).read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == 5));
    stop(engine);
}

/// Sends a big greeting, records closes and shutdowns.
#[derive(Default)]
struct Greeter {
    closes: Mutex<Vec<Option<String>>>,
    shutdowns: AtomicUsize,
}

const GREETING: usize = 8 * 1024 * 1024;

impl Handler for Greeter {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.write(&pattern(1, GREETING)).unwrap();
        Action::None
    }
    fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        self.closes.lock().unwrap().push(err.map(|e| e.to_string()));
        Action::None
    }
    fn on_shutdown(&self, engine: &Engine) {
        assert_eq!(
            engine.conn_count(),
            0,
            "on_shutdown comes after every close"
        );
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn graceful_stop_flushes_pending_data_then_closes() {
    let greeter = Arc::new(Greeter::default());
    // A grace far beyond any scheduling delay: the flush, not the grace
    // timer, ends every connection.
    let (engine, addr) = start(
        greeter.clone(),
        Options::default()
            .loops(2)
            .shutdown_grace(Duration::from_secs(120)),
    );
    let clients: Vec<_> = (0..4).map(|_| connect(addr)).collect();
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 4));
    // 8 MiB greetings do not fit in the socket buffers: most are queued.
    engine.stop();
    std::thread::scope(|s| {
        for c in &clients {
            s.spawn(move || {
                let mut got = Vec::new();
                (&*c).read_to_end(&mut got).unwrap();
                assert!(
                    got == pattern(1, GREETING),
                    "every queued byte arrives before FIN"
                );
            });
        }
    });
    let waiter = engine.clone();
    stop(waiter);
    assert_eq!(greeter.closes.lock().unwrap().len(), 4);
    assert!(greeter.closes.lock().unwrap().iter().all(Option::is_none));
    assert_eq!(greeter.shutdowns.load(Ordering::SeqCst), 1);
    assert!(TcpConnectFails(addr).check());
}

struct TcpConnectFails(std::net::SocketAddr);
impl TcpConnectFails {
    fn check(&self) -> bool {
        std::net::TcpStream::connect_timeout(&self.0, Duration::from_secs(1)).is_err()
    }
}

#[test]
fn stop_gives_up_after_the_grace_period_when_the_peer_never_reads() {
    let greeter = Arc::new(Greeter::default());
    let (engine, addr) = start(
        greeter.clone(),
        Options::default()
            .loops(1)
            .shutdown_grace(Duration::from_millis(300)),
    );
    let _silent = connect(addr);
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 1));
    // `stop` fails the test unless the engine stops within 10 s: it does
    // not wait for the silent peer, and says why it closed.
    stop(engine);
    let closes = greeter.closes.lock().unwrap();
    assert!(
        closes[0].as_deref().unwrap_or("").contains("timed out"),
        "{closes:?}"
    );
}

/// Panics on the exact message `PANIC!`, echoes otherwise.
#[derive(Default)]
struct Fragile {
    errors: Mutex<Vec<String>>,
}

impl Handler for Fragile {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.peek(usize::MAX) == b"PANIC!" {
            panic!("boom");
        }
        Echo.on_traffic(conn)
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        if let Some(e) = err {
            self.errors.lock().unwrap().push(e.to_string());
        }
        Action::None
    }
}

#[test]
fn a_panicking_callback_closes_only_its_connection() {
    let fragile = Arc::new(Fragile::default());
    let (engine, addr) = start(fragile.clone(), Options::default().loops(1));
    let good = connect(addr);
    let mut bad = connect(addr);
    echo_roundtrip(&good, b"before");
    bad.write_all(b"PANIC!").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        bad.read(&mut buf).unwrap_or(0),
        0,
        "the panicking connection is closed"
    );
    echo_roundtrip(&good, &pattern(4, 100_000));
    assert!(wait_until(Duration::from_secs(30), || fragile
        .errors
        .lock()
        .unwrap()
        .len()
        == 1));
    assert_eq!(fragile.errors.lock().unwrap()[0], "callback panicked: boom");
    stop(engine);
}

/// Counts ticks; asks to shut down on the fifth.
#[derive(Default)]
struct Ticker {
    ticks: Mutex<Vec<(Instant, Option<String>)>>,
}

impl Handler for Ticker {
    type Context = ();
    fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
    fn on_tick(&self, _: &Engine) -> (Duration, Action) {
        let mut ticks = self.ticks.lock().unwrap();
        ticks.push((
            Instant::now(),
            std::thread::current().name().map(str::to_string),
        ));
        let action = if ticks.len() == 5 {
            Action::Shutdown
        } else {
            Action::None
        };
        (Duration::from_millis(30), action)
    }
}

#[test]
fn ticker_runs_on_loop_zero_at_the_returned_delay_and_can_shut_down() {
    let ticker = Arc::new(Ticker::default());
    let engine = Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .options(Options::default().loops(2).ticker(true))
        .start(ticker.clone())
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(engine.wait()));
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the fifth tick stops the engine")
        .unwrap();
    let ticks = ticker.ticks.lock().unwrap();
    assert_eq!(ticks.len(), 5);
    for pair in ticks.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(29), "tick came early: {gap:?}");
    }
    assert!(ticks
        .iter()
        .all(|(_, name)| name.as_deref() == Some("netloom-loop-0")));
}

#[test]
fn idle_connections_are_closed_and_active_ones_kept() {
    let fragile = Arc::new(Fragile::default());
    // The active connection is never quiet for more than a few ms of its
    // 2 s allowance, unless the machine stalls this thread for ~2 s.
    let (engine, addr) = start(
        fragile.clone(),
        Options::default()
            .loops(1)
            .idle_timeout(Some(Duration::from_secs(2))),
    );
    let mut idle = connect(addr);
    idle.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let active = connect(addr);
    let mut buf = [0u8; 1];
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut round = 0;
    let closed = loop {
        echo_roundtrip(&active, &pattern(round, 10));
        round += 1;
        match idle.read(&mut buf) {
            Ok(n) => {
                assert_eq!(n, 0, "the idle connection got bytes");
                break true;
            }
            // Still open: the read timed out.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > give_up {
                    break false;
                }
            }
            Err(_) => break true,
        }
    };
    assert!(closed, "the idle connection was never closed");
    echo_roundtrip(&active, b"still here");
    assert_eq!(fragile.errors.lock().unwrap().as_slice(), ["idle timeout"]);
    stop(engine);
}

/// Closes after answering; tests that `Action::Close` flushes first.
struct AnswerThenClose;
impl Handler for AnswerThenClose {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.discard(usize::MAX);
        conn.write(&pattern(2, 4 * 1024 * 1024)).unwrap();
        Action::Close
    }
}

#[test]
fn close_action_flushes_before_closing() {
    let (engine, addr) = start(AnswerThenClose, Options::default().loops(1));
    let mut c = connect(addr);
    c.write_all(b"go").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert!(got == pattern(2, 4 * 1024 * 1024));
    stop(engine);
}

/// Keeps a per-connection typed context and half-closes on request.
struct Counter;
impl Handler for Counter {
    type Context = u32;
    fn on_traffic(&self, conn: &mut Conn<'_, u32>) -> Action {
        let n = conn.discard(usize::MAX) as u32;
        *conn.context_mut() += n;
        if *conn.context() >= 10 {
            let total = conn.context().to_string();
            conn.write(total.as_bytes()).unwrap();
            conn.shutdown_write();
        }
        Action::None
    }
}

#[test]
fn typed_context_and_shutdown_write() {
    let (engine, addr) = start(Counter, Options::default().loops(1));
    let mut c = connect(addr);
    for _ in 0..10 {
        c.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap(); // the server's FIN ends this
    assert_eq!(got, "10");
    // Our side is still open: the server still reads until we close.
    c.write_all(b"more").unwrap();
    drop(c);
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 0));
    stop(engine);
}

/// Never consumes anything.
#[derive(Default)]
struct Hoarder {
    errors: Mutex<Vec<String>>,
}

impl Handler for Hoarder {
    type Context = ();
    fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action {
        Action::None
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        self.errors
            .lock()
            .unwrap()
            .push(err.map(|e| e.to_string()).unwrap_or_default());
        Action::None
    }
}

#[test]
fn unconsumed_inbound_bytes_are_bounded() {
    let hoarder = Arc::new(Hoarder::default());
    let (engine, addr) = start(
        hoarder.clone(),
        Options::default().loops(1).max_inbound(1024 * 1024),
    );
    let mut c = connect(addr);
    // The server closes the connection once it holds over 1 MiB; our writes
    // then fail, or the data is absorbed by socket buffers and the close wins.
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..64 {
        if c.write_all(&chunk).is_err() {
            break;
        }
    }
    assert!(wait_until(Duration::from_secs(30), || hoarder
        .errors
        .lock()
        .unwrap()
        .len()
        == 1));
    assert!(hoarder.errors.lock().unwrap()[0].contains("exceed the limit of 1048576"));
    stop(engine);
}
