//! The io_uring completion path gives back what it lent the kernel: a
//! connection closed with its recv armed or a send in flight, a peer that
//! resets during a send, and an engine stopped with every connection's
//! multishot recv armed leave no descriptor open, and every ring buffer is
//! back when the loops stop (a loop that stops with buffers lent or
//! requests in flight fails debug builds: `stop` would see the panic).
//! The tests take turns (`SERIAL`): descriptor counts are per process.

#![cfg(target_os = "linux")]

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use netloom::{Action, Backend, Conn, Handler, Options};
use util::{connect, open_fds, raise_fd_limit, registry, start, stop, wait_until, Echo};

/// Writes `len` bytes of a pattern to every connection that sends a byte.
struct Flood {
    len: usize,
}

impl Handler for Flood {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.discard(usize::MAX);
        let chunk = vec![0x5a; 64 * 1024];
        for _ in 0..self.len / chunk.len() {
            if conn.write(&chunk).is_err() {
                return Action::Close;
            }
        }
        Action::None
    }
}

/// Held by each test: descriptor counts are per process.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn uring() -> Option<Options> {
    let options = Options::default().loops(1).backend(Backend::IoUring);
    match netloom::Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .options(options.clone())
        .start(Echo)
    {
        Ok(engine) => {
            stop(engine);
            Some(options)
        }
        Err(why) => {
            eprintln!("skipped: io_uring unavailable here: {why}");
            None
        }
    }
}

fn settles_to(baseline: usize) -> bool {
    let settled = wait_until(Duration::from_secs(10), || open_fds() == baseline);
    if !settled {
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            eprintln!(
                "{:?} -> {:?}",
                entry.path(),
                std::fs::read_link(entry.path())
            );
        }
    }
    settled
}

#[test]
fn requests_in_flight_are_cancelled_and_waited_for() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    raise_fd_limit();
    let baseline = open_fds();
    let Some(options) = uring() else {
        return;
    };

    // Closing connections whose multishot recv is armed (idle, closed by
    // their handles from another thread).
    let (reg, engine, addr) = registry(options.clone());
    let clients: Vec<TcpStream> = (0..50).map(|_| connect(addr)).collect();
    assert!(wait_until(Duration::from_secs(10), || reg
        .opened
        .lock()
        .unwrap()
        .len()
        == 50));
    for (handle, _) in reg.opened.lock().unwrap().iter() {
        handle.close().unwrap();
    }
    for mut client in &clients {
        let mut byte = [0u8; 1];
        assert_eq!(client.read(&mut byte).unwrap(), 0, "EOF after the close");
    }
    drop(clients);
    assert!(wait_until(Duration::from_secs(10), || engine.conn_count() == 0));
    stop(engine);
    // The handles hold the loop's inbox (and its eventfd).
    drop(reg);
    assert!(
        settles_to(baseline),
        "{} fds, {baseline} before",
        open_fds()
    );

    // Closing connections with a send in flight: the peers never read, so
    // 8 MiB each cannot all leave; the close timeout ends them mid-send.
    let (engine, addr) = start(
        Flood { len: 8 << 20 },
        options.clone().close_timeout(Duration::from_millis(200)),
    );
    let mut clients: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
    for client in &mut clients {
        client.write_all(b"x").unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(10), || engine
            .stats()
            .total()
            .outbound_queued_bytes
            >= 20 * (4 << 20)),
        "the sends are stuck in flight"
    );
    // The peers still hold their sockets: the engine gives up on them
    // after the close timeout.
    stop(engine);
    drop(clients);
    assert!(
        settles_to(baseline),
        "{} fds, {baseline} before",
        open_fds()
    );

    // A peer that resets during a send.
    let (engine, addr) = start(Flood { len: 8 << 20 }, options.clone());
    for _ in 0..20 {
        let mut client = connect(addr);
        client.write_all(b"x").unwrap();
        let mut some = [0u8; 64 * 1024];
        client.read_exact(&mut some).unwrap();
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        // Closing with unread bytes and a zero linger sends a reset.
    }
    assert!(wait_until(Duration::from_secs(10), || engine.conn_count() == 0));
    stop(engine);
    assert!(
        settles_to(baseline),
        "{} fds, {baseline} before",
        open_fds()
    );

    // Stopping an engine with 2,000 multishot recvs armed, after traffic.
    let (engine, addr) = start(Echo, options.loops(2));
    let clients: Vec<TcpStream> = (0..2000).map(|_| connect(addr)).collect();
    for (i, mut client) in clients.iter().enumerate() {
        let msg = format!("hello {i}\n");
        client.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    stop(engine);
    for mut client in &clients {
        let mut byte = [0u8; 1];
        assert_eq!(client.read(&mut byte).unwrap(), 0, "EOF at stop");
    }
    drop(clients);
    assert!(
        settles_to(baseline),
        "{} fds, {baseline} before",
        open_fds()
    );
}

/// A thread that started an engine is not interrupted when the engine
/// stops: its blocking reads (with a timeout, which the kernel does not
/// restart) see no spurious `EINTR` when the loops' rings are torn down.
#[test]
fn stopping_an_engine_interrupts_no_thread_of_the_caller() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(options) = uring() else {
        return;
    };
    for _ in 0..5 {
        let (engine, addr) = start(Echo, options.clone().loops(2));
        let quiet = connect(addr);
        quiet
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stop(engine);
        });
        // Blocks until the stop closes the connection (EOF), or times out.
        let mut byte = [0u8; 1];
        match (&quiet).read(&mut byte) {
            Ok(0) => {}
            Ok(n) => panic!("{n} unexpected bytes"),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::Interrupted, "{e}"),
        }
        stopper.join().unwrap();
    }
}
