//! Black-box tests of `examples/pool.rs`, run as a separate process: reply
//! order per connection under many connections with random slow and heavy
//! jobs, `ERR busy` from a full pool without blocking the loop, panic
//! containment, and malformed requests.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use util::{connect, ExampleServer};

/// The example's `HASH` work, recomputed here to check its replies.
fn hash_rounds(text: &[u8], rounds: u64) -> u64 {
    let mut h = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    for _ in 0..rounds {
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

/// A client connection reading reply lines.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = connect(addr);
        Client {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, lines: &str) {
        self.writer.write_all(lines.as_bytes()).unwrap();
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply in time");
        assert!(line.ends_with('\n'), "reply cut short: {line:?}");
        line.pop();
        line
    }

    /// Whether a reply is already waiting, without waiting for one.
    fn has_reply(&mut self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let stream = self.reader.get_ref();
        stream.set_nonblocking(true).unwrap();
        let peeked = stream.peek(&mut [0; 1]);
        stream.set_nonblocking(false).unwrap();
        match peeked {
            Ok(n) => n > 0,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn replies_keep_request_order_on_every_connection() {
    let server = ExampleServer::start(
        "pool",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--loops",
            "2",
            "--workers",
            "8",
            "--queue",
            "4096",
        ],
    );
    let addr = server.addr;
    const CONNS: u64 = 48;
    const REQUESTS: u64 = 30;
    let clients: Vec<_> = (0..CONNS)
        .map(|conn| {
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9 ^ ((conn + 1) * 0x1234_5678_9ABC));
                let mut requests = String::new();
                let mut expected = Vec::new();
                for seq in 0..REQUESTS {
                    let text = format!("c{conn}-r{seq}");
                    match rng.below(5) {
                        0 | 1 => {
                            let ms = rng.below(12);
                            requests += &format!("SLOW {ms} {text}\n");
                            expected.push(format!("OK {text}"));
                        }
                        2 | 3 => {
                            let rounds = rng.below(50_000);
                            requests += &format!("HASH {rounds} {text}\n");
                            let hash = hash_rounds(text.as_bytes(), rounds);
                            expected.push(format!("OK {hash:016x} {text}"));
                        }
                        _ => {
                            // Answered by the loop at once, yet it must wait
                            // for the jobs before it.
                            requests += &format!("NOPE {text}\n");
                            expected.push("ERR unknown command \"NOPE\"".to_string());
                        }
                    }
                }
                let mut client = Client::connect(addr);
                // All requests pipelined at once: the order is the server's
                // to keep.
                client.send(&requests);
                for (seq, want) in expected.iter().enumerate() {
                    assert_eq!(&client.reply(), want, "connection {conn}, reply {seq}");
                }
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .expect("every connection got its replies in order");
    }
    assert!(server.terminate().success());
}

#[test]
fn a_full_pool_answers_busy_at_once_and_in_order() {
    let server = ExampleServer::start(
        "pool",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--loops",
            "1",
            "--workers",
            "1",
            "--queue",
            "1",
        ],
    );
    // The only worker sleeps on a1 while a2 takes the only queue slot: a3
    // is refused, and its refusal must wait behind a1's and a2's replies.
    let mut a = Client::connect(server.addr);
    a.send("SLOW 3000 a1\nSLOW 1 a2\nSLOW 1 a3\n");
    // Another connection is refused at once, while a1 still sleeps: the loop
    // answers without waiting for the pool.
    let mut b = Client::connect(server.addr);
    let mut attempts = 0;
    loop {
        b.send("SLOW 1 b\n");
        let reply = b.reply();
        if reply == "ERR busy" {
            break;
        }
        // Only until the loop has read a's requests.
        assert_eq!(reply, "OK b");
        attempts += 1;
        assert!(attempts < 1000, "the pool never filled up");
    }
    assert!(!a.has_reply(), "a1 answered before the pool refused b");
    assert_eq!(a.reply(), "OK a1");
    assert_eq!(a.reply(), "OK a2");
    assert_eq!(a.reply(), "ERR busy");
    // Room again once the jobs are done.
    b.send("SLOW 1 b2\n");
    assert_eq!(b.reply(), "OK b2");
    assert!(server.terminate().success());
}

#[test]
fn a_panicking_job_is_contained() {
    let mut server =
        ExampleServer::start("pool", &["--addr", "tcp://127.0.0.1:0", "--workers", "2"]);
    let mut client = Client::connect(server.addr);
    client.send("PANIC boom\nHASH 10 after\nPANIC again\nSLOW 1 still here\n");
    assert_eq!(client.reply(), "ERR job panicked");
    let hash = hash_rounds(b"after", 10);
    assert_eq!(client.reply(), format!("OK {hash:016x} after"));
    assert_eq!(client.reply(), "ERR job panicked");
    assert_eq!(client.reply(), "OK still here");
    // The server and its workers live on, for this and new connections.
    let mut other = Client::connect(server.addr);
    other.send("SLOW 1 new\n");
    assert_eq!(other.reply(), "OK new");
    assert!(server.child.try_wait().unwrap().is_none());
    assert!(server.terminate().success());
}

#[test]
fn malformed_requests_get_error_lines_and_overlong_ones_close() {
    let server = ExampleServer::start("pool", &["--addr", "tcp://127.0.0.1:0"]);
    let mut client = Client::connect(server.addr);
    client.send("SLOW soon x\nHASH 99999999999 x\nhello\n\nSLOW 1 fine\n");
    assert!(client.reply().starts_with("ERR SLOW takes a number"));
    assert!(client.reply().starts_with("ERR HASH takes a number"));
    assert_eq!(client.reply(), "ERR unknown command \"hello\"");
    assert_eq!(client.reply(), "ERR unknown command \"\"");
    assert_eq!(client.reply(), "OK fine");
    // A line over the 4 KiB limit is a protocol error: that connection is
    // closed, the server goes on.
    client.send(&"x".repeat(10_000));
    let mut rest = Vec::new();
    let closed = client.reader.read_to_end(&mut rest);
    assert!(
        closed.is_ok() || matches!(&closed, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "{closed:?}"
    );
    assert!(rest.is_empty());
    let mut other = Client::connect(server.addr);
    other.send("SLOW 1 ok\n");
    assert_eq!(other.reply(), "OK ok");
    assert!(server.terminate().success());
}
