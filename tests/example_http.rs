//! The HTTP example (`examples/http/`), served in-process on loopback and
//! driven by a plain Rust client: pipelining, keep-alive, closes, every
//! refusal status, bodies split across packets, and the timeouts.

#[path = "../examples/http/date.rs"]
mod date;
#[path = "../examples/http/parse.rs"]
mod parse;
#[path = "../examples/http/server.rs"]
mod server;
#[path = "../examples/http/session.rs"]
mod session;
mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netloom::Engine;

use parse::Limits;
use server::HttpServer;

const PLAINTEXT: &str = "HTTP/1.1 200 OK\r\nServer: netloom\r\nDate: {date}\r\n\
                         Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const JSON: &str = "HTTP/1.1 200 OK\r\nServer: netloom\r\nDate: {date}\r\n\
                    Content-Type: application/json\r\nContent-Length: 27\r\n\r\n\
                    {\"message\":\"Hello, World!\"}";
const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nServer: netloom\r\nDate: {date}\r\n\
                         Content-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found";

/// Starts the server with generous timeouts unless a test shortens them.
fn start(loops: usize, idle: Duration, request_timeout: Duration) -> (Engine, SocketAddr) {
    util::start(
        HttpServer::new(Limits::default(), request_timeout),
        HttpServer::options(loops, idle),
    )
}

fn start_default() -> (Engine, SocketAddr) {
    start(2, Duration::from_secs(30), Duration::from_secs(30))
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: netloom-test\r\n\r\n")
}

/// Reads HTTP responses one at a time from a stream.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: util::connect(addr),
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("request sent");
    }

    /// Reads more bytes; false at end of stream.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The raw bytes of the next response; `None` at a clean end of stream.
    fn response(&mut self) -> Option<String> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8(self.buf[..end + 4].to_vec()).unwrap();
                let body_len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                let body_len = if head.starts_with("HTTP/1.1 100 ") {
                    0
                } else {
                    body_len
                };
                let total = end + 4 + body_len;
                while self.buf.len() < total {
                    assert!(self.fill(), "stream ended inside a response");
                }
                let raw: Vec<u8> = self.buf.drain(..total).collect();
                return Some(String::from_utf8(raw).unwrap());
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "stream ended inside a response head");
                return None;
            }
        }
    }

    /// Asserts the server closes the connection (orderly) with nothing more.
    fn expect_end(&mut self) {
        assert_eq!(self.response(), None, "expected the end of the stream");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks `raw` against `template` byte for byte, `{date}` standing for the
/// response's own `Date`, which must be a current IMF-fixdate.
fn assert_response(raw: &str, template: &str) {
    let start = raw.find("\r\nDate: ").expect("a Date header") + 8;
    let date = &raw[start..start + 29];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let current = (0..4).any(|back| date.as_bytes() == date::http_date(now - back));
    assert!(current, "stale or malformed Date: {date:?}");
    assert_eq!(raw, template.replace("{date}", date));
}

fn status_of(raw: &str) -> &str {
    raw.lines().next().unwrap()
}

#[test]
fn pipelines_16_deep_on_many_connections() {
    let (engine, addr) = start_default();
    let clients: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conns: Vec<Client> = (0..8).map(|_| Client::connect(addr)).collect();
                for round in 0..25 {
                    // 16 requests per connection in one write each, then
                    // every answer, in order.
                    let paths: Vec<&str> = (0..16)
                        .map(|i| match (t + round + i) % 3 {
                            0 => "/plaintext",
                            1 => "/json",
                            _ => "/missing",
                        })
                        .collect();
                    let batch: String = paths.iter().map(|p| get(p)).collect();
                    for conn in &mut conns {
                        conn.send(batch.as_bytes());
                    }
                    for conn in &mut conns {
                        for path in &paths {
                            let raw = conn.response().expect("a response");
                            let template = match *path {
                                "/plaintext" => PLAINTEXT,
                                "/json" => JSON,
                                _ => NOT_FOUND,
                            };
                            assert_response(&raw, template);
                        }
                    }
                }
                for conn in &mut conns {
                    conn.stream.shutdown(Shutdown::Write).unwrap();
                    conn.expect_end();
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    util::stop(engine);
}

#[test]
fn keeps_connections_alive() {
    let (engine, addr) = start_default();
    let mut client = Client::connect(addr);
    for i in 0..100 {
        let path = if i % 2 == 0 { "/plaintext" } else { "/json" };
        client.send(get(path).as_bytes());
        let template = if i % 2 == 0 { PLAINTEXT } else { JSON };
        assert_response(&client.response().unwrap(), template);
    }
    // HTTP/1.0 with keep-alive asked for: announced and kept.
    client.send(b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let raw = client.response().unwrap();
    assert!(raw.contains("\r\nConnection: keep-alive\r\n"), "{raw}");
    // A 404 keeps the connection too.
    client.send(get("/nope").as_bytes());
    assert_response(&client.response().unwrap(), NOT_FOUND);
    client.send(get("/plaintext").as_bytes());
    assert_response(&client.response().unwrap(), PLAINTEXT);
    util::stop(engine);
}

#[test]
fn connection_close_is_answered_then_closed() {
    let (engine, addr) = start_default();
    let mut client = Client::connect(addr);
    // The request after the closing one is never answered.
    client.send(
        format!(
            "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{}",
            get("/json")
        )
        .as_bytes(),
    );
    let expected = PLAINTEXT.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    assert_response(&client.response().unwrap(), &expected);
    client.expect_end();

    // HTTP/1.0 closes by default.
    let mut client = Client::connect(addr);
    client.send(b"GET /plaintext HTTP/1.0\r\n\r\n");
    assert_response(&client.response().unwrap(), &expected);
    client.expect_end();
    util::stop(engine);
}

/// Sends `request` (from another thread, as the server may stop reading
/// it), and returns the one response and checks the close that follows.
fn refused(addr: SocketAddr, request: Vec<u8>) -> String {
    let mut client = Client::connect(addr);
    let mut writer = client.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // The server may close before it read everything: ignore errors.
        let _ = writer.write_all(&request);
    });
    let raw = client.response().expect("a response");
    assert!(raw.contains("\r\nConnection: close\r\n"), "{raw}");
    client.expect_end();
    sender.join().unwrap();
    raw
}

#[test]
fn bad_requests_get_their_status_and_a_close() {
    let (engine, addr) = start_default();
    let many_fields: String = (0..101).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"HELLO\r\n\r\n".to_vec(), "HTTP/1.1 400 Bad Request"),
        (
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\nName : value\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            b"GET /plaintext HTTP/1.1\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            format!(
                "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(9000)
            )
            .into_bytes(),
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (
            // Far past the limit: the server answers before reading it all.
            format!(
                "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(300_000)
            )
            .into_bytes(),
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (
            format!("GET /plaintext HTTP/1.1\r\nHost: x\r\n{many_fields}\r\n").into_bytes(),
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "p".repeat(9000)).into_bytes(),
            "HTTP/1.1 414 URI Too Long",
        ),
        (
            b"POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
            "HTTP/1.1 501 Not Implemented",
        ),
        (
            b"POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".to_vec(),
            "HTTP/1.1 413 Content Too Large",
        ),
        (
            b"GET /plaintext HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 505 HTTP Version Not Supported",
        ),
    ];
    for (request, status) in cases {
        let raw = refused(addr, request);
        assert_eq!(status_of(&raw), status);
    }
    util::stop(engine);
}

#[test]
fn a_refusal_after_good_requests_answers_them_first() {
    let (engine, addr) = start_default();
    let mut client = Client::connect(addr);
    client.send(
        format!(
            "{}{}BROKEN\r\n\r\n{}",
            get("/json"),
            get("/plaintext"),
            get("/json")
        )
        .as_bytes(),
    );
    assert_response(&client.response().unwrap(), JSON);
    assert_response(&client.response().unwrap(), PLAINTEXT);
    assert_eq!(
        status_of(&client.response().unwrap()),
        "HTTP/1.1 400 Bad Request"
    );
    client.expect_end();
    util::stop(engine);
}

#[test]
fn other_methods_on_known_paths_get_405() {
    let (engine, addr) = start_default();
    let mut client = Client::connect(addr);
    client.send(b"DELETE /json HTTP/1.1\r\nHost: x\r\n\r\n");
    let raw = client.response().unwrap();
    assert_eq!(status_of(&raw), "HTTP/1.1 405 Method Not Allowed");
    assert!(raw.contains("\r\nAllow: GET, HEAD\r\n"));
    client.send(b"HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    // Headers only: the reader must not wait for the 13 body bytes.
    let head_len = PLAINTEXT.replace("{date}", &"x".repeat(29)).len() - 13;
    while client.buf.len() < head_len {
        assert!(client.fill());
    }
    std::thread::sleep(Duration::from_millis(50));
    client.send(get("/json").as_bytes());
    let mut raw_head = client.buf.drain(..head_len).collect::<Vec<u8>>();
    raw_head.extend_from_slice(b"Hello, World!");
    assert_response(&String::from_utf8(raw_head).unwrap(), PLAINTEXT);
    assert_response(&client.response().unwrap(), JSON);
    util::stop(engine);
}

#[test]
fn request_bodies_split_across_packets_are_skipped() {
    let (engine, addr) = start_default();
    let mut client = Client::connect(addr);
    client.stream.set_nodelay(true).unwrap();
    let body = util::pattern(7, 50_000);
    let mut request = format!(
        "GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request.extend_from_slice(get("/json").as_bytes());
    // Head, body and the next request cut in uneven pieces, with pauses so
    // they arrive as separate reads.
    let mut rest = &request[..];
    let mut piece = 1;
    while !rest.is_empty() {
        let n = piece.min(rest.len());
        client.send(&rest[..n]);
        rest = &rest[n..];
        piece = piece * 3 + 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_response(&client.response().unwrap(), PLAINTEXT);
    assert_response(&client.response().unwrap(), JSON);

    // A body on a request that gets a 404 is skipped too, and a body with
    // Expect: 100-continue gets the interim response first.
    client.send(
        b"PUT /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(client.response().unwrap(), "HTTP/1.1 100 Continue\r\n\r\n");
    client.send(b"hello");
    assert_response(&client.response().unwrap(), NOT_FOUND);
    client.send(get("/plaintext").as_bytes());
    assert_response(&client.response().unwrap(), PLAINTEXT);
    util::stop(engine);
}

#[test]
fn idle_connections_are_closed() {
    let (engine, addr) = start(1, Duration::from_millis(300), Duration::from_secs(30));
    let started = Instant::now();
    let mut silent = Client::connect(addr);
    silent.expect_end();
    // A connection that was served and then went quiet closes as well.
    let mut served = Client::connect(addr);
    served.send(get("/plaintext").as_bytes());
    assert_response(&served.response().unwrap(), PLAINTEXT);
    served.expect_end();
    // The idle timeout closed them, not the 30 s request timeout.
    assert!(started.elapsed() < Duration::from_secs(20));
    util::stop(engine);
}

#[test]
fn slow_requests_time_out_with_408() {
    // Bytes arrive more often than the idle timeout (every 100 ms against
    // 3 s), so only the request timeout can stop this client (slowloris).
    let (engine, addr) = start(1, Duration::from_secs(3), Duration::from_millis(1500));
    let mut client = Client::connect(addr);
    client.stream.set_nodelay(true).unwrap();
    let mut writer = client.stream.try_clone().unwrap();
    let answered = Arc::new(AtomicBool::new(false));
    let stop = answered.clone();
    let dripper = std::thread::spawn(move || {
        let request = b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Slow: 12345678901234567890";
        for &b in request {
            if stop.load(Ordering::Relaxed) || writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let raw = client.response().expect("a 408");
    answered.store(true, Ordering::Relaxed);
    assert_eq!(status_of(&raw), "HTTP/1.1 408 Request Timeout");
    client.expect_end();
    dripper.join().unwrap();
    util::stop(engine);
}
