//! Running out of descriptors: the acceptor backs off instead of spinning,
//! keeps serving the connections it has, and accepts again once fds free up.
//!
//! Alone in its binary: it lowers this process's open-file limit.
//!
//! Linux only: it counts this process's descriptors in `/proc/self/fd`.
#![cfg(target_os = "linux")]

mod util;

use std::time::{Duration, Instant};

use netloom::Options;
use util::*;

fn set_soft_fd_limit(n: u64) {
    // SAFETY: getrlimit/setrlimit read and write a plain rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = n;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills a plain rusage struct.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A roundtrip that opens no descriptor (no dup, no thread): small enough
/// for the socket buffers to hold while we write before reading.
fn small_roundtrip(stream: &std::net::TcpStream, data: &[u8]) {
    use std::io::{Read, Write};
    (&*stream).write_all(data).unwrap();
    let mut got = vec![0u8; data.len()];
    (&*stream).read_exact(&mut got).unwrap();
    assert!(got == data);
}

#[test]
fn emfile_backs_off_keeps_serving_and_recovers() {
    let hard = raise_fd_limit();
    // How many descriptors a started engine holds.
    let before = open_fds();
    let (probe, _) = start(Echo, Options::default().loops(1));
    let engine_fds = open_fds() - before;
    stop(probe);
    assert!(wait_until(Duration::from_secs(10), || open_fds() == before));

    // Create every client socket first, then leave room for the engine,
    // the first connection's server side and 5 more, and start the engine
    // under that limit (an io_uring accept takes the limit in force when
    // it is armed). Connecting needs no new fd, so only the server's
    // accepts run out.
    let sockets: Vec<_> = (0..21)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    set_soft_fd_limit((open_fds() + engine_fds + 1 + 5) as u64);
    let (engine, addr) = start(Echo, Options::default().loops(1));
    let mut connected = sockets.into_iter().map(|s| {
        s.connect(&addr.into()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        std::net::TcpStream::from(s)
    });
    let served = connected.next().unwrap();
    echo_roundtrip(&served, b"before");
    let pending: Vec<std::net::TcpStream> = connected.collect();
    std::thread::sleep(Duration::from_millis(300));

    // While starved, the process must stay mostly idle (no accept spin)...
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_millis(1000));
    let busy = (cpu_time() - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64();
    assert!(
        busy < 0.2,
        "acceptor spins at {:.0}% CPU while out of fds",
        busy * 100.0
    );
    // ...and keep serving the connection it has.
    small_roundtrip(&served, &pattern(1, 32 * 1024));
    assert!(
        engine.conn_count() < 21,
        "some connections wait for descriptors"
    );
    // Each failed accept is counted; the back-off keeps them few.
    let failed = engine.stats().total().errors.accept;
    assert!(
        (1..=50).contains(&failed),
        "{failed} failed accepts counted"
    );

    // Descriptors come back: every queued connection is accepted and served.
    set_soft_fd_limit(hard);
    assert!(
        wait_until(Duration::from_secs(30), || engine.conn_count() == 21),
        "accepting resumes after the back-off ({} of 21)",
        engine.conn_count()
    );
    for (i, c) in pending.iter().enumerate() {
        echo_roundtrip(c, &pattern(i as u64, 1000));
    }
    stop(engine);
}
