//! The `--metrics-addr tcp://HOST:PORT` flag of the example servers: a
//! tiny HTTP/1.1 responder on a thread of its own that answers
//! `GET /metrics` with the engine's counters in the Prometheus text format
//! (`Stats::write_prometheus`), for `curl` or a Prometheus scrape. One
//! request per connection (`Connection: close`); a request head longer
//! than 8 KiB or slower than 2 s is refused and the connection closed.
//! Included with `#[path]`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use netloom::Engine;

/// The flag's usage text.
pub const METRICS_USAGE: &str = "[--metrics-addr tcp://HOST:PORT]";

/// Longest request head taken (request line and headers).
const MAX_REQUEST_HEAD: usize = 8 << 10;
/// Longest wait for a request's head, and for the answer to be taken.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for the rest of a refused request before closing.
const LINGER: Duration = Duration::from_millis(200);

/// What the flag asked for.
#[derive(Default)]
pub struct MetricsFlag {
    addr: Option<String>,
}

impl MetricsFlag {
    /// Takes `flag` (and its value) if it is the metrics flag; false otherwise.
    pub fn take(&mut self, flag: &str, value: &mut dyn FnMut() -> String) -> bool {
        if flag != "--metrics-addr" {
            return false;
        }
        self.addr = Some(value());
        true
    }

    /// Binds the metrics address, if one was given, prints it (`NAME:
    /// metrics on http://ADDR/metrics`) and serves `engine`'s counters
    /// there until the process exits; exits with status 1 if it cannot.
    pub fn serve(self, name: &str, engine: &Engine) {
        if let Err(e) = self.try_serve(name, engine) {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }

    fn try_serve(self, name: &str, engine: &Engine) -> Result<(), String> {
        let Some(given) = self.addr else {
            return Ok(());
        };
        let host_port = given.strip_prefix("tcp://").unwrap_or(&given);
        if host_port.contains("://") {
            return Err(format!(
                "--metrics-addr {given}: only tcp://HOST:PORT is served"
            ));
        }
        let listener =
            TcpListener::bind(host_port).map_err(|e| format!("--metrics-addr {given}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("{name}: metrics on http://{local}/metrics");
        let engine = engine.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || answer_scrapes(&listener, &engine))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Answers one connection after another; a failed one is dropped.
fn answer_scrapes(listener: &TcpListener, engine: &Engine) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                // A client that leaves or stalls is no concern of the server's.
                let _ = answer(stream, engine);
            }
            // The descriptor limit and the like: wait instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads one request head and answers it; the connection then closes.
fn answer(mut stream: TcpStream, engine: &Engine) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        // Only the new bytes (and the three before them) can complete the
        // blank line: earlier ones were searched already.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(at) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + at;
        }
        if head.len() > MAX_REQUEST_HEAD {
            return refuse(stream, "431 Request Header Fields Too Large");
        }
    };
    let request_line = head[..end].split(|&b| b == b'\r').next().unwrap_or(&[]);
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let well_formed = parts.next().is_none() && version.is_some_and(|v| v.starts_with(b"HTTP/1."));
    let (Some(method), Some(target), true) = (method, target, well_formed) else {
        return refuse(stream, "400 Bad Request");
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => {
            let mut body = String::new();
            // Writing into a String cannot fail.
            let _ = engine.stats().write_prometheus(&mut body);
            let head_only = method == b"HEAD";
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                if head_only { "" } else { &body }
            );
            stream.write_all(reply.as_bytes())
        }
        (b"GET" | b"HEAD", _) => refuse(stream, "404 Not Found"),
        _ => refuse(stream, "405 Method Not Allowed"),
    }
}

/// Answers `status` with no body, then closes after reading (and
/// dropping) what the client still sends for a moment, so that the
/// answer is not destroyed by a reset.
fn refuse(mut stream: TcpStream, status: &str) -> io::Result<()> {
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let reply =
        format!("HTTP/1.1 {status}\r\n{allow}Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(reply.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER))?;
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        if stream.read(&mut sink)? == 0 {
            break;
        }
    }
    Ok(())
}
