//! Zero-downtime restart of the `http` example under load: `wrk` (32
//! keep-alive connections, 4 s) runs while the server is replaced twice
//! through `--handoff PATH` (each new process takes the listening socket
//! over from the running one, which answers its clients' next request with
//! `Connection: close`, drains and exits). No socket error, no non-2xx
//! response, every old process gone after its drain, and the last one
//! still answering afterwards.

mod util;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::ExampleServer;

/// Starts `http` on `addr` with `--handoff handoff`: one generation.
fn start(addr: &str, handoff: &Path) -> ExampleServer {
    let handoff = handoff.to_str().unwrap();
    ExampleServer::start(
        "http",
        &["--addr", addr, "--loops", "2", "--handoff", handoff],
    )
}

fn plaintext(addr: &str) -> String {
    let mut stream = util::connect(addr.parse().unwrap());
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn wrk_sees_no_error_through_two_restarts() {
    if !util::require_tool("wrk") {
        return;
    }
    let dir = util::TempDir::new("restart");
    let handoff = dir.path("handoff.sock");
    let mut first = start("tcp://127.0.0.1:0", &handoff);
    let addr = first.addr.to_string();
    let url = format!("tcp://{addr}");

    let wrk = Command::new("timeout")
        .args(["60", "wrk", "-t2", "-c32", "-d4s"])
        .arg(format!("http://{addr}/plaintext"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("wrk runs");

    std::thread::sleep(Duration::from_millis(1300));
    let mut second = start(&url, &handoff);
    assert_eq!(second.addr.to_string(), addr);
    let status = first.exits_within(Duration::from_secs(10));
    assert!(
        status.success(),
        "the first generation exits cleanly: {status}"
    );
    assert!(first.printed("drained"), "the first generation drained");

    std::thread::sleep(Duration::from_millis(700));
    let third = start(&url, &handoff);
    let status = second.exits_within(Duration::from_secs(10));
    assert!(
        status.success(),
        "the second generation exits cleanly: {status}"
    );

    let out = wrk.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(util::clean_wrk_requests(&out) > 1000, "{report}");

    let answer = plaintext(&addr);
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("Hello, World!"),
        "{answer}"
    );
    assert!(third.terminate_within(Duration::from_secs(10)).success());
    assert!(
        !handoff.exists(),
        "the last generation removed its handoff socket"
    );
}
