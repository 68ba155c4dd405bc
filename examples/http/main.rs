// cargo run --release --example http -- --addr tcp://127.0.0.1:8080 --loops 2 [--idle-timeout 10]
// cargo run --release --features tls --example http -- --addr tcp://127.0.0.1:8443 --tls-self-signed   (then: curl --cacert PEM https://localhost:8443/plaintext)
// cargo run --release --example http -- --metrics-addr tcp://127.0.0.1:9100   (then: curl http://127.0.0.1:9100/metrics)
// cargo run --release --example http -- --addr tcp://127.0.0.1:8081 --proxy-protocol v2   (behind HAProxy's send-proxy-v2; README "Deploying")
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
//! - `GET /whoami`: the client's address as the handler sees it
//!   (`127.0.0.2:41234\n`). With `--proxy-protocol v1|v2` every connection
//!   must start with a PROXY protocol header (a load balancer such as
//!   HAProxy with `send-proxy-v2` in front): `/whoami` then shows the
//!   client behind the balancer, not the balancer.
//! - Silent connections close after `--idle-timeout` seconds (default 10).
//!
//! With `--metrics-addr tcp://HOST:PORT` it also serves the engine's
//! counters (`Engine::stats`) in the Prometheus text format at
//! `http://HOST:PORT/metrics` (a plain HTTP/1.1 responder on a thread of its
//! own): `curl --silent http://127.0.0.1:9100/metrics | promtool check metrics`.
//!
//! Try it: `curl -i http://127.0.0.1:8080/json`, or
//! `wrk -t1 -c256 -d10s -s examples/http/pipeline.lua http://127.0.0.1:8080/plaintext -- 16`
//! (from the repository root; the script pipelines 16 requests per write).
//! Ctrl-C or SIGTERM stops it cleanly.
//!
//! `--addr` also takes inherited sockets: `systemd://`, `systemd://NAME`
//! (socket activation) and `fd://N`. Restart without dropping a request:
//! start every generation with `--handoff /run/http.handoff` (the first binds
//! its address, each next one takes the sockets over from the running one,
//! which then answers its keep-alive clients' next request with
//! `Connection: close`, drains and exits).

mod date;
#[path = "../support/metrics.rs"]
mod metrics;
mod parse;
#[path = "../support/serve.rs"]
mod serve;
mod server;
mod session;
use metrics::{MetricsFlag, METRICS_USAGE};
use serve::serve;

use std::path::PathBuf;
use std::time::Duration;

use netloom::Engine;

use parse::Limits;
use server::HttpServer;
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

/// How long one request (head and body) may take to arrive once it began.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let mut addr = "tcp://127.0.0.1:8080".to_string();
    let mut loops = 0;
    let mut backend = netloom::Backend::Auto;
    let mut idle_timeout = Duration::from_secs(10);
    let mut tls = TlsFlags::default();
    let mut metrics = MetricsFlag::default();
    let mut listener = netloom::ListenerOptions::new();
    let mut handoff: Option<PathBuf> = None;
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
            "--proxy-protocol" => {
                let version = value().parse().unwrap_or_else(|e: String| usage(&e));
                listener = listener.proxy_protocol(version);
            }
            "--handoff" => handoff = Some(value().into()),
            "--backend" => backend = parse_backend(&value(), |p| usage(p)),
            "-h" | "--help" => usage(""),
            other if tls.take(other, &mut value) => {}
            other if metrics.take(other, &mut value) => {}
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let options = HttpServer::options(loops, idle_timeout)
        .backend(backend)
        .stop_on_signals(true);
    let server = HttpServer::new(Limits::default(), REQUEST_TIMEOUT);
    let builder = Engine::builder().options(options);
    let builder = tls
        .bind("http", builder, &[addr], &[b"http/1.1"], listener)
        .unwrap_or_else(|e| usage(&e));
    serve(
        "http",
        builder,
        server,
        handoff.as_deref(),
        |engine, addr| format!("listening on {addr} with {} loops", engine.loops()),
        |engine| metrics.serve("http", engine),
    );
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "http",
        &format!(
            "usage: http [--addr tcp://HOST:PORT|unix:///PATH|systemd://[NAME]|fd://N] [--loops N] [--idle-timeout SECS] [--handoff PATH] [--proxy-protocol v1|v2] {BACKEND_USAGE} {TLS_USAGE} {METRICS_USAGE}"
        ),
        problem,
    )
}
