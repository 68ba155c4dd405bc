//! Black-box tests of `examples/http_async.rs`, run as a separate process:
//! its idle timeout (`--idle-timeout-ms`) closes a silent connection and
//! one that never finishes its request, while a live one keeps working.

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
/// `limit`, having sent nothing.
fn assert_closed_after_timeout(what: &str, sent: &[u8], after: Duration, limit: Duration) {
    assert!(
        sent.is_empty(),
        "{what}: got {:?}",
        String::from_utf8_lossy(sent)
    );
    assert!(
        after >= IDLE_TIMEOUT,
        "{what}: closed after {after:?}, before the timeout"
    );
    assert!(after < limit, "{what}: closed only after {after:?}");
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
            if stream.write_all(&[byte]).is_err() {
                break; // closed by the server mid-request
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
    assert_closed_after_timeout("silent", &sent, after, CLOSE_LIMIT);
    let (sent, after) = half.join().unwrap();
    assert_closed_after_timeout("half a request", &sent, after, CLOSE_LIMIT);
    let (sent, after) = trickle.join().unwrap();
    assert!(trickle_time > IDLE_TIMEOUT * 4);
    assert_closed_after_timeout("trickled request", &sent, after, trickle_time);

    // Still open and serving after the others were closed; then, left idle,
    // it is closed too (the deadline is armed after its last request).
    let last_request = Instant::now();
    round_trip(&mut live);
    let (sent, after) = read_until_closed(&mut live, last_request);
    assert_closed_after_timeout("live, then idle", &sent, after, CLOSE_LIMIT);
    assert!(server.terminate().success());
}
