//! The RESP example (`examples/redis/`), served in-process on loopback and
//! driven by a plain Rust client: every command, expiry, pipelining, inline
//! commands, errors, limits, and many connections over several loops.

#[path = "../examples/redis/collections.rs"]
mod collections;
#[path = "../examples/redis/commands.rs"]
mod commands;
#[path = "../examples/redis/resp.rs"]
mod resp;
#[path = "../examples/redis/server.rs"]
mod server;
#[path = "../examples/redis/store.rs"]
mod store;
mod util;
#[path = "../examples/redis/values.rs"]
mod values;

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

/// Reads one reply that is either a bulk string or an error line: the bulk's
/// bytes, or the error line.
fn read_bulk_or_error(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let header = read_line(stream);
    if header.starts_with('-') {
        return Err(header);
    }
    let len: usize = header
        .strip_prefix('$')
        .and_then(|h| h.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not a bulk header: {header:?}"));
    let mut data = vec![0u8; len + 2];
    stream.read_exact(&mut data).expect("bulk arrives");
    assert!(data.ends_with(b"\r\n"));
    data.truncate(len);
    Ok(data)
}

/// Issue #16: ten pipelined GETs of a 60 MiB value pass the 256 MiB of
/// replies a client may leave unread. The replies that fit arrive whole, the
/// others are errors, in order, and the connection stays.
#[test]
fn replies_past_the_output_limit_become_errors_in_order() {
    let (engine, addr) = start(1);
    let mut s = util::connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let value = util::pattern(16, 60 << 20);
    let mut set = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n".to_vec();
    set.extend_from_slice(format!("${}\r\n", value.len()).as_bytes());
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    let writer = s.try_clone().unwrap();
    let send = std::thread::spawn(move || (&writer).write_all(&set).unwrap());
    assert_eq!(read_line(&mut s), "+OK\r\n");
    send.join().unwrap();

    s.write_all(&cmd(&["GET", "big"]).repeat(10)).unwrap();
    let replies: Vec<_> = (0..10).map(|_| read_bulk_or_error(&mut s)).collect();
    let whole = replies.iter().take_while(|r| r.is_ok()).count();
    let fit = server::MAX_PENDING_OUTPUT / value.len();
    assert!(
        (fit..10).contains(&whole),
        "{whole} whole replies, {fit} fit"
    );
    for reply in &replies[..whole] {
        assert!(reply.as_ref().unwrap() == &value, "a value differs");
    }
    for reply in &replies[whole..] {
        let error = reply.as_ref().unwrap_err();
        assert!(error.starts_with("-ERR reply would pass"), "{error:?}");
    }
    exchange(&mut s, &cmd(&["PING"]), b"+PONG\r\n");
    util::stop(engine);
}

/// Issue #16: unfinished commands of all connections together are bounded.
/// Two 8 MiB commands but their last byte, against a 10 MiB bound: one
/// connection gets an error and a close, which releases what it held, so
/// the other finishes its command, and a third may then send one as big.
#[test]
fn unfinished_commands_are_bounded_server_wide() {
    let server = RedisServer::new(1).max_pending_input(10 << 20);
    let (engine, addr) = util::start(server, RedisServer::options(1));
    let value = util::pattern(5, 8 << 20);
    let mut command = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n".to_vec();
    command.extend_from_slice(format!("${}\r\n", value.len()).as_bytes());
    command.extend_from_slice(&value);
    command.extend_from_slice(b"\r\n");
    let (all_but_last, last) = command.split_at(command.len() - 1);

    let mut streams: Vec<TcpStream> = (0..2).map(|_| util::connect(addr)).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, s) in streams.iter().enumerate() {
        let mut reader = s.try_clone().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || tx.send((i, read_line(&mut reader))));
    }
    for s in &mut streams {
        // The refused one may be gone already: its writes can fail.
        let _ = s.write_all(all_but_last);
    }
    // Neither command can complete, so the server, reading all it is sent,
    // passes the bound: the connection that did so is refused.
    let (refused, line) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        line,
        "-ERR server input buffer full: too many unfinished commands\r\n"
    );
    assert_eq!(read_to_close(&mut streams[refused]), b"");
    let mut other = streams.swap_remove(1 - refused);
    other.write_all(last).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        (1 - refused, "+OK\r\n".to_string())
    );
    exchange(&mut other, &cmd(&["PING"]), b"+PONG\r\n");
    // What the refused one held was released.
    let mut third = util::connect(addr);
    let writer = third.try_clone().unwrap();
    let send = std::thread::spawn(move || (&writer).write_all(&command).unwrap());
    assert_eq!(read_line(&mut third), "+OK\r\n");
    send.join().unwrap();
    util::stop(engine);
}

/// Issue #16: `redis-benchmark` with its default test list (what a user runs
/// first) runs every test to the end: each command it sends is served.
#[test]
fn redis_benchmark_runs_its_default_tests_to_the_end() {
    if !util::require_tool("redis-benchmark") {
        return;
    }
    let (engine, addr) = start(2);
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(["-n", "2000", "-c", "8", "--csv"])
        .output()
        .expect("redis-benchmark runs");
    let csv = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{csv}\n{stderr}");
    assert!(
        !csv.contains("ERR") && !stderr.contains("ERR"),
        "{csv}\n{stderr}"
    );
    let tests: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .map(|name| name.trim_matches('"'))
        .collect();
    let expected = [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LPUSH (needed to benchmark LRANGE)",
        "LRANGE_100 (first 100 elements)",
        "LRANGE_300 (first 300 elements)",
        "LRANGE_500 (first 500 elements)",
        "LRANGE_600 (first 600 elements)",
        "MSET (10 keys)",
    ];
    for test in expected {
        assert!(tests.contains(&test), "{test} missing from {tests:?}");
    }
    // Newer versions add XADD to the list; served either way.
    let mut s = util::connect(addr);
    let id = {
        s.write_all(&cmd(&["XADD", "mystream", "*", "myfield", "x"]))
            .unwrap();
        read_line(&mut s)
    };
    assert!(id.starts_with('$'), "{id:?}");
    util::stop(engine);
}

/// A first look with `redis-cli`: one command per invocation, as a user
/// types them, across every kind of value.
#[test]
fn redis_cli_works_with_every_kind_of_value() {
    if !util::require_tool("redis-cli") {
        return;
    }
    let (engine, addr) = start(2);
    let port = addr.port().to_string();
    let cli = |args: &[&str]| -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    };
    let script: [(&[&str], &str); 25] = [
        (&["PING"], "PONG"),
        (&["SET", "s", "hello world"], "OK"),
        (&["GET", "s"], "hello world"),
        (&["INCR", "n"], "1"),
        (&["RPUSH", "l", "b", "c"], "2"),
        (&["LPUSH", "l", "a"], "3"),
        (&["LRANGE", "l", "0", "-1"], "a\nb\nc"),
        (&["LRANGE", "l", "-2", "99"], "b\nc"),
        (&["LPOP", "l"], "a"),
        (&["RPOP", "l"], "c"),
        (&["LLEN", "l"], "1"),
        (&["SADD", "set", "x", "y", "x"], "2"),
        (&["SCARD", "set"], "2"),
        (&["HSET", "h", "f", "v", "g", "w"], "2"),
        (&["HGET", "h", "g"], "w"),
        (&["ZADD", "z", "2", "b", "1", "a", "1.5", "c"], "3"),
        (&["ZPOPMIN", "z", "2"], "a\n1\nc\n1.5"),
        (&["ZCARD", "z"], "1"),
        (&["XADD", "x", "5-1", "f", "v"], "5-1"),
        (
            &["XADD", "x", "5-1", "f", "v"],
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ),
        (&["XLEN", "x"], "1"),
        (&["TYPE", "h"], "hash"),
        (
            &["GET", "l"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (&["SET", "l", "now a string"], "OK"),
        (&["TYPE", "l"], "string"),
    ];
    for (args, expected) in script {
        assert_eq!(cli(args), expected, "redis-cli {args:?}");
    }
    // Popping the last member removes the key, as Redis does.
    let member = cli(&["SPOP", "set"]);
    assert!(member == "x" || member == "y", "{member}");
    cli(&["SPOP", "set"]);
    assert_eq!(cli(&["EXISTS", "set"]), "0");
    util::stop(engine);
}
