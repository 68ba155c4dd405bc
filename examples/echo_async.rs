// cargo run --release --example echo_async -- --addr tcp://127.0.0.1:9000 --loops 2 [--reuseport] [--pin]
//! The echo server in the goroutine style: an accept loop, one task per
//! connection, `read` then `write_all`.
//!
//! Without `--reuseport` one acceptor (on the main thread) hands each
//! connection to the loops in turn; with it every loop has its own
//! `SO_REUSEPORT` listener and accept loop. Stops cleanly on Ctrl-C or
//! SIGTERM: accepting stops at once, connections get a grace period, and the
//! process exits with status 0.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use netloom::rt::net::{TcpListener, TcpStream};
use netloom::rt::{self, Handle, Runtime};

/// First and largest size of a connection's read buffer. An idle or
/// chatty connection keeps a small one; one that fills it (a bulk stream)
/// gets a bigger one, so it needs fewer reads.
const BUF_MIN: usize = 2 * 1024;
const BUF_MAX: usize = 64 * 1024;

async fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; BUF_MIN];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
        if n == buf.len() && buf.len() < BUF_MAX {
            buf = vec![0u8; buf.len() * 4];
        }
    }
}

/// Accepts until the runtime stops; `local` keeps each connection on the
/// acceptor's loop (per-loop listeners), otherwise they are spread.
async fn accept_loop(listener: TcpListener, local: bool) {
    let handle = Handle::current();
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    eprintln!("echo_async: TCP_NODELAY: {e}");
                }
                if local {
                    rt::spawn_local(echo(stream));
                } else {
                    rt::spawn(echo(stream));
                }
            }
            Err(_) if handle.is_stopping() => return,
            Err(e) => {
                // EMFILE and the like leave the listener ready: pause, not spin.
                eprintln!("echo_async: accept: {e}");
                rt::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn main() {
    let mut addrs = Vec::new();
    let mut loops = 0;
    let mut reuseport = false;
    let mut pin = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => addrs.push(parse_addr(&value())),
            "--loops" => {
                loops = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--loops takes a number"))
            }
            "--reuseport" => reuseport = true,
            "--pin" => pin = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if addrs.is_empty() {
        addrs.push(parse_addr("tcp://127.0.0.1:9000"));
    }
    let rt = Runtime::builder()
        .loops(loops)
        .pin_loops(pin)
        .stop_on_signals(true)
        .shutdown_grace(Duration::from_secs(1))
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let handle = rt.handle();
    rt.block_on(async {
        // Bound inside block_on, so that the address is printed once every
        // descriptor of the runtime (this thread's poller too) exists.
        for addr in addrs {
            let first = bind(addr, reuseport);
            let bound = first.local_addr().unwrap_or_else(|e| fail(&e.to_string()));
            if reuseport {
                rt.spawn_on(0, accept_loop(first, true));
                for i in 1..rt.loops() {
                    rt.spawn_on(i, accept_loop(bind(bound, true), true));
                }
            } else {
                rt::spawn_local(accept_loop(first, false));
            }
            println!("echo_async: listening on {bound} with {} loops", rt.loops());
        }
        handle.stopped().await;
    });
    rt.shutdown();
}

/// `tcp://host:port` (also `tcp4://`, `tcp6://`, or a bare `host:port`).
fn parse_addr(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let (family, rest) = match url.split_once("://") {
        Some(("tcp", rest)) => (None, rest),
        Some(("tcp4", rest)) => (Some(true), rest),
        Some(("tcp6", rest)) => (Some(false), rest),
        Some((scheme, _)) => usage(&format!("unknown scheme {scheme}")),
        None => (None, url),
    };
    rest.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.find(|a| family.map_or(true, |v4| a.is_ipv4() == v4)))
        .unwrap_or_else(|| usage(&format!("cannot resolve {url}")))
}

fn bind(addr: SocketAddr, reuseport: bool) -> TcpListener {
    let bound = if reuseport {
        TcpListener::bind_reuseport(addr)
    } else {
        TcpListener::bind(addr)
    };
    bound.unwrap_or_else(|e| fail(&format!("cannot listen on {addr}: {e}")))
}

fn fail(problem: &str) -> ! {
    eprintln!("echo_async: {problem}");
    std::process::exit(1);
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("echo_async: {problem}");
    }
    eprintln!("usage: echo_async [--addr tcp://HOST:PORT]... [--loops N] [--reuseport] [--pin]");
    std::process::exit(2);
}
