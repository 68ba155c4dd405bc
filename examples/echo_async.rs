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

use netloom::rt::net::TcpStream;

#[path = "support/async_server.rs"]
mod async_server;

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

fn main() {
    async_server::AsyncServer {
        name: "echo_async",
        default_addr: "tcp://127.0.0.1:9000",
        idle_timeout: None,
        serve: |stream, _| echo(stream),
    }
    .run();
}
