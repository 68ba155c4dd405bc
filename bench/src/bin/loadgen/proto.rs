//! What a connection sends and how its replies are checked, per mode.
//!
//! Every mode keeps up to `pipeline` requests in flight per connection and
//! completes them in order; a reply that is not exactly the expected one is an
//! error that closes the connection.

use memchr::memmem;
use std::collections::VecDeque;
use std::sync::OnceLock;

/// Length of the echo byte pattern's period (a prime, so connections at
/// different phases never line up) and the longest slice taken from it.
const PERIOD: usize = 65_521;
const WINDOW: usize = 64 * 1024;

/// The echo pattern, `PERIOD + WINDOW` bytes long so that any window of up to
/// `WINDOW` bytes starting inside the period is one contiguous slice.
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut x: u32 = 0x9e37_79b9;
        let period: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        period
            .iter()
            .cycle()
            .take(PERIOD + WINDOW)
            .copied()
            .collect()
    })
}

/// Largest read the load generator makes: one window of the pattern, so a
/// read can be compared in one slice.
pub const READ_SIZE: usize = WINDOW;

/// Which protocol a run speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Every byte sent must come back, in order.
    Echo,
    /// Pipelined `GET {path}`, each answered `200` with the expected body.
    Http,
    /// Pipelined RESP `GET key:N`, answered with the preloaded `val:N`.
    RespGet,
    /// Pipelined RESP `SET key:N val:N`, answered `+OK`.
    RespSet,
}

/// Fixed parameters shared by every connection of a run.
pub struct Proto {
    /// The protocol.
    pub mode: Mode,
    /// Echo message size in bytes.
    pub size: usize,
    /// Number of distinct RESP keys.
    pub keys: u32,
    request: Vec<u8>,
    expect_body: Vec<u8>,
    head_end: memmem::Finder<'static>,
}

impl Proto {
    /// The run's parameters; `path` and `body` are used by HTTP only.
    pub fn new(mode: Mode, size: usize, keys: u32, path: &str, body: &str) -> Proto {
        // TechEmpower-style request headers.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: netloom-bench\r\n\
             Accept: text/plain,text/html;q=0.9,*/*;q=0.8\r\nConnection: keep-alive\r\n\r\n"
        );
        Proto {
            mode,
            size,
            keys,
            request: request.into_bytes(),
            expect_body: body.as_bytes().to_vec(),
            head_end: memmem::Finder::new(b"\r\n\r\n"),
        }
    }
}

/// `n` as six decimal digits (keys are below a million).
fn digits(n: u32) -> [u8; 6] {
    let mut d = [b'0'; 6];
    let mut v = n;
    for slot in d.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    d
}

fn push_digits(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&digits(n));
}

/// Appends the RESP `SET key:N val:N` command.
pub fn push_set(out: &mut Vec<u8>, key: u32) {
    out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$10\r\nkey:");
    push_digits(out, key);
    out.extend_from_slice(b"\r\n$10\r\nval:");
    push_digits(out, key);
    out.extend_from_slice(b"\r\n");
}

fn push_get(out: &mut Vec<u8>, key: u32) {
    out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$10\r\nkey:");
    push_digits(out, key);
    out.extend_from_slice(b"\r\n");
}

/// One connection's protocol state: what was issued, sent and received.
pub struct Stream {
    /// Bytes issued but not yet written (HTTP, RESP).
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes received but not yet parsed (HTTP, RESP).
    inbuf: Vec<u8>,
    /// Echo: where this connection's byte stream starts in the pattern.
    phase: usize,
    /// Echo: bytes issued, written, and received back.
    issued: u64,
    sent: u64,
    received: u64,
    /// Echo: messages completed (they complete in order).
    completed: u64,
    /// RESP: keys of the requests in flight, oldest first, and the next key.
    keys: VecDeque<u32>,
    next_key: u32,
}

impl Stream {
    /// The state of connection number `id`.
    pub fn new(id: usize, proto: &Proto) -> Stream {
        Stream {
            out: Vec::new(),
            out_pos: 0,
            inbuf: Vec::new(),
            phase: id.wrapping_mul(7_919) % PERIOD,
            issued: 0,
            sent: 0,
            received: 0,
            completed: 0,
            keys: Default::default(),
            next_key: (id as u32).wrapping_mul(101) % proto.keys.max(1),
        }
    }

    /// Queues one more request.
    pub fn issue(&mut self, proto: &Proto) {
        match proto.mode {
            Mode::Echo => self.issued += proto.size as u64,
            Mode::Http => self.out.extend_from_slice(&proto.request),
            Mode::RespGet | Mode::RespSet => {
                let key = self.next_key;
                self.next_key = (self.next_key + 7_919) % proto.keys;
                self.keys.push_back(key);
                if proto.mode == Mode::RespGet {
                    push_get(&mut self.out, key);
                } else {
                    push_set(&mut self.out, key);
                }
            }
        }
    }

    /// The next bytes to write, empty when everything issued was written.
    pub fn unsent(&self, proto: &Proto) -> &[u8] {
        if proto.mode == Mode::Echo {
            let pos = ((self.phase as u64 + self.sent) % PERIOD as u64) as usize;
            let n = (self.issued - self.sent).min(WINDOW as u64) as usize;
            &pattern()[pos..pos + n]
        } else {
            &self.out[self.out_pos..]
        }
    }

    /// Records that `n` bytes of [`Stream::unsent`] were written.
    pub fn wrote(&mut self, n: usize, proto: &Proto) {
        if proto.mode == Mode::Echo {
            self.sent += n as u64;
        } else {
            self.out_pos += n;
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
            }
        }
    }

    /// Checks received bytes; returns how many requests they completed.
    pub fn received(&mut self, data: &[u8], proto: &Proto) -> Result<usize, String> {
        match proto.mode {
            Mode::Echo => self.received_echo(data, proto),
            Mode::Http | Mode::RespGet | Mode::RespSet => {
                self.inbuf.extend_from_slice(data);
                let mut at = 0;
                let mut done = 0;
                loop {
                    let rest = &self.inbuf[at..];
                    let used = if proto.mode == Mode::Http {
                        http_response(rest, proto)?
                    } else {
                        resp_reply(rest, &mut self.keys, proto)?
                    };
                    match used {
                        Some(n) => {
                            at += n;
                            done += 1;
                        }
                        None => break,
                    }
                }
                self.inbuf.drain(..at);
                Ok(done)
            }
        }
    }

    fn received_echo(&mut self, data: &[u8], proto: &Proto) -> Result<usize, String> {
        if self.received + data.len() as u64 > self.sent {
            return Err(format!(
                "echo: {} bytes back, only {} sent",
                self.received + data.len() as u64,
                self.sent
            ));
        }
        for chunk in data.chunks(WINDOW) {
            let pos = ((self.phase as u64 + self.received) % PERIOD as u64) as usize;
            if chunk != &pattern()[pos..pos + chunk.len()] {
                return Err(format!("echo: wrong byte near offset {}", self.received));
            }
            self.received += chunk.len() as u64;
        }
        let now_complete = self.received / proto.size as u64;
        let done = now_complete - self.completed;
        self.completed = now_complete;
        Ok(done as usize)
    }
}

/// One RESP reply at the start of `buf`, for the oldest of the requested
/// `keys`: its length, `None` if incomplete.
fn resp_reply(
    buf: &[u8],
    keys: &mut VecDeque<u32>,
    proto: &Proto,
) -> Result<Option<usize>, String> {
    let Some(&key) = keys.front() else {
        return if buf.is_empty() {
            Ok(None)
        } else {
            Err(format!("resp: unrequested reply {:?}", show(buf)))
        };
    };
    let mut get_reply = *b"$10\r\nval:000000\r\n";
    let expected: &[u8] = if proto.mode == Mode::RespGet {
        get_reply[9..15].copy_from_slice(&digits(key));
        &get_reply
    } else {
        b"+OK\r\n"
    };
    let n = expected.len().min(buf.len());
    if buf[..n] != expected[..n] {
        return Err(format!(
            "resp: expected {:?}, got {:?}",
            show(expected),
            show(buf)
        ));
    }
    if n < expected.len() {
        return Ok(None);
    }
    keys.pop_front();
    Ok(Some(expected.len()))
}

/// One HTTP response at the start of `buf`: its length, `None` if incomplete.
fn http_response(buf: &[u8], proto: &Proto) -> Result<Option<usize>, String> {
    let Some(head_len) = proto.head_end.find(buf) else {
        return if buf.len() > 16 * 1024 {
            Err("http: response head over 16 KiB".into())
        } else {
            Ok(None)
        };
    };
    let head = &buf[..head_len];
    if !head.starts_with(b"HTTP/1.1 200 ") {
        return Err(format!("http: status line {:?}", show(head)));
    }
    let mut length = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            length = std::str::from_utf8(&line[15..])
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        }
    }
    let length = length.ok_or_else(|| format!("http: no Content-Length in {:?}", show(head)))?;
    let body_at = head_len + 4;
    if buf.len() < body_at + length {
        return Ok(None);
    }
    let body = &buf[body_at..body_at + length];
    if body != proto.expect_body.as_slice() {
        return Err(format!("http: body {:?}", show(body)));
    }
    Ok(Some(body_at + length))
}

/// The start of some bytes, printable, for error messages.
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_roundtrip_and_mismatch() {
        let proto = Proto::new(Mode::Echo, 100, 1, "/", "");
        let mut s = Stream::new(3, &proto);
        s.issue(&proto);
        s.issue(&proto);
        let sent = s.unsent(&proto).to_vec();
        assert_eq!(sent.len(), 200);
        s.wrote(200, &proto);
        assert_eq!(s.received(&sent[..150], &proto), Ok(1));
        assert_eq!(s.received(&sent[150..], &proto), Ok(1));
        let mut t = Stream::new(4, &proto);
        t.issue(&proto);
        t.wrote(100, &proto);
        assert!(t.received(&sent[..100], &proto).is_err(), "other phase");
    }

    #[test]
    fn http_pipelined() {
        let proto = Proto::new(Mode::Http, 0, 1, "/plaintext", "Hello, World!");
        let mut s = Stream::new(0, &proto);
        let one = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\nServer: x\r\n\r\nHello, World!";
        let two: Vec<u8> = one.iter().chain(one.iter()).copied().collect();
        assert_eq!(s.received(&two[..70], &proto), Ok(1));
        assert_eq!(s.received(&two[70..], &proto), Ok(1));
        let bad = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, Wrld!!";
        assert!(s.received(bad, &proto).is_err());
        let status = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(Stream::new(0, &proto).received(status, &proto).is_err());
    }

    #[test]
    fn resp_get_and_set() {
        let proto = Proto::new(Mode::RespGet, 0, 10, "", "");
        let mut s = Stream::new(1, &proto);
        s.issue(&proto);
        let key = s.keys[0];
        let req = String::from_utf8(s.unsent(&proto).to_vec()).unwrap();
        assert_eq!(req, format!("*2\r\n$3\r\nGET\r\n$10\r\nkey:{key:06}\r\n"));
        let reply = format!("$10\r\nval:{key:06}\r\n");
        assert_eq!(s.received(&reply.as_bytes()[..7], &proto), Ok(0));
        assert_eq!(s.received(&reply.as_bytes()[7..], &proto), Ok(1));
        s.issue(&proto);
        assert!(s.received(b"$-1\r\n", &proto).is_err());

        let proto = Proto::new(Mode::RespSet, 0, 10, "", "");
        let mut s = Stream::new(1, &proto);
        s.issue(&proto);
        assert_eq!(s.received(b"+OK\r\n", &proto), Ok(1));
        assert!(s.received(b"+OK\r\n", &proto).is_err(), "unrequested");
    }
}
