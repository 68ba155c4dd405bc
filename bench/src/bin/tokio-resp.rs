//! tokio RESP2 peer, kept small and fast: PING, ECHO, GET, SET, DEL, COMMAND,
//! CONFIG (empty answers, enough for redis-benchmark), QUIT; RESP arrays and
//! inline commands; every complete command of one read answered with one
//! write. Keys live in one map behind a mutex (uncontended on the
//! current-thread runtime).
//!
//! `tokio-resp --addr 127.0.0.1:6379 [--threads 0]` (0 = current-thread).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use netloom_bench::flags::Flags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A bulk string longer than this closes the connection (as Redis's
/// `proto-max-bulk-len`, scaled down).
const MAX_BULK: usize = 64 * 1024 * 1024;
/// An inline command or array header longer than this is malformed.
const MAX_LINE: usize = 64 * 1024;

/// Multiply-rotate hashing (the rustc "Fx" scheme): keys are short and not
/// attacker-chosen in a benchmark, so SipHash's cost buys nothing here.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Store = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>, BuildHasherDefault<FxHasher>>>>;

/// The result of parsing one command at the start of a buffer.
enum Parsed {
    /// A command of this many bytes; its arguments are in `args`.
    Command(usize),
    /// Not all of it has arrived.
    Partial,
    /// Malformed: reply with this error and close.
    Bad(&'static str),
}

/// The integer on the line starting at `at` (after a type byte), and where
/// the next line starts.
fn line_int(buf: &[u8], at: usize) -> Result<Option<(i64, usize)>, &'static str> {
    let Some(cr) = buf[at..].iter().position(|&b| b == b'\r') else {
        return if buf.len() - at > 32 {
            Err("Protocol error: bad length")
        } else {
            Ok(None)
        };
    };
    if buf.len() < at + cr + 2 {
        return Ok(None);
    }
    if buf[at + cr + 1] != b'\n' {
        return Err("Protocol error: expected CRLF");
    }
    let n = std::str::from_utf8(&buf[at..at + cr])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("Protocol error: bad length")?;
    Ok(Some((n, at + cr + 2)))
}

fn parse(buf: &[u8], args: &mut Vec<(usize, usize)>) -> Parsed {
    args.clear();
    if buf[0] != b'*' {
        // Inline command: words up to the end of the line.
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            return if buf.len() > MAX_LINE {
                Parsed::Bad("Protocol error: too big inline request")
            } else {
                Parsed::Partial
            };
        };
        let line = &buf[..nl];
        let mut i = 0;
        while i < line.len() {
            if line[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && !line[i].is_ascii_whitespace() {
                i += 1;
            }
            args.push((start, i));
        }
        return Parsed::Command(nl + 1);
    }
    let (count, mut at) = match line_int(buf, 1) {
        Ok(Some(v)) => v,
        Ok(None) => return Parsed::Partial,
        Err(e) => return Parsed::Bad(e),
    };
    if !(0..=1024 * 1024).contains(&count) {
        return Parsed::Bad("Protocol error: invalid multibulk length");
    }
    for _ in 0..count {
        if at >= buf.len() {
            return Parsed::Partial;
        }
        if buf[at] != b'$' {
            return Parsed::Bad("Protocol error: expected '$'");
        }
        let (len, start) = match line_int(buf, at + 1) {
            Ok(Some(v)) => v,
            Ok(None) => return Parsed::Partial,
            Err(e) => return Parsed::Bad(e),
        };
        if len < 0 || len as usize > MAX_BULK {
            return Parsed::Bad("Protocol error: invalid bulk length");
        }
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return Parsed::Partial;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Bad("Protocol error: expected CRLF");
        }
        args.push((start, end));
        at = end + 2;
    }
    Parsed::Command(at)
}

fn push_bulk(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Runs the command whose arguments are the `ranges` of `buf`; false when
/// the connection should close after the reply.
fn execute(buf: &[u8], ranges: &[(usize, usize)], store: &Store, out: &mut Vec<u8>) -> bool {
    let arg = |i: usize| &buf[ranges[i].0..ranges[i].1];
    if ranges.is_empty() {
        return true;
    }
    let name = arg(0);
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    match ranges.len() {
        1 if is("PING") => out.extend_from_slice(b"+PONG\r\n"),
        2 if is("PING") || is("ECHO") => push_bulk(out, arg(1)),
        2 if is("GET") => match store.lock().unwrap().get(arg(1)) {
            Some(v) => push_bulk(out, v),
            None => out.extend_from_slice(b"$-1\r\n"),
        },
        3 if is("SET") => {
            let mut map = store.lock().unwrap();
            match map.get_mut(arg(1)) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(arg(2));
                }
                None => {
                    map.insert(arg(1).to_vec(), arg(2).to_vec());
                }
            }
            out.extend_from_slice(b"+OK\r\n");
        }
        n if n >= 2 && is("DEL") => {
            let mut map = store.lock().unwrap();
            let removed = (1..n).filter(|&i| map.remove(arg(i)).is_some()).count();
            out.extend_from_slice(format!(":{removed}\r\n").as_bytes());
        }
        _ if is("COMMAND") || is("CONFIG") => out.extend_from_slice(b"*0\r\n"),
        1 if is("QUIT") => {
            out.extend_from_slice(b"+OK\r\n");
            return false;
        }
        _ if ["PING", "ECHO", "GET", "SET", "DEL", "QUIT"]
            .iter()
            .any(|n| is(n)) =>
        {
            out.extend_from_slice(b"-ERR wrong number of arguments\r\n")
        }
        _ => out.extend_from_slice(b"-ERR unknown command\r\n"),
    }
    true
}

async fn serve(mut socket: TcpStream, store: Store) {
    let mut inbuf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    let mut ranges = Vec::new();
    loop {
        if inbuf.capacity() - inbuf.len() < 1024 {
            inbuf.reserve(4096);
        }
        match socket.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut at = 0;
        let mut open = true;
        while open && at < inbuf.len() {
            match parse(&inbuf[at..], &mut ranges) {
                Parsed::Command(len) => {
                    open = execute(&inbuf[at..], &ranges, &store, &mut out);
                    at += len;
                }
                Parsed::Partial => break,
                Parsed::Bad(e) => {
                    out.extend_from_slice(format!("-ERR {e}\r\n").as_bytes());
                    open = false;
                }
            }
        }
        inbuf.drain(..at);
        if !out.is_empty() {
            if socket.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if !open {
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let flags = Flags::parse("tokio-resp", "--addr 127.0.0.1:6379 [--threads 0]");
    let addr = flags.text("addr", "127.0.0.1:6379");
    let store = Store::default();
    netloom_bench::tokio_runtime(flags.get("threads", 0))?.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("tokio-resp: listening on {}", listener.local_addr()?);
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => continue,
            };
            let _ = socket.set_nodelay(true);
            tokio::spawn(serve(socket, store.clone()));
        }
    })
}
