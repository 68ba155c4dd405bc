// cargo run --release --example echo_async -- --addr tcp://127.0.0.1:9000 --loops 2 [--reuseport] [--pin] [--tls-self-signed]
//! The echo server in the goroutine style: an accept loop, one task per
//! connection, `read` then `write_all`. A connection waits for data with
//! `readable()` before it takes a read buffer from its loop's spares, so
//! an idle one holds none.
//!
//! Without `--reuseport` one acceptor (on the main thread) hands each
//! connection to the loops in turn; with it every loop has its own
//! `SO_REUSEPORT` listener and accept loop. Stops cleanly on Ctrl-C or
//! SIGTERM: accepting stops at once, connections get a grace period, and the
//! process exits with status 0.
//!
//! TLS: `--tls-cert PEM --tls-key PEM` or `--tls-self-signed`, with the
//! `tls` feature (`cargo run --release --features tls --example echo_async
//! -- --tls-self-signed`); try it with `openssl s_client -connect
//! 127.0.0.1:9000`.

use std::cell::RefCell;
use std::io;

#[path = "support/async_server.rs"]
mod async_server;
#[path = "support/tls_flags.rs"]
mod tls_flags;
#[path = "support/usage.rs"]
mod usage;

use async_server::Served;

/// Size of the read buffers a loop lends its connections, and the largest
/// one a connection that keeps filling its buffer (a bulk stream) grows to,
/// so it needs fewer reads. A buffer is held only from `readable()` until
/// the socket is drained, so one loop rarely has more than a few out, and
/// the connections of a loop share the same few (warm in cache) buffers.
const BUF: usize = 16 * 1024;
const BUF_MAX: usize = 64 * 1024;
/// Spare buffers a loop keeps for reuse.
const SPARES: usize = 16;

thread_local! {
    /// This loop's spare read buffers: a connection holds one only while it
    /// has something to read, so idle connections cost no buffer.
    static SPARE_BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

async fn echo(mut stream: Served) -> io::Result<()> {
    loop {
        stream.readable().await?;
        let mut buf = SPARE_BUFFERS
            .with_borrow_mut(Vec::pop)
            .unwrap_or_else(|| vec![0u8; BUF]);
        let open = echo_until_drained(&mut stream, &mut buf).await;
        if buf.len() == BUF {
            SPARE_BUFFERS.with_borrow_mut(|spares| {
                if spares.len() < SPARES {
                    spares.push(buf);
                }
            });
        }
        if !open? {
            // Over TLS this sends close_notify: the client sees an orderly end.
            let _ = stream.shutdown_write().await;
            return Ok(());
        }
    }
}

/// `read` then `write_all` until a read comes back short (the socket is
/// drained); false once the peer has closed.
async fn echo_until_drained(stream: &mut Served, buf: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let n = stream.read(buf).await?;
        if n == 0 {
            return Ok(false);
        }
        stream.write_all(&buf[..n]).await?;
        if n < buf.len() {
            return Ok(true);
        }
        if buf.len() < BUF_MAX {
            *buf = vec![0u8; buf.len() * 4];
        }
    }
}

fn main() {
    async_server::AsyncServer {
        name: "echo_async",
        default_addr: "tcp://127.0.0.1:9000",
        alpn: &[],
        idle_timeout: None,
        serve: |stream, _| echo(stream),
    }
    .run();
}
