//! The interop features: tokio's and futures' I/O traits on the stream
//! types, byte-exact in both directions. Run with
//! `cargo test --features tokio-io,futures-io --test rt_compat`.
#![cfg(any(feature = "tokio-io", feature = "futures-io"))]

mod util;

use std::future::poll_fn;
use std::pin::Pin;

use netloom::rt::net::{TcpListener, TcpStream, UnixStream};
use netloom::rt::{self, Runtime};

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[cfg(feature = "tokio-io")]
mod tokio_io {
    use super::*;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, mut data: &[u8]) {
        while !data.is_empty() {
            let n = poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, data))
                .await
                .unwrap();
            data = &data[n..];
        }
        poll_fn(|cx| Pin::new(&mut *w).poll_shutdown(cx))
            .await
            .unwrap();
    }

    async fn read_to_end<R: AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut chunk);
            poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, &mut buf))
                .await
                .unwrap();
            if buf.filled().is_empty() {
                return out;
            }
            out.extend_from_slice(buf.filled());
        }
    }

    #[test]
    fn tokio_traits_carry_bytes_exactly() {
        let rt = Runtime::builder().loops(1).build().unwrap();
        rt.block_on(async {
            let data = util::pattern(1, 300_000);
            let (mut a, mut b) = tcp_pair().await;
            let sent = data.clone();
            let writer = rt::spawn_local(async move { write_all(&mut a, &sent).await });
            assert!(read_to_end(&mut b).await == data);
            writer.await.unwrap();

            let (mut a, mut b) = UnixStream::pair().unwrap();
            let sent = data.clone();
            let writer = rt::spawn_local(async move { write_all(&mut a, &sent).await });
            assert!(read_to_end(&mut b).await == data);
            writer.await.unwrap();
        });
    }
}

#[cfg(feature = "futures-io")]
mod futures_traits {
    use super::*;
    use futures_io::{AsyncRead, AsyncWrite};

    async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, mut data: &[u8]) {
        while !data.is_empty() {
            let n = poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, data))
                .await
                .unwrap();
            data = &data[n..];
        }
        poll_fn(|cx| Pin::new(&mut *w).poll_close(cx))
            .await
            .unwrap();
    }

    async fn read_to_end<R: AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, &mut chunk))
                .await
                .unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }

    #[test]
    fn futures_traits_carry_bytes_exactly() {
        let rt = Runtime::builder().loops(1).build().unwrap();
        rt.block_on(async {
            let data = util::pattern(2, 300_000);
            let (mut a, mut b) = tcp_pair().await;
            let sent = data.clone();
            let writer = rt::spawn_local(async move { write_all(&mut a, &sent).await });
            assert!(read_to_end(&mut b).await == data);
            writer.await.unwrap();
        });
    }
}
