// cargo run --release --example redis -- --addr tcp://127.0.0.1:6380 --loops 2
// cargo run --release --features tls --example redis -- --addr tcp://127.0.0.1:6390 --tls-self-signed   (then: redis-cli --tls --cacert PEM -p 6390 ping)
//! A RESP2 (Redis protocol) server on netloom's callback engine.
//!
//! - Commands: PING, ECHO, SET (EX / PX / NX / XX / KEEPTTL), GET, DEL,
//!   EXISTS, INCR, INCRBY, DECR, DECRBY, MGET, MSET, EXPIRE, PEXPIRE, TTL,
//!   PTTL, TYPE, FLUSHALL, FLUSHDB, DBSIZE, SELECT 0, QUIT; lists (LPUSH,
//!   RPUSH, LPOP, RPOP, LRANGE, LLEN), sets (SADD, SPOP, SCARD), hashes
//!   (HSET, HGET, HLEN), sorted sets (ZADD, ZPOPMIN, ZCARD) and streams
//!   (XADD, XLEN): what `redis-benchmark`'s default tests use, so they run
//!   to the end; and enough of COMMAND and CONFIG GET for `redis-cli` and
//!   `redis-benchmark`.
//! - RESP arrays and inline commands (`nc`-friendly); pipelining: every
//!   complete command of one read is answered, in order, with one write.
//! - Keys live in a sharded map shared by all loops (`store.rs` explains
//!   why); an expired key reads as absent at once and is removed by the
//!   engine's ticker.
//! - An unknown command or bad arguments get `-ERR ...` and the connection
//!   stays; input that is not RESP gets `-ERR Protocol error: ...` and a
//!   close, as does a bulk length over 64 MiB or an array of over 1,048,576
//!   elements.
//! - Commands are parsed as they arrive, resuming where the last read
//!   stopped, so a command dribbled in costs time in proportion to its size.
//! - Bounds: a reply that would leave over 256 MiB of replies unread by its
//!   client is answered with `-ERR` instead (the connection stays); all
//!   connections together may hold `--max-pending-input-mib` (default 128)
//!   of unfinished commands, past which a connection whose unfinished
//!   command grows gets `-ERR` and a close.
//!
//! Try it: `redis-cli -p 6380`, or `redis-benchmark -p 6380 -q` (every
//! default test), or `redis-benchmark -p 6380 -P 16 -t get,set -q`.
//! Ctrl-C or SIGTERM stops it cleanly.

mod collections;
mod commands;
mod resp;
#[path = "../support/serve.rs"]
mod serve;
mod server;
mod store;
mod values;
use serve::serve;

use netloom::Engine;

use server::{RedisServer, DEFAULT_MAX_PENDING_INPUT};
#[path = "../support/stream_url.rs"]
mod stream_url;
use stream_url::stream_url;
#[path = "../support/tls_flags.rs"]
mod tls_flags;
#[path = "../support/usage.rs"]
mod usage;
use tls_flags::{TlsFlags, TLS_USAGE};
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

fn main() {
    let mut addr = "tcp://127.0.0.1:6380".to_string();
    let mut loops = 0;
    let mut backend = netloom::Backend::Auto;
    let mut max_pending_input = DEFAULT_MAX_PENDING_INPUT;
    let mut tls = TlsFlags::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => addr = stream_url(&value()).unwrap_or_else(|e| usage(&e)),
            "--loops" => {
                loops = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--loops takes a number"))
            }
            "--max-pending-input-mib" => {
                let mib: usize = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--max-pending-input-mib takes a number"));
                max_pending_input = mib << 20;
            }
            "--backend" => backend = parse_backend(&value(), |p| usage(p)),
            "-h" | "--help" => usage(""),
            other if tls.take(other, &mut value) => {}
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let resolved_loops = match loops {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let builder = Engine::builder().options(
        RedisServer::options(loops)
            .backend(backend)
            .stop_on_signals(true),
    );
    let builder = tls
        .bind("redis", builder, &[addr], &[])
        .unwrap_or_else(|e| usage(&e));
    serve(
        "redis",
        builder,
        RedisServer::new(resolved_loops).max_pending_input(max_pending_input),
        |engine, addr| format!("listening on {addr} with {} loops", engine.loops()),
    );
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "redis",
        &format!("usage: redis [--addr tcp://HOST:PORT] [--loops N] [--max-pending-input-mib MIB] {BACKEND_USAGE} {TLS_USAGE}"),
        problem,
    )
}
