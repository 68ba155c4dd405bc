//! tokio echo peer: one task per connection, read then `write_all`.
//!
//! `tokio-echo --addr 127.0.0.1:7000 [--threads 0] [--tls-cert PEM --tls-key PEM]`
//! (0 = current-thread runtime, N = multi-thread runtime with N workers;
//! with a certificate every connection is tokio-rustls first).

use netloom_bench::flags::Flags;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Read buffer per connection: a 4 KiB message still takes one read, and
/// an idle connection holds no more than it needs (this size favours tokio
/// in the idle-memory scenario over the 16 KiB many echo servers use).
const BUF: usize = 4 * 1024;

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S) {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if socket.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let flags = Flags::parse(
        "tokio-echo",
        "--addr 127.0.0.1:7000 [--threads 0] [--tls-cert PEM] [--tls-key PEM]",
    );
    let addr = flags.text("addr", "127.0.0.1:7000");
    let tls = netloom_bench::tls::acceptor("tokio-echo", &flags);
    netloom_bench::tokio_runtime(flags.get("threads", 0))?.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("tokio-echo: listening on {}", listener.local_addr()?);
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors and the like: keep the connections we have.
                Err(_) => continue,
            };
            let _ = socket.set_nodelay(true);
            netloom_bench::spawn_served!(&tls, socket, serve);
        }
    })
}
