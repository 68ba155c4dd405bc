// cargo run --release --example http_async -- --addr tcp://127.0.0.1:8080 --loops 2 [--reuseport] [--pin] [--idle-timeout-ms 60000]
//! A plaintext HTTP/1.1 server on the async API, one task per connection:
//! `GET /plaintext` answers `200 Hello, World!` (with `Content-Length`),
//! any other path `404`. Pipelined requests are answered in order, all the
//! complete requests of one read with one write. Request bodies with
//! `Content-Length` are skipped; `Connection: close` and HTTP/1.0 close
//! after the answer; malformed or oversized requests get `400` and a close.
//! A connection that completes no request for `--idle-timeout-ms` (default
//! 60000; 0 turns it off) is closed, whether it is silent or trickles in
//! half a request, with a read deadline on the stream.
//!
//! Try: `curl -i http://127.0.0.1:8080/plaintext`.

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netloom::rt::net::TcpStream;

#[path = "support/async_server.rs"]
mod async_server;
#[path = "support/usage.rs"]
mod usage;

/// First size of a connection's read buffer (a pipelined batch of typical
/// requests fits); it grows up to `MAX_REQUEST` for a large request.
const READ_BUF: usize = 4 * 1024;
/// Largest request (head plus body) accepted.
const MAX_REQUEST: usize = 64 * 1024;
const BODY: &[u8] = b"Hello, World!";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

enum Parsed {
    /// A whole request of `len` bytes.
    Request {
        len: usize,
        plaintext: bool,
        close: bool,
    },
    Partial,
    Bad,
}

/// The next `\n`-terminated line of `buf` from `*pos` (without `\r\n`).
fn next_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let end = start + buf[start..].iter().position(|&b| b == b'\n')?;
    *pos = end + 1;
    let line = &buf[start..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn parse_decimal(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    s.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

/// Parses the first request in `buf` in one pass over its head.
fn parse_one(buf: &[u8]) -> Parsed {
    let incomplete = || {
        if buf.len() > MAX_REQUEST {
            Parsed::Bad
        } else {
            Parsed::Partial
        }
    };
    let mut pos = 0;
    let Some(request_line) = next_line(buf, &mut pos) else {
        return incomplete();
    };
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Bad;
    };
    let mut close = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Parsed::Bad,
    };
    let mut body = 0usize;
    loop {
        let Some(line) = next_line(buf, &mut pos) else {
            return incomplete();
        };
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Parsed::Bad;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            match parse_decimal(value) {
                Some(n) => body = n,
                None => return Parsed::Bad,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Parsed::Bad; // chunked bodies are not supported
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    let len = pos.saturating_add(body);
    if len > MAX_REQUEST {
        Parsed::Bad
    } else if buf.len() < len {
        Parsed::Partial
    } else {
        Parsed::Request {
            len,
            plaintext: method == b"GET" && path == b"/plaintext",
            close,
        }
    }
}

/// The two responses, rebuilt when the second (and so `Date`) changes.
struct Responses {
    second: u64,
    ok: Vec<u8>,
    not_found: Vec<u8>,
}

thread_local! {
    static RESPONSES: RefCell<Responses> = const {
        RefCell::new(Responses { second: u64::MAX, ok: Vec::new(), not_found: Vec::new() })
    };
}

fn response(status: &str, body: &[u8], date: &str) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nServer: netloom\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nDate: {date}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Appends the answers to `requests` (`true` = `/plaintext`) to `out`.
fn respond(out: &mut Vec<u8>, requests: &[bool]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    RESPONSES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != now {
            let date = http_date(now);
            *cache = Responses {
                second: now,
                ok: response("200 OK", BODY, &date),
                not_found: response("404 Not Found", b"", &date),
            };
        }
        for &plaintext in requests {
            out.extend_from_slice(if plaintext {
                &cache.ok
            } else {
                &cache.not_found
            });
        }
    });
}

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Gives the connection `idle_timeout` from now to complete its next
/// request. Re-armed after each read that completes one, not after every
/// read, so a peer trickling in a request byte by byte is closed as well.
fn arm_idle_deadline(stream: &TcpStream, idle_timeout: Option<Duration>) -> io::Result<()> {
    match idle_timeout {
        Some(timeout) => stream.set_read_deadline(Some(Instant::now() + timeout)),
        None => Ok(()),
    }
}

async fn serve(mut stream: TcpStream, idle_timeout: Option<Duration>) -> io::Result<()> {
    let mut inbound = vec![0u8; READ_BUF];
    let mut filled = 0;
    let mut out = Vec::new();
    let mut requests = Vec::new();
    arm_idle_deadline(&stream, idle_timeout)?;
    loop {
        if filled == inbound.len() {
            // One request does not fit yet: grow, up to the limit.
            if inbound.len() >= MAX_REQUEST {
                return stream.write_all(BAD_REQUEST).await;
            }
            inbound.resize((inbound.len() * 2).min(MAX_REQUEST), 0);
        }
        let n = match stream.read(&mut inbound[filled..]).await {
            // Idle, or a request unfinished, for the whole timeout: close.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
            read => read?,
        };
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut consumed = 0;
        let mut close = false;
        let mut bad = false;
        while consumed < filled {
            match parse_one(&inbound[consumed..filled]) {
                Parsed::Request {
                    len,
                    plaintext,
                    close: c,
                } => {
                    requests.push(plaintext);
                    consumed += len;
                    if c {
                        close = true;
                        break;
                    }
                }
                Parsed::Partial => break,
                Parsed::Bad => {
                    bad = true;
                    close = true;
                    break;
                }
            }
        }
        respond(&mut out, &requests);
        requests.clear();
        if bad {
            out.extend_from_slice(BAD_REQUEST);
        }
        // Every answer to this read goes out in one write.
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        if consumed > 0 {
            arm_idle_deadline(&stream, idle_timeout)?;
        }
        inbound.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

fn main() {
    async_server::AsyncServer {
        name: "http_async",
        default_addr: "tcp://127.0.0.1:8080",
        idle_timeout: Some(Duration::from_secs(60)),
        serve,
    }
    .run();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_partial_body_close_and_bad() {
        let get = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut two = get.to_vec();
        two.extend_from_slice(get);
        assert!(
            matches!(parse_one(&two), Parsed::Request { len, plaintext: true, close: false } if len == get.len())
        );
        assert!(matches!(parse_one(&get[..get.len() - 1]), Parsed::Partial));
        let post = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nab";
        assert!(matches!(parse_one(post), Parsed::Partial));
        let post = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        assert!(
            matches!(parse_one(post), Parsed::Request { len, plaintext: false, .. } if len == post.len() - 3)
        );
        let close = b"GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n";
        assert!(matches!(
            parse_one(close),
            Parsed::Request { close: true, .. }
        ));
        assert!(matches!(
            parse_one(b"GET / HTTP/1.0\r\n\r\n"),
            Parsed::Request { close: true, .. }
        ));
        assert!(matches!(parse_one(b"BAD\r\n\r\n"), Parsed::Bad));
    }

    #[test]
    fn date_and_response_shape() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        let mut out = Vec::new();
        respond(&mut out, &[true]);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(out.ends_with(b"\r\n\r\nHello, World!"));
    }
}
