// cargo run --release --example redis -- --addr tcp://127.0.0.1:6380 --loops 2
// cargo run --release --features tls --example redis -- --addr tcp://127.0.0.1:6390 --tls-self-signed   (then: redis-cli --tls --cacert PEM -p 6390 ping)
// cargo run --release --example redis -- --metrics-addr tcp://127.0.0.1:9100   (then: curl http://127.0.0.1:9100/metrics)
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
//! With `--metrics-addr tcp://HOST:PORT` it also serves the engine's
//! counters (`Engine::stats`) in the Prometheus text format at
//! `http://HOST:PORT/metrics` (a plain HTTP/1.1 responder on a thread of its
//! own): `curl --silent http://127.0.0.1:9100/metrics | promtool check metrics`.
//!
//! Try it: `redis-cli -p 6380`, or `redis-benchmark -p 6380 -q` (every
//! default test), or `redis-benchmark -p 6380 -P 16 -t get,set -q`.
//! Ctrl-C or SIGTERM stops it cleanly.

mod collections;
mod commands;
#[path = "../support/metrics.rs"]
mod metrics;
mod resp;
#[path = "../support/serve.rs"]
mod serve;
mod server;
mod store;
mod values;
use metrics::{MetricsFlag, METRICS_USAGE};
use serve::serve;

use netloom::Engine;

use server::{RedisServer, DEFAULT_MAX_PENDING_INPUT};
#[path = "../support/stream_url.rs"]
mod stream_url;
use stream_url::stream_url;
#[path = "../support/engine_tls.rs"]
mod engine_tls;
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
    let mut metrics = MetricsFlag::default();
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
            other if metrics.take(other, &mut value) => {}
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
        .bind(
            "redis",
            builder,
            &[addr],
            &[],
            netloom::ListenerOptions::new(),
        )
        .unwrap_or_else(|e| usage(&e));
    serve(
        "redis",
        builder,
        RedisServer::new(resolved_loops).max_pending_input(max_pending_input),
        None,
        |engine, addr| format!("listening on {addr} with {} loops", engine.loops()),
        |engine| metrics.serve("redis", engine),
    );
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "redis",
        &format!("usage: redis [--addr tcp://HOST:PORT] [--loops N] [--max-pending-input-mib MIB] {BACKEND_USAGE} {TLS_USAGE} {METRICS_USAGE}"),
        problem,
    )
}
