//! tokio HTTP/1.1 plaintext peer: answers `GET /plaintext` (and `/json`)
//! TechEmpower-style; every complete request of one read is answered with one
//! write, in order. Request bodies by `Content-Length` are skipped,
//! `Connection: close` is honoured, anything it cannot parse gets a 400 and a
//! close.
//!
//! `tokio-http --addr 127.0.0.1:8080 [--threads 0] [--tls-cert PEM --tls-key PEM]`
//! (0 = current-thread; with a certificate, HTTPS through tokio-rustls).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use netloom_bench::flags::Flags;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const MAX_HEAD: usize = 8 * 1024;

thread_local! {
    /// The `Date` header value, formatted again only when the second changes.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

fn push_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            *d = (secs, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(d.1.as_bytes());
    });
}

/// Writes one answer; `close` adds `Connection: close` (the connection ends
/// after it, as HTTP/1.1 asks a server to say).
fn respond(out: &mut Vec<u8>, status: &str, content_type: &str, body: &[u8], close: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nServer: tokio\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    push_date(out);
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// What to do after answering the requests of one read.
enum Next {
    KeepReading,
    Close,
}

/// Answers every complete request at the start of `inbuf`, removes them, and
/// says whether the connection stays open.
fn answer(inbuf: &mut Vec<u8>, out: &mut Vec<u8>) -> Next {
    let mut at = 0;
    let next = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&inbuf[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if inbuf.len() - at > MAX_HEAD => {
                respond(
                    out,
                    "431 Request Header Fields Too Large",
                    "text/plain",
                    b"",
                    true,
                );
                break Next::Close;
            }
            Ok(httparse::Status::Partial) => break Next::KeepReading,
            Err(_) => {
                respond(out, "400 Bad Request", "text/plain", b"", true);
                break Next::Close;
            }
        };
        let mut body_len = 0;
        let mut close = req.version == Some(0);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) => body_len = n,
                    None => {
                        respond(out, "400 Bad Request", "text/plain", b"", true);
                        return Next::Close;
                    }
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                respond(out, "501 Not Implemented", "text/plain", b"", true);
                return Next::Close;
            } else if h.name.eq_ignore_ascii_case("connection") {
                close = h.value.eq_ignore_ascii_case(b"close");
            }
        }
        if inbuf.len() - at < head_len + body_len {
            break Next::KeepReading;
        }
        match req.path {
            Some("/plaintext") => respond(out, "200 OK", "text/plain", b"Hello, World!", close),
            Some("/json") => respond(
                out,
                "200 OK",
                "application/json",
                br#"{"message":"Hello, World!"}"#,
                close,
            ),
            _ => respond(out, "404 Not Found", "text/plain", b"", close),
        }
        at += head_len + body_len;
        if close {
            break Next::Close;
        }
    };
    inbuf.drain(..at);
    next
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S) {
    let mut inbuf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    loop {
        if inbuf.capacity() - inbuf.len() < 1024 {
            inbuf.reserve(4096);
        }
        match socket.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let next = answer(&mut inbuf, &mut out);
        if !out.is_empty() {
            if socket.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if let Next::Close = next {
            // FIN (over TLS: close_notify first), then read until the
            // client closes (at most 2 s), as the netloom server does: closing
            // with its bytes unread would send a reset instead of the answer.
            let _ = socket.shutdown().await;
            let mut sink = [0u8; 4096];
            let linger = async { while let Ok(1..) = socket.read(&mut sink).await {} };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), linger).await;
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let flags = Flags::parse(
        "tokio-http",
        "--addr 127.0.0.1:8080 [--threads 0] [--tls-cert PEM] [--tls-key PEM]",
    );
    let addr = flags.text("addr", "127.0.0.1:8080");
    let tls = netloom_bench::tls::acceptor("tokio-http", &flags);
    netloom_bench::tokio_runtime(flags.get("threads", 0))?.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("tokio-http: listening on {}", listener.local_addr()?);
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => continue,
            };
            let _ = socket.set_nodelay(true);
            netloom_bench::spawn_served!(&tls, socket, serve);
        }
    })
}
