//! Byte-exact echo through the async front-end: both listener topologies,
//! many connections from plain threads and from tasks, Unix and UDP
//! sockets, split Unix streams, vectored I/O, peek and half-close.

mod util;

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use netloom::rt::net::{
    OwnedReadHalf, OwnedWriteHalf, SplitStream, TcpListener, TcpStream, UdpSocket, UnixListener,
    UnixStream,
};
use netloom::rt::{self, Handle, Runtime};
use util::{echo_roundtrip, pattern};

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

async fn accept_loop(listener: TcpListener, local: bool) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) if local => drop(rt::spawn_local(echo(stream))),
            Ok((stream, _)) => drop(rt::spawn(echo(stream))),
            Err(_) => return,
        }
    }
}

/// Starts an echo server on `rt` with one shared acceptor or one
/// `SO_REUSEPORT` listener per loop.
fn serve(rt: &Runtime, reuseport: bool) -> SocketAddr {
    if reuseport {
        let first = TcpListener::bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        rt.spawn_on(0, accept_loop(first, true));
        for i in 1..rt.loops() {
            let l = TcpListener::bind_reuseport(addr).unwrap();
            rt.spawn_on(i, accept_loop(l, true));
        }
        addr
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn_on(0, accept_loop(listener, false));
        addr
    }
}

fn echo_from_threads(reuseport: bool) {
    let rt = Runtime::builder()
        .loops(2)
        .shutdown_grace(Duration::from_millis(100))
        .build()
        .unwrap();
    let addr = serve(&rt, reuseport);
    let streams: Vec<_> = (0..200).map(|_| util::connect(addr)).collect();
    std::thread::scope(|s| {
        for (chunk_id, chunk) in streams.chunks(25).enumerate() {
            s.spawn(move || {
                for (i, stream) in chunk.iter().enumerate() {
                    echo_roundtrip(stream, &pattern((chunk_id * 1000 + i) as u64, 20_000));
                }
            });
        }
    });
    drop(streams);
    rt.shutdown();
}

#[test]
fn shared_acceptor_echoes_byte_exact() {
    echo_from_threads(false);
}

#[test]
fn reuseport_listener_per_loop_echoes_byte_exact() {
    echo_from_threads(true);
}

#[test]
fn async_clients_on_every_loop_echo_byte_exact() {
    let rt = Runtime::builder().loops(2).build().unwrap();
    let addr = serve(&rt, false);
    let clients: Vec<_> = (0..100u64)
        .map(|i| {
            rt.spawn(async move {
                let data = pattern(i, 100_000);
                let stream = TcpStream::connect(addr).await?;
                let (mut reader, mut writer) = stream.into_split();
                let expected = data.clone();
                // Write and read at once from two tasks on the same loop.
                let sender = rt::spawn_local(async move { writer.write_all(&data).await });
                let mut got = vec![0u8; expected.len()];
                let mut filled = 0;
                while filled < got.len() {
                    let n = reader.read(&mut got[filled..]).await?;
                    assert!(n > 0, "early EOF");
                    filled += n;
                }
                sender.await.unwrap()?;
                Ok::<_, std::io::Error>(got == expected)
            })
        })
        .collect();
    let all_equal = rt.block_on(async {
        let mut ok = true;
        for c in clients {
            ok &= c.await.unwrap().unwrap();
        }
        ok
    });
    assert!(all_equal);
}

#[test]
fn vectored_io_peek_and_half_close() {
    let rt = Runtime::builder().loops(1).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let n = client
            .writev(&[IoSlice::new(b"head"), IoSlice::new(b"body!")])
            .await
            .unwrap();
        assert_eq!(n, 9);
        let mut first = [0; 4];
        let mut waited = 0;
        while server.peek(&mut first).await.unwrap() < 4 {
            waited += 1;
            assert!(waited < 100);
            rt::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(&first, b"head");
        let (mut a, mut b) = ([0; 4], [0; 5]);
        let mut got = 0;
        while got < 9 {
            let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
            let mut skip = got;
            let mut rest: Vec<IoSliceMut<'_>> = Vec::new();
            for buf in bufs.iter_mut() {
                if skip >= buf.len() {
                    skip -= buf.len();
                } else {
                    rest.push(IoSliceMut::new(&mut buf[skip..]));
                    skip = 0;
                }
            }
            got += server.readv(&mut rest).await.unwrap();
        }
        assert_eq!((&a, &b), (b"head", b"body!"));
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.read(&mut [0; 8]).await.unwrap(), 0, "EOF after FIN");
        assert_eq!(server.read(&mut [0; 8]).await.unwrap(), 0, "EOF stays");
        server.write_all(b"bye").await.unwrap();
        let mut buf = [0; 3];
        let mut n = 0;
        while n < 3 {
            n += client.read(&mut buf[n..]).await.unwrap();
        }
        assert_eq!(&buf, b"bye");
    });
}

#[test]
fn unix_stream_echo_byte_exact() {
    let dir = std::env::temp_dir().join(format!("netloom-rt-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let rt = Runtime::builder()
        .loops(2)
        .shutdown_grace(Duration::from_millis(100))
        .build()
        .unwrap();
    let listener = UnixListener::bind(&path).unwrap();
    rt.spawn_on(0, async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            rt::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            });
        }
    });
    // Plain blocking clients from threads, and async clients.
    std::thread::scope(|s| {
        for seed in 0..8u64 {
            let path = path.clone();
            s.spawn(move || {
                let data = pattern(seed, 50_000);
                let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut w = c.try_clone().unwrap();
                let d2 = data.clone();
                let t = std::thread::spawn(move || w.write_all(&d2).unwrap());
                let mut got = vec![0; data.len()];
                c.read_exact(&mut got).unwrap();
                t.join().unwrap();
                assert!(got == data);
            });
        }
    });
    let p2 = path.clone();
    let ok = rt.block_on(async move {
        let mut c = UnixStream::connect(&p2).await.unwrap();
        c.write_all(b"async unix").await.unwrap();
        let mut buf = [0; 10];
        let mut n = 0;
        while n < 10 {
            n += c.read(&mut buf[n..]).await.unwrap();
        }
        &buf == b"async unix"
    });
    assert!(ok);
    rt.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `data` in uneven chunks, then sends FIN.
async fn send_all<S: SplitStream>(mut writer: OwnedWriteHalf<S>, data: Vec<u8>) {
    for chunk in data.chunks(100_003) {
        writer.write_all(chunk).await.unwrap();
    }
    writer.shutdown().unwrap();
}

async fn read_to_end<S: SplitStream>(mut reader: OwnedReadHalf<S>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await.unwrap() {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn split_unix_stream_carries_16_mib_each_way_byte_exact() {
    const LEN: usize = 16 << 20;
    let rt = Runtime::builder().loops(1).build().unwrap();
    let (a_got, b_got) = rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (a_reader, a_writer) = a.into_split();
        let (b_reader, b_writer) = b.into_split();
        // Four tasks on one loop: each side reads and writes at once, so
        // neither fills its send buffer waiting for the other.
        let a_sends = rt::spawn_local(send_all(a_writer, pattern(1, LEN)));
        let b_sends = rt::spawn_local(send_all(b_writer, pattern(2, LEN)));
        let a_reads = rt::spawn_local(read_to_end(a_reader));
        let b_reads = rt::spawn_local(read_to_end(b_reader));
        let timed = rt::timeout(Duration::from_secs(60), async {
            a_sends.await.unwrap();
            b_sends.await.unwrap();
            (a_reads.await.unwrap(), b_reads.await.unwrap())
        });
        timed.await.expect("done within 60 s")
    });
    assert!(a_got == pattern(2, LEN), "a received b's bytes exactly");
    assert!(b_got == pattern(1, LEN), "b received a's bytes exactly");
}

#[test]
fn borrowed_halves_of_a_unix_stream() {
    let rt = Runtime::builder().loops(1).build().unwrap();
    rt.block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (mut reader, mut writer) = a.split();
        writer.write_all(b"ping").await.unwrap();
        b.write_all(b"pong").await.unwrap();
        let mut buf = [0; 4];
        let mut filled = 0;
        while filled < 4 {
            filled += reader.read(&mut buf[filled..]).await.unwrap();
        }
        assert_eq!(&buf, b"pong");
        writer.shutdown().unwrap();
        let mut got = Vec::new();
        let mut chunk = [0; 8];
        loop {
            match b.read(&mut chunk).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&chunk[..n]),
            }
        }
        assert_eq!(got, b"ping");
        // The owned halves give the stream back for both directions' deadlines.
        let (reader, _writer) = a.into_split();
        let stream: &UnixStream = reader.as_ref();
        stream.set_deadline(None).unwrap();
    });
}

#[test]
fn udp_echo_byte_exact() {
    let rt = Runtime::builder()
        .loops(1)
        .shutdown_grace(Duration::from_millis(100))
        .build()
        .unwrap();
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    rt.spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = server.recv_from(&mut buf).await?;
            server.send_to(&buf[..n], from).await?;
        }
        #[allow(unreachable_code)]
        Ok::<_, std::io::Error>(())
    });
    let ok = rt.block_on(async {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(addr).unwrap();
        for i in 0..200u64 {
            let data = pattern(i, 1 + (i as usize * 7) % 1400);
            client.send(&data).await.unwrap();
            let mut buf = [0u8; 2048];
            let n = rt::timeout(Duration::from_secs(30), client.recv(&mut buf))
                .await
                .expect("echo arrives")
                .unwrap();
            if buf[..n] != data[..] {
                return false;
            }
        }
        let (n, from) = {
            client.send(b"peek").await.unwrap();
            let mut buf = [0u8; 16];
            let peeked = client.peek_from(&mut buf).await.unwrap();
            let got = client.recv(&mut buf).await.unwrap();
            assert_eq!(got, peeked.0);
            peeked
        };
        n == 4 && from == addr
    });
    assert!(ok);
}

#[test]
fn handle_current_reaches_the_runtime_from_tasks() {
    let rt = Runtime::builder().loops(2).build().unwrap();
    let loops = rt.block_on(rt.spawn(async { Handle::current().loops() }));
    assert_eq!(loops, Ok(2));
}
