// cargo run --release --example proxy -- --addr tcp://127.0.0.1:9100 --upstream 127.0.0.1:9000 --loops 2 [--backend epoll|io-uring|auto]
// cargo run --release --example proxy -- --addr tcp://127.0.0.1:9100 --upstream 127.0.0.1:8081 --send-proxy v2   (to an http example with --proxy-protocol v2)
//! A TCP proxy: every client connection gets its own backend connection,
//! dialed from the client's loop onto that same loop, so both sides of a
//! pair live on one thread and forwarding needs no cross-thread hop.
//!
//! Backpressure runs both ways: when the side being written to has more
//! than the high-water mark pending (a slow reader), the proxy stops reading
//! the other side until it drains, so TCP flow control slows the sender
//! down instead of the proxy's memory growing.
//!
//! A half-close is forwarded, as HAProxy and socat do: when one side sends
//! its FIN (`on_eof`), the other side's write half is shut once what was
//! forwarded to it is flushed (`ConnHandle::shutdown_write`), and the pair
//! stays open the other way, so a client that sends its request and shuts
//! down its write side still gets the whole answer. Each side closes once
//! both of its directions are done; when either side closes for another
//! reason, the other is closed after its pending bytes are flushed. A
//! backend that cannot be reached closes the client connection.
//!
//! PROXY protocol: `--send-proxy v1|v2` sends the backend a header with the
//! client's address before anything else, so the backend sees the client,
//! not the proxy; `--proxy-protocol v1|v2` expects one from a balancer in
//! front, and then passes that balancer's client on.

use std::net::SocketAddr;
use std::time::Duration;

use netloom::proxy_protocol::{encode, ProxyProtocol};
use netloom::{Action, Conn, ConnHandle, Engine, Error, Handler, ListenerOptions, Options};
#[path = "support/serve.rs"]
mod serve;
use serve::serve;
#[path = "support/usage.rs"]
mod usage;
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

/// Per-connection state of either side of a pair.
#[derive(Default)]
struct Side {
    /// Whether this is the backend (outbound) side.
    backend: bool,
    /// The other side, once both exist.
    peer: Option<ConnHandle<Side>>,
}

struct Proxy {
    backend: SocketAddr,
    /// Pending bytes on the side being written to above which the proxy
    /// stops reading the other side.
    high_water: usize,
    /// The PROXY protocol header sent to the backend first, if any.
    send_proxy: Option<ProxyProtocol>,
}

impl Proxy {
    /// Forwards everything `conn` received to its peer; pauses `conn` while
    /// the peer is backed up.
    fn forward(&self, conn: &mut Conn<'_, Side>) -> Action {
        let Some(peer) = conn.context().peer.clone() else {
            // Not linked yet: keep the bytes; the link wakes us.
            return Action::None;
        };
        let data = conn.next(usize::MAX).to_vec();
        if data.is_empty() {
            return Action::None;
        }
        if peer.async_write(data).is_err() {
            return Action::Close;
        }
        if peer.pending() > self.high_water && conn.pause_reading_until_drained(&peer).is_err() {
            return Action::Close;
        }
        Action::None
    }
}

impl Handler for Proxy {
    type Context = Side;

    fn on_open(&self, conn: &mut Conn<'_, Side>) -> Action {
        // Each side is paced by its peer's backlog, not its own (see
        // `set_auto_pause`): coupling the two directions could deadlock.
        conn.set_auto_pause(false);
        let me = conn.handle();
        if conn.context().backend {
            // Link the client side to us; it reads from now on.
            let Some(client) = conn.context().peer.clone() else {
                return Action::Close;
            };
            let linked = client.execute(move |client| {
                client.context_mut().peer = Some(me);
                client.resume_reading();
                client.wake();
            });
            return if linked.is_ok() {
                Action::None
            } else {
                Action::Close
            };
        }
        // A client: read nothing until the backend is there.
        conn.pause_reading();
        let backend = Side {
            backend: true,
            peer: Some(me),
        };
        let timeout = Some(Duration::from_secs(5));
        let dialed = match self.send_proxy {
            Some(version) => {
                // Behind a balancer: its client and the address they dialed.
                let client = conn.peer_addr().inet();
                let dialed = conn.proxy().and_then(|p| p.destination()?.inet());
                let frontend = dialed.or_else(|| conn.local_addr().ok()?.inet());
                let header = encode(version, client.zip(frontend));
                conn.dial_with_proxy_header(self.backend, timeout, header, backend)
            }
            None => conn.dial(self.backend, timeout, backend),
        };
        match dialed {
            Ok(()) => Action::None,
            Err(e) => {
                eprintln!("proxy: cannot dial {}: {e}", self.backend);
                Action::Close
            }
        }
    }

    fn on_traffic(&self, conn: &mut Conn<'_, Side>) -> Action {
        self.forward(conn)
    }

    fn on_eof(&self, conn: &mut Conn<'_, Side>) -> Action {
        // Forwarded behind the bytes already sent to the other side.
        match &conn.context().peer {
            Some(peer) if peer.shutdown_write().is_ok() => Action::None,
            _ => Action::Close,
        }
    }

    fn on_close(&self, conn: &mut Conn<'_, Side>, err: Option<&Error>) -> Action {
        if let Some(e) = err {
            let side = if conn.context().backend {
                "backend"
            } else {
                "client"
            };
            eprintln!("proxy: {side} {} closed: {e}", conn.peer_addr());
        }
        if let Some(peer) = conn.context_mut().peer.take() {
            // Flushes what was forwarded to it, then closes.
            let _ = peer.close();
        }
        Action::None
    }
}

fn main() {
    let mut addrs = Vec::new();
    let mut backend = "127.0.0.1:9000".to_string();
    let mut options = Options::default().stop_on_signals(true);
    let mut send_proxy = None;
    let mut listener = ListenerOptions::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => addrs.push(value()),
            "--upstream" => backend = value(),
            // The event loops' backend, or the upstream's old flag.
            "--backend" => {
                let value = value();
                match value.as_str() {
                    "epoll" | "io-uring" | "auto" => {
                        options = options.backend(parse_backend(&value, |p| usage(p)))
                    }
                    _ => backend = value,
                }
            }
            "--loops" => {
                options = options.loops(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--loops takes a number")),
                )
            }
            "--send-proxy" => send_proxy = Some(version(&value())),
            "--proxy-protocol" => listener = listener.proxy_protocol(version(&value())),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let backend: SocketAddr = backend
        .trim_start_matches("tcp://")
        .parse()
        .unwrap_or_else(|_| usage("--upstream takes IP:PORT"));
    if addrs.is_empty() {
        addrs.push("tcp://127.0.0.1:9100".to_string());
    }
    let proxy = Proxy {
        backend,
        high_water: 256 * 1024,
        send_proxy,
    };
    let mut builder = Engine::builder().options(options.high_water(proxy.high_water));
    for addr in &addrs {
        builder = builder.bind_with(addr, listener.clone());
    }
    serve(
        "proxy",
        builder,
        proxy,
        None,
        |engine, addr| format!("{addr} -> {backend} with {} loops", engine.loops()),
        |_| {},
    );
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "proxy",
        &format!("usage: proxy [--addr tcp://HOST:PORT]... [--upstream IP:PORT] [--loops N] [--send-proxy v1|v2] [--proxy-protocol v1|v2] {BACKEND_USAGE}\n\
         (--backend IP:PORT is the old spelling of --upstream)"),
        problem,
    )
}

fn version(given: &str) -> ProxyProtocol {
    given.parse().unwrap_or_else(|e: String| usage(&e))
}
