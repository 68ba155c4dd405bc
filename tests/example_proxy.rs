//! Black-box tests of `examples/proxy.rs` in front of `examples/echo.rs`:
//! integrity through the pair, memory bounded under a slow consumer, and a
//! backend that cannot be reached. Linux only: the proxy's memory is read
//! from `/proc/<pid>/status`.
#![cfg(target_os = "linux")]

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use util::{connect, pattern, ExampleServer};

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn proxy_in_front_of_echo() -> (ExampleServer, ExampleServer) {
    let echo = ExampleServer::start("echo", &["--addr", "tcp://127.0.0.1:0", "--loops", "1"]);
    let backend = echo.addr.to_string();
    let proxy = ExampleServer::start(
        "proxy",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--upstream",
            &backend,
            "--loops",
            "2",
        ],
    );
    (echo, proxy)
}

#[test]
fn fifty_clients_echo_byte_exact_through_the_proxy() {
    let (echo, proxy) = proxy_in_front_of_echo();
    let addr = proxy.addr;
    let threads: Vec<_> = (0..50u64)
        .map(|i| {
            std::thread::spawn(move || {
                let stream = connect(addr);
                util::echo_roundtrip(&stream, &pattern(i, 1 << 20));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(proxy.terminate().success());
    assert!(echo.terminate().success());
}

#[test]
fn a_slow_consumer_slows_the_backend_instead_of_growing_proxy_memory() {
    let (echo, proxy) = proxy_in_front_of_echo();
    let pid = proxy.child.id();
    let rss_before = vm_rss_kib(pid);
    let stream = connect(proxy.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let total = 64 << 20;
    let data = pattern(5, total);
    let mut writer = stream.try_clone().unwrap();
    writer.set_write_timeout(None).unwrap();
    let sent = data.clone();
    let write = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    // Read 64 KiB every 2 ms: about 30 MB/s, far below what the proxy
    // and the echo server can push.
    let mut received = Vec::with_capacity(total);
    let mut buf = vec![0; 64 * 1024];
    let mut peak = 0;
    let started = Instant::now();
    while received.len() < total {
        let n = (&stream).read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {} bytes", received.len());
        received.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(2));
        peak = peak.max(vm_rss_kib(pid));
    }
    write.join().unwrap();
    eprintln!(
        "slow consumer: 64 MiB in {:?}; proxy RSS {rss_before} KiB before, {peak} KiB at peak",
        started.elapsed()
    );
    assert!(received == data, "bytes differ through the proxy");
    assert!(
        peak < rss_before + 8 * 1024,
        "proxy RSS grew from {rss_before} KiB to {peak} KiB"
    );
    assert!(proxy.terminate().success());
    assert!(echo.terminate().success());
}

#[test]
fn an_unreachable_backend_closes_the_client_connection() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let proxy = ExampleServer::start(
        "proxy",
        &["--addr", "tcp://127.0.0.1:0", "--upstream", &closed],
    );
    let stream = connect(proxy.addr);
    let _ = (&stream).write_all(b"hello");
    let mut rest = Vec::new();
    let started = Instant::now();
    let _ = (&stream).read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(proxy.terminate().success());
}
