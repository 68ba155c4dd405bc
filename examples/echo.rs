// cargo run --release --example echo -- --addr tcp://127.0.0.1:9000 --addr udp://127.0.0.1:9000 --addr unix:///tmp/netloom-echo.sock --loops 2 [--reuseport] [--lb round-robin|least-conn|source-hash] [--udp-batch 32] [--backend epoll|io-uring|auto]
// cargo run --release --features tls --example echo -- --addr tcp://127.0.0.1:9443 --tls-self-signed
// cargo run --release --example echo -- --metrics-addr tcp://127.0.0.1:9100   (then: curl http://127.0.0.1:9100/metrics)
//! An echo server: writes back every byte it reads, in order, over TCP and
//! Unix domain stream sockets; over UDP it answers each datagram with the
//! same datagram. Several `--addr` of any scheme are served by the same loops.
//!
//! With `--tls-cert PEM --tls-key PEM` or `--tls-self-signed` (feature
//! `tls`) the TCP and Unix addresses speak TLS; UDP stays plain. With
//! `--proxy-protocol v1|v2` connections must start with a PROXY protocol
//! header (stream addresses only), which is not echoed.
//!
//! With `--metrics-addr tcp://HOST:PORT` it also serves the engine's
//! counters (`Engine::stats`) in the Prometheus text format at
//! `http://HOST:PORT/metrics` (a plain HTTP/1.1 responder on a thread of its
//! own): `curl --silent http://127.0.0.1:9100/metrics | promtool check metrics`.
//!
//! Stops cleanly on Ctrl-C or SIGTERM: outbound bytes are flushed, every
//! connection closed, and the process exits with status 0.

use netloom::{Action, Conn, Engine, Handler, LoadBalancer, Options};
#[path = "support/engine_tls.rs"]
mod engine_tls;
#[path = "support/metrics.rs"]
mod metrics;
#[path = "support/tls_flags.rs"]
mod tls_flags;
#[path = "support/usage.rs"]
mod usage;
use metrics::{MetricsFlag, METRICS_USAGE};
use tls_flags::{TlsFlags, TLS_USAGE};
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

struct Echo;

impl Handler for Echo {
    type Context = ();

    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        // The inbound slice borrows the loop's read buffer; `write` copies
        // only what the kernel does not take at once. On UDP the inbound
        // bytes are one datagram and `write` replies to its sender.
        let (inbound, mut out) = conn.split();
        let len = inbound.len();
        let written = out.write(inbound);
        conn.discard(len);
        match written {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }
}

fn main() {
    let mut addrs = Vec::new();
    let mut options = Options::default().stop_on_signals(true);
    let mut tls = TlsFlags::default();
    let mut metrics = MetricsFlag::default();
    let mut listener = netloom::ListenerOptions::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => addrs.push(value()),
            "--loops" => {
                options = options.loops(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--loops takes a number")),
                )
            }
            "--reuseport" => options = options.reuseport(true),
            "--udp-batch" => {
                options = options.udp_batch(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--udp-batch takes a number")),
                )
            }
            "--pin" => options = options.pin_loops(true),
            "--lb" => {
                let lb: LoadBalancer = value()
                    .parse()
                    .unwrap_or_else(|e: netloom::Error| usage(&e.to_string()));
                options = options.load_balancer(lb);
            }
            "--proxy-protocol" => {
                let version = value().parse().unwrap_or_else(|e: String| usage(&e));
                listener = listener.proxy_protocol(version);
            }
            "--backend" => options = options.backend(parse_backend(&value(), |p| usage(p))),
            "-h" | "--help" => usage(""),
            other if tls.take(other, &mut value) => {}
            other if metrics.take(other, &mut value) => {}
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if addrs.is_empty() {
        addrs.push("tcp://127.0.0.1:9000".to_string());
    }
    let builder = tls
        .bind(
            "echo",
            Engine::builder().options(options),
            &addrs,
            &[],
            listener,
        )
        .unwrap_or_else(|e| usage(&e));
    let engine = builder.start(Echo).unwrap_or_else(|e| {
        eprintln!("echo: {e}");
        std::process::exit(1);
    });
    for (url, addr) in addrs.iter().zip(engine.local_addrs()) {
        let scheme = url.split("://").next().unwrap_or("");
        // The address stands alone as a word: scripts parse it.
        println!(
            "echo: listening on {addr} ({scheme}) with {} loops",
            engine.loops()
        );
    }
    metrics.serve("echo", &engine);
    if let Err(e) = engine.wait() {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    exit_with_usage("echo", &format!("usage: echo [--addr tcp://HOST:PORT | udp://HOST:PORT | unix:///PATH | unix://@NAME | systemd://[NAME] | fd://N]... [--loops N] [--reuseport] [--pin] [--lb round-robin|least-conn|source-hash] [--udp-batch N] [--proxy-protocol v1|v2] {BACKEND_USAGE} {TLS_USAGE} {METRICS_USAGE}"), problem)
}
