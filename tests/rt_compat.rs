//! The interop features: tokio's and futures' I/O traits on the stream
//! types, byte-exact in both directions, and the libraries written against
//! them running on netloom's loops: tokio-util's `Framed` codecs, hyper's
//! HTTP/1 server (through hyper-util's `TokioIo`) and futures-util's I/O
//! combinators. Run with
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

    /// A line for the codec test: printable ASCII of a length from 0 to
    /// about 2,000 bytes, never a `\r` or `\n`.
    fn line(i: u64) -> String {
        let len = (i as usize * 7919) % 2003;
        util::pattern(i, len)
            .into_iter()
            .map(|b| char::from(b' ' + b % 95))
            .collect()
    }

    /// Spawns a task on `rt` that accepts one connection on a new loopback
    /// listener and runs `serve` on it; returns the address and the task.
    fn serve_one<F, Fut>(
        rt: &Runtime,
        serve: F,
    ) -> (std::net::SocketAddr, rt::JoinHandle<Fut::Output>)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let task = rt.spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream).await
        });
        (addr, task)
    }

    #[test]
    fn tokio_util_framed_lines_echo_1000_lines_byte_exact() {
        use futures_util::{SinkExt, StreamExt};
        use std::io::{Read, Write};
        use tokio_util::codec::{Framed, LinesCodec};

        let rt = Runtime::builder().loops(1).build().unwrap();
        let (addr, server) = serve_one(&rt, |stream| async move {
            let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(4096));
            let mut echoed = 0;
            while let Some(line) = lines.next().await {
                lines.send(line.unwrap()).await.unwrap();
                echoed += 1;
            }
            echoed
        });
        let sent: String = (0..1000).map(|i| line(i) + "\n").collect();
        let mut client = util::connect(addr);
        let mut writer = client.try_clone().unwrap();
        let to_send = sent.clone();
        let sender = std::thread::spawn(move || {
            for l in to_send.split_inclusive('\n') {
                writer.write_all(l.as_bytes()).unwrap();
            }
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut received = Vec::new();
        client.read_to_end(&mut received).expect("echo within 10 s");
        sender.join().unwrap();
        assert!(received == sent.as_bytes(), "echoed bytes differ");
        let echoed = rt.block_on(rt::timeout(std::time::Duration::from_secs(10), server));
        assert_eq!(echoed.expect("server done").unwrap(), 1000);
    }

    /// Reads one HTTP/1.1 response with a `content-length`; returns its
    /// head and body.
    fn read_response(reader: &mut impl std::io::BufRead) -> (String, String) {
        let mut head = String::new();
        loop {
            let before = head.len();
            reader.read_line(&mut head).expect("response within 10 s");
            assert!(head.len() > before, "EOF inside a response head");
            if head.ends_with("\r\n\r\n") {
                break;
            }
        }
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("a content-length");
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    #[test]
    fn hyper_http1_serves_three_keep_alive_requests_on_one_stream() {
        use hyper::body::Incoming;
        use hyper::service::service_fn;
        use hyper::{Request, Response};
        use hyper_util::rt::TokioIo;
        use std::io::{BufReader, Write};

        let rt = Runtime::builder().loops(1).build().unwrap();
        // hyper needs an executor only for HTTP/2 and upgrades: an HTTP/1
        // connection is a plain future, awaited in a netloom task.
        let (addr, server) = serve_one(&rt, |stream| async move {
            let service = service_fn(|req: Request<Incoming>| async move {
                let body = format!("{} {}", req.method(), req.uri().path());
                Ok::<_, std::convert::Infallible>(Response::new(body))
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
        });
        let client = util::connect(addr);
        let mut writer = client.try_clone().unwrap();
        let mut reader = BufReader::new(client);
        for i in 0..3 {
            let request = format!(
                "GET /item/{i} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
            );
            writer.write_all(request.as_bytes()).unwrap();
            let (head, body) = read_response(&mut reader);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert!(!head.to_ascii_lowercase().contains("connection: close"));
            assert_eq!(body, format!("GET /item/{i}"));
        }
        // The client hangs up: hyper finishes the connection cleanly.
        drop((writer, reader));
        let served = rt.block_on(rt::timeout(std::time::Duration::from_secs(10), server));
        served
            .expect("server done")
            .unwrap()
            .expect("hyper served cleanly");
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

    #[test]
    fn futures_util_copy_relays_and_read_to_end_collects_byte_exact() {
        use futures_util::io::{copy, AsyncReadExt, AsyncWriteExt};

        let rt = Runtime::builder().loops(1).build().unwrap();
        rt.block_on(async {
            let data = util::pattern(3, 1 << 20);
            // source -> (a, b) -> relay copies b to c -> (c, d) -> sink
            let (mut a, mut b) = tcp_pair().await;
            let (mut c, mut d) = UnixStream::pair().unwrap();
            let sent = data.clone();
            let source = rt::spawn_local(async move {
                a.write_all(&sent).await.unwrap();
                a.close().await.unwrap();
            });
            let relay = rt::spawn_local(async move {
                let copied = copy(&mut b, &mut c).await.unwrap();
                c.close().await.unwrap();
                copied
            });
            let mut got = Vec::new();
            d.read_to_end(&mut got).await.unwrap();
            source.await.unwrap();
            assert_eq!(relay.await.unwrap(), data.len() as u64);
            assert!(got == data, "relayed bytes differ");
        });
    }
}
