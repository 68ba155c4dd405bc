//! Black-box tests of `examples/echo.rs` and `examples/echo_async.rs`, run
//! as separate processes: the suite the core issue asks the echo example to
//! pass, at full scale, and the async issue asks its echo to pass too.
//!
//! The server's descriptors and memory are read from `/proc/<pid>/`, so a
//! leak shows up as descriptors or resident memory that stay after the
//! connections are gone. Hence Linux only.
#![cfg(target_os = "linux")]

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use util::{connect, pattern, raise_fd_limit, wait_until, ExampleServer};

/// A deterministic byte stream of any length: 1 MiB blocks of one pattern,
/// each starting with its block number, so a lost, repeated or reordered
/// block is caught as well as a flipped byte.
struct StreamPattern {
    block: Vec<u8>,
}

impl StreamPattern {
    const BLOCK: usize = 1 << 20;

    fn new(seed: u64) -> Self {
        StreamPattern {
            block: pattern(seed, Self::BLOCK),
        }
    }

    /// The bytes at stream offsets `offset..offset + buf.len()`.
    fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let in_block = (at % Self::BLOCK as u64) as usize;
            let n = (Self::BLOCK - in_block).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            out.copy_from_slice(&self.block[in_block..in_block + n]);
            // The first 8 bytes of every block carry its number.
            let number = (at / Self::BLOCK as u64).to_le_bytes();
            for (i, byte) in out
                .iter_mut()
                .enumerate()
                .take(8usize.saturating_sub(in_block))
            {
                *byte = number[in_block + i];
            }
            done += n;
        }
    }

    /// Whether `buf` holds exactly the bytes at `offset`.
    fn matches(&self, offset: u64, buf: &[u8], scratch: &mut Vec<u8>) -> bool {
        scratch.resize(buf.len(), 0);
        self.fill(offset, scratch);
        scratch[..] == *buf
    }
}

/// Writes `len` bytes of `pattern` to `stream` (on its own thread) while the
/// caller reads them back; returns the writer's progress counter.
fn spawn_writer(
    stream: &TcpStream,
    seed: u64,
    len: u64,
) -> (std::thread::JoinHandle<()>, Arc<AtomicU64>) {
    let mut writer = stream.try_clone().unwrap();
    writer.set_write_timeout(None).unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let progress = written.clone();
    let thread = std::thread::spawn(move || {
        let pattern = StreamPattern::new(seed);
        let mut chunk = vec![0; 256 * 1024];
        let mut offset = 0;
        while offset < len {
            let n = chunk.len().min((len - offset) as usize);
            pattern.fill(offset, &mut chunk[..n]);
            writer.write_all(&chunk[..n]).unwrap();
            offset += n as u64;
            progress.store(offset, Ordering::Relaxed);
        }
    });
    (thread, written)
}

/// Reads `len` bytes from `stream` and checks each against `pattern(seed)`.
fn read_and_verify(stream: &TcpStream, seed: u64, len: u64) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let pattern = StreamPattern::new(seed);
    let mut buf = vec![0; 256 * 1024];
    let mut scratch = Vec::new();
    let mut offset = 0;
    while offset < len {
        let want = buf.len().min((len - offset) as usize);
        let n = (&*stream).read(&mut buf[..want]).unwrap();
        assert!(n > 0, "EOF after {offset} of {len} bytes");
        assert!(
            pattern.matches(offset, &buf[..n], &mut scratch),
            "echo differs within bytes {offset}..{}",
            offset + n as u64
        );
        offset += n as u64;
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn server_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn start_echo(example: &str, extra: &[&str]) -> (ExampleServer, SocketAddr, usize) {
    let mut args = vec!["--addr", "tcp://127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = ExampleServer::start(example, &args);
    let addr = server.addr;
    let fds = server_fds(server.child.id());
    (server, addr, fds)
}

/// Waits until the server holds `fds` descriptors again: every connection
/// is closed and nothing leaked.
fn assert_fds_return_to(pid: u32, fds: usize) {
    let back = wait_until(Duration::from_secs(10), || server_fds(pid) == fds);
    assert!(
        back,
        "server holds {} descriptors, {fds} at start",
        server_fds(pid)
    );
}

fn thousand_concurrent_connections_echo_byte_exact(example: &str) {
    raise_fd_limit();
    let (server, addr, fds) = start_echo(example, &["--loops", "2"]);
    let threads: Vec<_> = (0..10u64)
        .map(|t| {
            std::thread::spawn(move || {
                let conns: Vec<_> = (0..100).map(|_| connect(addr)).collect();
                for round in 0..8u64 {
                    let messages: Vec<_> = (0..100u64)
                        .map(|c| {
                            pattern(
                                t * 100_000 + c * 100 + round,
                                1024 + (c as usize * 61) % 7000,
                            )
                        })
                        .collect();
                    for (conn, message) in conns.iter().zip(&messages) {
                        (&*conn).write_all(message).unwrap();
                    }
                    for (conn, message) in conns.iter().zip(&messages) {
                        let mut back = vec![0; message.len()];
                        (&*conn).read_exact(&mut back).unwrap();
                        assert!(back == *message, "thread {t} round {round} differs");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_fds_return_to(server.child.id(), fds);
    assert!(server.terminate().success());
}

fn a_256_mib_stream_echoes_byte_exact(example: &str) {
    let (server, addr, _) = start_echo(example, &["--loops", "1"]);
    let stream = connect(addr);
    let len = 256 << 20;
    let (writer, _) = spawn_writer(&stream, 7, len);
    read_and_verify(&stream, 7, len);
    writer.join().unwrap();
    assert!(server.terminate().success());
}

fn a_client_that_does_not_read_for_20_s_while_writing_1_gib_bounds_server_memory(example: &str) {
    let (server, addr, _) = start_echo(example, &["--loops", "1"]);
    let pid = server.child.id();
    let rss_before = proc_status_kib(pid, "VmRSS:");
    let stream = connect(addr);
    let len = 1 << 30;
    let (writer, written) = spawn_writer(&stream, 11, len);
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed() < Duration::from_secs(20) {
        peak_rss = peak_rss.max(proc_status_kib(pid, "VmRSS:"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let stalled_at = written.load(Ordering::Relaxed);
    eprintln!(
        "not reading for 20 s: writer stalled at {stalled_at} bytes; \
         server RSS {rss_before} KiB before, {peak_rss} KiB at peak"
    );
    // Backpressure: once the kernel buffers and the server's high-water
    // mark are full, the server stops reading, so the writer stalls.
    assert!(
        stalled_at < 128 << 20,
        "writer got {stalled_at} bytes out while nobody read"
    );
    assert!(
        peak_rss < rss_before + 32 * 1024,
        "server RSS grew from {rss_before} KiB to {peak_rss} KiB"
    );
    read_and_verify(&stream, 11, len);
    writer.join().unwrap();
    assert!(server.terminate().success());
}

fn half_close_after_16_mib_gets_every_byte_then_eof(example: &str) {
    let (server, addr, fds) = start_echo(example, &["--loops", "1"]);
    let stream = connect(addr);
    let len = 16 << 20;
    let (writer, _) = spawn_writer(&stream, 3, len);
    let reader = {
        let stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            read_and_verify(&stream, 3, len);
            let mut rest = Vec::new();
            (&stream).read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
        })
    };
    writer.join().unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    reader.join().unwrap();
    drop(stream);
    assert_fds_return_to(server.child.id(), fds);
    assert!(server.terminate().success());
}

fn resets_mid_exchange_leave_the_server_serving_and_leak_nothing(example: &str) {
    let (server, addr, fds) = start_echo(example, &["--loops", "2"]);
    for round in 0..10u64 {
        let conns: Vec<_> = (0..50).map(|_| connect(addr)).collect();
        for (i, conn) in conns.iter().enumerate() {
            let data = pattern(round * 50 + i as u64, 256 * 1024);
            conn.set_nonblocking(true).unwrap();
            // As much as the socket takes at once, then a reset while the
            // server is still echoing it.
            match (&*conn).write(&data) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        for conn in conns {
            socket2::SockRef::from(&conn)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
    }
    let probe = connect(addr);
    util::echo_roundtrip(&probe, &pattern(99, 1 << 20));
    drop(probe);
    assert_fds_return_to(server.child.id(), fds);
    assert!(server.terminate().success());
}

fn twenty_thousand_connect_close_cycles_and_ten_thousand_idle_connections_leak_nothing(
    example: &str,
) {
    // 10,000 client sockets each: two examples' runs at once would pass the
    // process's 20,000-descriptor limit.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    raise_fd_limit();
    let (server, addr, fds) = start_echo(example, &["--loops", "2"]);
    let pid = server.child.id();

    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..5000u64 {
                    let conn = connect(addr);
                    let data = (t * 5000 + i).to_le_bytes();
                    (&conn).write_all(&data).unwrap();
                    let mut back = [0; 8];
                    (&conn).read_exact(&mut back).unwrap();
                    assert_eq!(back, data);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_fds_return_to(pid, fds);

    // Two rounds of 10,000 idle connections: the second must not need more
    // memory than the first (nothing kept per closed connection).
    let mut rss_after_round = Vec::new();
    for round in 0..2 {
        let conns: Vec<_> = (0..10_000).map(|_| connect(addr)).collect();
        assert!(
            wait_until(Duration::from_secs(10), || server_fds(pid) == fds + 10_000),
            "server holds {} descriptors with 10,000 connections open",
            server_fds(pid)
        );
        // Every one of them is served.
        for (i, conn) in conns.iter().enumerate() {
            let byte = [(i + round) as u8];
            (&*conn).write_all(&byte).unwrap();
            let mut back = [0];
            (&*conn).read_exact(&mut back).unwrap();
            assert_eq!(back, byte);
        }
        rss_after_round.push(proc_status_kib(pid, "VmRSS:"));
        drop(conns);
        assert_fds_return_to(pid, fds);
    }
    eprintln!("server RSS with 10,000 idle connections: {rss_after_round:?} KiB per round");
    assert!(
        rss_after_round[1] <= rss_after_round[0] + 2048,
        "server RSS with 10,000 connections grew from {} KiB to {} KiB between rounds",
        rss_after_round[0],
        rss_after_round[1]
    );
    assert!(server.terminate().success());
}

/// The suite once per echo example: callbacks, and one task per connection.
macro_rules! echo_suite {
    ($($module:ident => $example:literal),*) => {$(
        mod $module {
            #[test]
            fn thousand_concurrent_connections_echo_byte_exact() {
                super::thousand_concurrent_connections_echo_byte_exact($example);
            }

            #[test]
            fn a_256_mib_stream_echoes_byte_exact() {
                super::a_256_mib_stream_echoes_byte_exact($example);
            }

            #[test]
            fn a_client_that_does_not_read_for_20_s_while_writing_1_gib_bounds_server_memory() {
                super::a_client_that_does_not_read_for_20_s_while_writing_1_gib_bounds_server_memory($example);
            }

            #[test]
            fn half_close_after_16_mib_gets_every_byte_then_eof() {
                super::half_close_after_16_mib_gets_every_byte_then_eof($example);
            }

            #[test]
            fn resets_mid_exchange_leave_the_server_serving_and_leak_nothing() {
                super::resets_mid_exchange_leave_the_server_serving_and_leak_nothing($example);
            }

            #[test]
            fn twenty_thousand_connect_close_cycles_and_ten_thousand_idle_connections_leak_nothing() {
                super::twenty_thousand_connect_close_cycles_and_ten_thousand_idle_connections_leak_nothing($example);
            }
        }
    )*};
}

echo_suite!(callback => "echo", async_tasks => "echo_async");

#[test]
fn a_second_echo_on_the_same_udp_port_exits_with_address_in_use() {
    let first = ExampleServer::start("echo", &["--addr", "udp://127.0.0.1:0", "--loops", "2"]);
    let url = format!("udp://{}", first.addr);
    let mut second = std::process::Command::new(util::example_binary("echo"))
        .args(["--addr", &url, "--loops", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("echo runs");
    let exited = wait_until(Duration::from_secs(20), || {
        second.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = second.kill();
        let _ = second.wait();
        panic!("a second echo started on {url}");
    }
    let second = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("in use"), "stderr: {stderr}");
    // The first still answers every datagram.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..10 {
        let data = pattern(i, 100);
        client.send_to(&data, first.addr).unwrap();
        let mut buf = [0u8; 100];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((from, &buf[..n]), (first.addr, &data[..]));
    }
    assert!(first.terminate().success());
}
