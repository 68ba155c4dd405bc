//! The RESP example (`examples/redis/`), served in-process on loopback and
//! driven by a plain Rust client: every command, expiry, pipelining, inline
//! commands, errors, limits, and many connections over several loops.

#[path = "../examples/redis/commands.rs"]
mod commands;
#[path = "../examples/redis/resp.rs"]
mod resp;
#[path = "../examples/redis/server.rs"]
mod server;
#[path = "../examples/redis/store.rs"]
mod store;
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use netloom::Engine;

use server::RedisServer;

fn start(loops: usize) -> (Engine, SocketAddr) {
    util::start(RedisServer::new(loops), RedisServer::options(loops))
}

/// A command as a RESP array of bulk strings.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Sends `request` and checks that exactly `expected` comes back.
fn exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) {
    stream.write_all(request).expect("request sent");
    let mut got = vec![0u8; expected.len()];
    stream.read_exact(&mut got).expect("reply arrives");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {}",
        String::from_utf8_lossy(&request[..request.len().min(200)])
    );
}

/// Reads one reply line (`:12\r\n`, `+OK\r\n`, ...), its `CRLF` included.
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).expect("reply arrives");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Reads until the server closes; the bytes read.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("an orderly close");
    rest
}

#[test]
fn serves_every_command() {
    let (engine, addr) = start(2);
    let mut s = util::connect(addr);
    let script: [(&[&str], &str); 30] = [
        (&["PING"], "+PONG\r\n"),
        (&["ping", "hello"], "$5\r\nhello\r\n"),
        (&["ECHO", "a b"], "$3\r\na b\r\n"),
        (&["GET", "k"], "$-1\r\n"),
        (&["SET", "k", "v1"], "+OK\r\n"),
        (&["GET", "k"], "$2\r\nv1\r\n"),
        (&["SET", "k", "v2", "NX"], "$-1\r\n"),
        (&["SET", "k", "v2", "XX"], "+OK\r\n"),
        (&["SET", "other", "x", "XX"], "$-1\r\n"),
        (&["SET", "other", "x", "NX", "EX", "100"], "+OK\r\n"),
        (&["TTL", "other"], ":100\r\n"),
        (&["TTL", "k"], ":-1\r\n"),
        (&["TTL", "missing"], ":-2\r\n"),
        (&["EXPIRE", "k", "50"], ":1\r\n"),
        (&["TTL", "k"], ":50\r\n"),
        (&["EXPIRE", "missing", "50"], ":0\r\n"),
        (&["EXISTS", "k", "other", "missing", "k"], ":3\r\n"),
        (&["MSET", "a", "1", "b", "2"], "+OK\r\n"),
        (
            &["MGET", "a", "b", "missing"],
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n",
        ),
        (&["INCR", "a"], ":2\r\n"),
        (&["INCRBY", "a", "40"], ":42\r\n"),
        (&["DECR", "a"], ":41\r\n"),
        (&["INCR", "fresh"], ":1\r\n"),
        (&["DBSIZE"], ":5\r\n"),
        (&["DEL", "a", "b", "missing"], ":2\r\n"),
        (&["DBSIZE"], ":3\r\n"),
        (&["COMMAND", "DOCS"], "*0\r\n"),
        (&["COMMAND"], "*0\r\n"),
        (&["FLUSHALL"], "+OK\r\n"),
        (&["DBSIZE"], ":0\r\n"),
    ];
    for (args, reply) in script {
        exchange(&mut s, &cmd(args), reply.as_bytes());
    }
    exchange(&mut s, &cmd(&["QUIT"]), b"+OK\r\n");
    assert!(read_to_close(&mut s).is_empty());
    util::stop(engine);
}

#[test]
fn keys_expire_when_read_and_when_not() {
    let (engine, addr) = start(1);
    let mut s = util::connect(addr);
    exchange(&mut s, &cmd(&["SET", "k", "v", "PX", "150"]), b"+OK\r\n");
    exchange(&mut s, &cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    std::thread::sleep(Duration::from_millis(300));
    exchange(&mut s, &cmd(&["GET", "k"]), b"$-1\r\n");
    exchange(&mut s, &cmd(&["PTTL", "k"]), b":-2\r\n");

    // Keys nobody reads again are removed by the ticker: DBSIZE counts keys
    // not yet removed, so reaching 0 proves active expiry.
    let mut batch = Vec::new();
    for i in 0..500 {
        batch.extend_from_slice(&cmd(&["SET", &format!("key:{i}"), "v", "PX", "100"]));
    }
    exchange(&mut s, &batch, "+OK\r\n".repeat(500).as_bytes());
    exchange(&mut s, &cmd(&["SET", "stays", "v"]), b"+OK\r\n");
    exchange(&mut s, &cmd(&["PEXPIRE", "stays", "60000"]), b":1\r\n");
    let emptied = util::wait_until(Duration::from_secs(30), || {
        s.write_all(&cmd(&["DBSIZE"])).unwrap();
        read_line(&mut s) == ":1\r\n"
    });
    assert!(emptied, "expired keys were not removed actively");
    exchange(&mut s, &cmd(&["EXISTS", "stays"]), b":1\r\n");
    util::stop(engine);
}

#[test]
fn answers_a_pipelined_batch_in_order() {
    let (engine, addr) = start(2);
    let mut s = util::connect(addr);
    let mut request = Vec::new();
    let mut expected = String::new();
    for i in 1..=2000 {
        request.extend_from_slice(&cmd(&["INCR", "counter"]));
        expected.push_str(&format!(":{i}\r\n"));
        let value = format!("value-{i}");
        request.extend_from_slice(&cmd(&["SET", &format!("k{i}"), &value]));
        request.extend_from_slice(&cmd(&["GET", &format!("k{i}")]));
        expected.push_str(&format!("+OK\r\n${}\r\n{value}\r\n", value.len()));
    }
    // Written by another thread: the replies flow back while it writes.
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&request).unwrap());
    let mut got = vec![0u8; expected.len()];
    s.read_exact(&mut got).unwrap();
    sender.join().unwrap();
    assert!(got == expected.as_bytes(), "pipelined replies differ");
    util::stop(engine);
}

#[test]
fn serves_inline_commands() {
    let (engine, addr) = start(1);
    let mut s = util::connect(addr);
    exchange(
        &mut s,
        b"PING\r\nSET greeting hello\r\n\r\nget greeting\nEXISTS greeting nope\r\n",
        b"+PONG\r\n+OK\r\n$5\r\nhello\r\n:1\r\n",
    );
    // Inline and RESP commands mixed in one write.
    let mut mixed = b"INCR n\r\n".to_vec();
    mixed.extend_from_slice(&cmd(&["INCR", "n"]));
    mixed.extend_from_slice(b"INCRBY n 10\r\n");
    exchange(&mut s, &mixed, b":1\r\n:2\r\n:12\r\n");
    util::stop(engine);
}

#[test]
fn a_command_split_across_packets_is_served_once_whole() {
    let (engine, addr) = start(1);
    let mut s = util::connect(addr);
    s.set_nodelay(true).unwrap();
    let value = util::pattern(3, 300_000);
    let mut request = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", value.len()).into_bytes();
    request.extend_from_slice(&value);
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(&cmd(&["PING"]));
    let mut rest = &request[..];
    let mut piece = 1;
    while !rest.is_empty() {
        let n = piece.min(rest.len());
        s.write_all(&rest[..n]).unwrap();
        rest = &rest[n..];
        piece = piece * 2 + 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut got = [0u8; 12];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"+OK\r\n+PONG\r\n");
    s.write_all(&cmd(&["GET", "big"])).unwrap();
    let header = format!("${}\r\n", value.len());
    let mut reply = vec![0u8; header.len() + value.len() + 2];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..header.len()], header.as_bytes());
    assert!(reply[header.len()..header.len() + value.len()] == value[..]);
    util::stop(engine);
}

#[test]
fn unknown_commands_and_bad_arguments_get_errors_and_the_connection_stays() {
    let (engine, addr) = start(1);
    let mut s = util::connect(addr);
    let cases: [(&[&str], &str); 8] = [
        (
            &["FOO", "bar"],
            "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n",
        ),
        (
            &["GET"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "soon"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
        (&["SET", "k", "abc"], "+OK\r\n"),
        (
            &["INCR", "k"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["SELECT", "3"], "-ERR DB index is out of range\r\n"),
    ];
    for (args, reply) in cases {
        exchange(&mut s, &cmd(args), reply.as_bytes());
    }
    exchange(&mut s, &cmd(&["PING"]), b"+PONG\r\n");
    util::stop(engine);
}

#[test]
fn malformed_resp_gets_an_error_then_a_close() {
    let (engine, addr) = start(1);
    let cases: [(&[u8], &str); 5] = [
        (
            b"*1\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*x\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$x\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$4\r\nPINGxx",
            "-ERR Protocol error: bulk string not terminated by CRLF\r\n",
        ),
        (
            // Good commands before the bad one are answered first.
            b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n+PING\r\n",
            "+PONG\r\n+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n",
        ),
    ];
    for (request, reply) in cases {
        let mut s = util::connect(addr);
        s.write_all(request).unwrap();
        assert_eq!(String::from_utf8_lossy(&read_to_close(&mut s)), reply);
    }
    util::stop(engine);
}

#[test]
fn lengths_over_the_limits_close_the_connection() {
    let (engine, addr) = start(1);
    let over_bulk = format!("*2\r\n$4\r\nECHO\r\n${}\r\n", resp::MAX_BULK_LEN + 1);
    let over_array = format!("*{}\r\n", resp::MAX_ARRAY_LEN + 1);
    let long_inline = vec![b'a'; resp::MAX_INLINE_LEN + 10];
    let cases: [(&[u8], &str); 3] = [
        (
            over_bulk.as_bytes(),
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            over_array.as_bytes(),
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            &long_inline,
            "-ERR Protocol error: too big inline request\r\n",
        ),
    ];
    for (request, reply) in cases {
        let mut s = util::connect(addr);
        s.write_all(request).unwrap();
        assert_eq!(String::from_utf8_lossy(&read_to_close(&mut s)), reply);
    }
    // The largest bulk length is accepted: the server waits for the value.
    let mut s = util::connect(addr);
    s.write_all(format!("*2\r\n$4\r\nECHO\r\n${}\r\n", resp::MAX_BULK_LEN).as_bytes())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    let err = s.read(&mut byte).expect_err("no reply yet, no close");
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    util::stop(engine);
}

#[test]
fn connections_on_several_loops_share_the_keys() {
    const LOOPS: usize = 4;
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 50;
    let (engine, addr) = start(LOOPS);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = util::connect(addr);
                for round in 0..ROUNDS {
                    // 16 commands per write: a shared counter, keys of our own.
                    let mut request = Vec::new();
                    for i in 0..8 {
                        request.extend_from_slice(&cmd(&["INCR", "shared"]));
                        let key = format!("c{c}:r{round}:{i}");
                        request.extend_from_slice(&cmd(&["SET", &key, &key]));
                    }
                    s.write_all(&request).unwrap();
                    // INCR replies carry the shared count: parse rather than
                    // compare them.
                    for _ in 0..8 {
                        let count = read_line(&mut s);
                        assert!(count.starts_with(':'), "{count:?}");
                        assert_eq!(read_line(&mut s), "+OK\r\n");
                    }
                }
                // Every key this client set is visible, with its value.
                let keys: Vec<String> = (0..ROUNDS)
                    .flat_map(|r| (0..8).map(move |i| format!("c{c}:r{r}:{i}")))
                    .collect();
                let mut args = vec!["MGET"];
                args.extend(keys.iter().map(String::as_str));
                let mut expected = format!("*{}\r\n", keys.len());
                for key in &keys {
                    expected.push_str(&format!("${}\r\n{key}\r\n", key.len()));
                }
                exchange(&mut s, &cmd(&args), expected.as_bytes());
                s
            })
        })
        .collect();
    let streams: Vec<TcpStream> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    // Round-robin spread the connections over every loop.
    assert!(
        engine.conn_counts().iter().all(|&n| n == CLIENTS / LOOPS),
        "{:?}",
        engine.conn_counts()
    );
    let mut s = util::connect(addr);
    let total = CLIENTS * ROUNDS * 8;
    exchange(
        &mut s,
        &cmd(&["GET", "shared"]),
        format!("${}\r\n{total}\r\n", total.to_string().len()).as_bytes(),
    );
    exchange(
        &mut s,
        &cmd(&["DBSIZE"]),
        format!(":{}\r\n", total + 1).as_bytes(),
    );
    drop(streams);
    util::stop(engine);
}
