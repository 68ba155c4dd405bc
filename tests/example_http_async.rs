//! Black-box tests of `examples/http_async.rs`, run as a separate process:
//! its idle timeout (`--idle-timeout-ms`) closes a silent connection and
//! one that never finishes its request, while a live one keeps working; it
//! refuses what the callback `http` example refuses (the request-smuggling
//! inputs of issue #16), answers `Expect: 100-continue` (driven by curl),
//! and its refusals arrive whole, not destroyed by a reset.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use util::ExampleServer;

/// Long enough that the live connection (a request every 100 ms) is never
/// idle that long unless the machine stalls it for most of a second.
const IDLE_TIMEOUT: Duration = Duration::from_millis(1000);
const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n";
/// Between the bytes of a trickled request.
const TRICKLE_GAP: Duration = Duration::from_millis(100);
/// Bound on how late a close may come on a busy machine.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);

fn start() -> ExampleServer {
    let ms = IDLE_TIMEOUT.as_millis().to_string();
    ExampleServer::start(
        "http_async",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--loops",
            "1",
            "--idle-timeout-ms",
            &ms,
        ],
    )
}

/// Reads until the server closes; returns what it sent and when it closed,
/// counted from `since`.
fn read_until_closed(stream: &mut TcpStream, since: Instant) -> (Vec<u8>, Duration) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (got, since.elapsed()),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, since.elapsed()),
            Err(e) => panic!("no close within 60 s: {e}"),
        }
    }
}

/// The server closed the connection after the idle timeout and before
/// `limit`, having sent `expected` (a status line) or, if `None`, nothing.
fn assert_closed_after_timeout(
    what: &str,
    sent: &[u8],
    expected: Option<&str>,
    after: Duration,
    limit: Duration,
) {
    match expected {
        None => assert!(
            sent.is_empty(),
            "{what}: got {:?}",
            String::from_utf8_lossy(sent)
        ),
        Some(status) => assert!(
            sent.starts_with(status.as_bytes()),
            "{what}: got {:?}",
            String::from_utf8_lossy(sent)
        ),
    }
    assert!(
        after >= IDLE_TIMEOUT,
        "{what}: closed after {after:?}, before the timeout"
    );
    assert!(after < limit, "{what}: closed only after {after:?}");
}

/// Whether the server has sent something (or closed) on `stream`, without
/// waiting.
fn answered(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let peeked = stream.peek(&mut [0u8; 1]);
    stream.set_nonblocking(false).unwrap();
    !matches!(peeked, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// Connects; the instant is taken first, so it precedes the server's
/// accept and with it the arming of the deadline.
fn connect(addr: SocketAddr) -> (TcpStream, Instant) {
    let opened = Instant::now();
    (util::connect(addr), opened)
}

/// Sends one request and reads its whole `200` answer.
fn round_trip(stream: &mut TcpStream) {
    stream.write_all(REQUEST).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0; 1024];
    while !got.ends_with(b"\r\n\r\nHello, World!") {
        let n = stream.read(&mut chunk).expect("answer within 10 s");
        assert!(n > 0, "live connection closed after {} bytes", got.len());
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn idle_and_half_request_connections_close_while_a_live_one_keeps_working() {
    let server = start();
    let addr = server.addr;
    let silent = std::thread::spawn(move || {
        let (mut stream, opened) = connect(addr);
        read_until_closed(&mut stream, opened)
    });
    let half = std::thread::spawn(move || {
        let (mut stream, opened) = connect(addr);
        stream.write_all(&REQUEST[..20]).unwrap();
        read_until_closed(&mut stream, opened)
    });
    // A request trickled in byte by byte, each well within the timeout:
    // the deadline is for the whole request, not each read, so it is closed
    // long before the last byte would be sent.
    let trickled = &REQUEST[..REQUEST.len() - 2];
    let trickle_time = TRICKLE_GAP * trickled.len() as u32;
    let trickle = std::thread::spawn(move || {
        let (mut stream, opened) = connect(addr);
        for &byte in trickled {
            if stream.write_all(&[byte]).is_err() || answered(&stream) {
                break; // answered, or closed, by the server mid-request
            }
            std::thread::sleep(TRICKLE_GAP);
        }
        read_until_closed(&mut stream, opened)
    });
    // A live connection: a request every 100 ms for three timeouts' worth.
    let (mut live, opened) = connect(addr);
    let mut requests = 0;
    while opened.elapsed() < IDLE_TIMEOUT * 3 {
        round_trip(&mut live);
        requests += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(requests >= 5, "{requests} requests");

    let (sent, after) = silent.join().unwrap();
    assert_closed_after_timeout("silent", &sent, None, after, CLOSE_LIMIT);
    // Half way through a request, the client is told why.
    let timeout = Some("HTTP/1.1 408 Request Timeout\r\n");
    let (sent, after) = half.join().unwrap();
    assert_closed_after_timeout("half a request", &sent, timeout, after, CLOSE_LIMIT);
    let (sent, after) = trickle.join().unwrap();
    assert!(trickle_time > IDLE_TIMEOUT * 4);
    assert_closed_after_timeout("trickled request", &sent, timeout, after, trickle_time);

    // Still open and serving after the others were closed; then, left idle,
    // it is closed too (the deadline is armed after its last request).
    let last_request = Instant::now();
    round_trip(&mut live);
    let (sent, after) = read_until_closed(&mut live, last_request);
    assert_closed_after_timeout("live, then idle", &sent, None, after, CLOSE_LIMIT);
    assert!(server.terminate().success());
}

/// Sends `request` whole (its rest while the server may already be
/// answering), then reads until the server closes. A reset instead of an
/// orderly close fails the test: it can destroy the answer in flight.
fn answer_then_orderly_close(addr: SocketAddr, request: &[u8]) -> String {
    let stream = util::connect(addr);
    let writer = stream.try_clone().unwrap();
    let owned = request.to_vec();
    // The server may stop reading once it has refused the request.
    let send = std::thread::spawn(move || {
        let _ = (&writer).write_all(&owned);
    });
    let mut got = Vec::new();
    (&stream)
        .read_to_end(&mut got)
        .expect("an orderly close, not a reset");
    send.join().unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

/// Issue #16: inputs that let two parsers disagree on where a request ends.
/// Both HTTP examples share one parser, so both answer each with one 400 and
/// a close; the bytes that would smuggle a second request are never served.
#[test]
fn both_http_examples_refuse_request_smuggling_inputs() {
    let smuggled = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases: Vec<(&str, String)> = vec![
        (
            "conflicting Content-Length",
            format!(
                "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nContent-Length: 0\r\n\r\n{smuggled}",
                smuggled.len()
            ),
        ),
        ("no Host", format!("GET / HTTP/1.1\r\n\r\n{smuggled}")),
        (
            "two Hosts",
            format!("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n{smuggled}"),
        ),
        (
            "space before the colon",
            format!(
                "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length : {}\r\n\r\n{smuggled}",
                smuggled.len()
            ),
        ),
        (
            "NUL in a header",
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n{smuggled}"),
        ),
        (
            "bare CR in a header",
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n{smuggled}"),
        ),
    ];
    for example in ["http", "http_async"] {
        let server =
            ExampleServer::start(example, &["--addr", "tcp://127.0.0.1:0", "--loops", "1"]);
        for (what, request) in &cases {
            let answer = answer_then_orderly_close(server.addr, request.as_bytes());
            assert!(
                answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{example}, {what}: {answer:?}"
            );
            assert_eq!(
                answer.matches("HTTP/1.1 ").count(),
                1,
                "{example}, {what}: one answer only: {answer:?}"
            );
        }
        assert!(server.terminate().success());
    }
}

/// Issue #16: a 100 KB request target is refused (414) with an answer that
/// arrives whole and an orderly close, not a reset, though the server stops
/// reading the request long before its end.
#[test]
fn a_huge_request_line_is_refused_without_a_reset() {
    let server = start();
    let mut request = b"GET /".to_vec();
    request.resize(100 * 1024, b'a');
    request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = answer_then_orderly_close(server.addr, &request);
    assert!(
        answer.starts_with("HTTP/1.1 414 URI Too Long\r\n") && answer.ends_with("URI Too Long"),
        "{answer:?}"
    );
    assert!(server.terminate().success());
}

/// Issue #16: curl sends `Expect: 100-continue` and waits for the interim
/// answer before the body. Told to wait 60 s for it, curl would time out
/// (`--max-time 30`) against a server that ignores it.
#[test]
fn curl_gets_100_continue_then_the_answer() {
    if !util::require_tool("curl") {
        return;
    }
    let server = start();
    let body = util::pattern(100, 100 * 1024);
    let dir = util::TempDir::new("http-async-expect");
    let body_file = dir.path("body");
    std::fs::write(&body_file, &body).unwrap();
    let url = format!("http://{}/upload", server.addr);
    let out = std::process::Command::new("curl")
        .args([
            "--silent",
            "--verbose",
            "--max-time",
            "30",
            "--expect100-timeout",
            "60",
        ])
        .args(["-H", "Expect: 100-continue", "--data-binary"])
        .arg(format!("@{}", body_file.display()))
        .args(["--write-out", "%{http_code}", "--output", "/dev/null", &url])
        .output()
        .expect("curl runs");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed: {trace}");
    assert!(trace.contains("< HTTP/1.1 100 Continue"), "{trace}");
    // The body was read (skipped) whole: the answer follows it.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    assert!(server.terminate().success());
}
