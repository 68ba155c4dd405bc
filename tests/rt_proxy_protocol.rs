//! The async front-end behind a balancer: `TcpStream::read_proxy_header`
//! takes the header (arriving in pieces too) and not a byte of what
//! follows; `peer_addr` is then the client's and `proxy` keeps the
//! balancer's address; a client without a header gets `InvalidData`.

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use netloom::proxy_protocol::{encode, ProxyProtocol};
use netloom::rt::net::TcpListener;
use netloom::rt::{self, Runtime};

/// Accepts one connection, reads its header, answers the client address
/// it saw, then echoes what follows until the end of stream.
async fn serve_one(
    listener: TcpListener,
    version: ProxyProtocol,
) -> std::io::Result<(SocketAddr, SocketAddr)> {
    let (mut stream, balancer) = listener.accept().await?;
    rt::timeout(Duration::from_secs(10), stream.read_proxy_header(version)).await??;
    let client = stream.peer_addr()?;
    let seen_balancer = stream.proxy().and_then(|p| p.balancer().inet());
    assert_eq!(seen_balancer, Some(balancer));
    stream.write_all(format!("{client}\n").as_bytes()).await?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok((client, balancer));
        }
        stream.write_all(&buf[..n]).await?;
    }
}

#[test]
fn the_header_in_pieces_then_the_payload_byte_exact() {
    let rt = Runtime::builder().loops(1).build().unwrap();
    for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
        let listener = rt
            .block_on(async { TcpListener::bind("127.0.0.1:0") })
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt.spawn_on(0, serve_one(listener, version));
        let client: SocketAddr = "198.51.100.20:5555".parse().unwrap();
        let header = encode(version, Some((client, addr)));
        let payload = util::pattern(11, 64 * 1024);
        let mut stream = util::connect(addr);
        stream.set_nodelay(true).unwrap();
        // The header in three writes; the payload right behind its end.
        let (a, rest) = header.split_at(5);
        let (b, c) = rest.split_at(rest.len() / 2);
        stream.write_all(a).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        stream.write_all(b).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut tail = c.to_vec();
        tail.extend_from_slice(&payload[..1000]);
        stream.write_all(&tail).unwrap();
        let mut line = vec![0u8; format!("{client}\n").len()];
        stream.read_exact(&mut line).unwrap();
        assert_eq!(line, format!("{client}\n").as_bytes());
        let mut writer = stream.try_clone().unwrap();
        let rest = payload[1000..].to_vec();
        let sender = std::thread::spawn(move || {
            writer.write_all(&rest).unwrap();
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut echo = Vec::new();
        stream.read_to_end(&mut echo).unwrap();
        sender.join().unwrap();
        assert!(echo == payload, "echoed bytes differ");
        let (seen, _) = rt.block_on(server).unwrap().unwrap();
        assert_eq!(seen, client);
    }
    rt.shutdown();
}

#[test]
fn a_client_without_a_header_gets_invalid_data() {
    let rt = Runtime::builder().loops(1).build().unwrap();
    let listener = rt
        .block_on(async { TcpListener::bind("127.0.0.1:0") })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn_on(0, serve_one(listener, ProxyProtocol::V2));
    let mut stream = util::connect(addr);
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let err = rt.block_on(server).unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("no PROXY protocol header"),
        "{err}"
    );
    rt.shutdown();
}
