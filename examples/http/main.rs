// cargo run --release --example http -- --addr tcp://127.0.0.1:8080 --loops 2 [--idle-timeout 10]
// cargo run --release --features tls --example http -- --addr tcp://127.0.0.1:8443 --tls-self-signed   (then: curl --cacert PEM https://localhost:8443/plaintext)
//! An HTTP/1.1 server for the TechEmpower plaintext and JSON tests, on
//! netloom's callback engine.
//!
//! - `GET /plaintext`: `Hello, World!` (text/plain); `GET /json`:
//!   `{"message":"Hello, World!"}` (application/json); `HEAD` of both.
//!   Every response has `Server`, `Date` (cached, refreshed by the engine's
//!   ticker) and `Content-Length`.
//! - Keep-alive, `Connection: close`, HTTP/1.0; pipelining: all complete
//!   requests of one read are answered in order with one write.
//! - Request bodies by `Content-Length` (up to 1 MiB) are skipped as they
//!   arrive; `Expect: 100-continue` is honoured.
//! - Refusals, each followed by a close: 400 malformed, 413 body too large,
//!   414 request line over 8 KiB, 431 head over 8 KiB or over 100 fields,
//!   501 any `Transfer-Encoding`, 505 other versions, 408 a request that
//!   takes over 10 s to arrive. 404 (unknown path) and 405 (other methods)
//!   keep the connection.
//! - Silent connections close after `--idle-timeout` seconds (default 10).
//!
//! Try it: `curl -i http://127.0.0.1:8080/json`, or
//! `wrk -t1 -c256 -d10s -s examples/http/pipeline.lua http://127.0.0.1:8080/plaintext -- 16`
//! (from the repository root; the script pipelines 16 requests per write).
//! Ctrl-C or SIGTERM stops it cleanly.

mod date;
mod parse;
#[path = "../support/serve.rs"]
mod serve;
mod server;
mod session;
use serve::serve;

use std::time::Duration;

use netloom::Engine;

use parse::Limits;
use server::HttpServer;
#[path = "../support/stream_url.rs"]
mod stream_url;
use stream_url::stream_url;
#[path = "../support/tls_flags.rs"]
mod tls_flags;
#[path = "../support/usage.rs"]
mod usage;
use tls_flags::{TlsFlags, TLS_USAGE};
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

/// How long one request (head and body) may take to arrive once it began.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let mut addr = "tcp://127.0.0.1:8080".to_string();
    let mut loops = 0;
    let mut backend = netloom::Backend::Auto;
    let mut idle_timeout = Duration::from_secs(10);
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
            "--idle-timeout" => {
                let secs: u64 = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--idle-timeout takes seconds"));
                if secs == 0 {
                    usage("--idle-timeout must be positive");
                }
                idle_timeout = Duration::from_secs(secs);
            }
            "--backend" => backend = parse_backend(&value(), |p| usage(p)),
            "-h" | "--help" => usage(""),
            other if tls.take(other, &mut value) => {}
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let options = HttpServer::options(loops, idle_timeout)
        .backend(backend)
        .stop_on_signals(true);
    let server = HttpServer::new(Limits::default(), REQUEST_TIMEOUT);
    let builder = Engine::builder().options(options);
    let builder = tls
        .bind("http", builder, &[addr], &[b"http/1.1"])
        .unwrap_or_else(|e| usage(&e));
    serve("http", builder, server, |engine, addr| {
        format!("listening on {addr} with {} loops", engine.loops())
    });
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "http",
        &format!(
            "usage: http [--addr tcp://HOST:PORT] [--loops N] [--idle-timeout SECS] {BACKEND_USAGE} {TLS_USAGE}"
        ),
        problem,
    )
}
