//! TLS on the async front-end: echo over loopback TCP and Unix streams
//! (many connections, byte-exact), close semantics, hostile peers, session
//! resumption, and real clients (`openssl s_client`, `curl`). Run with
//! `cargo test --features tls --test rt_tls`; `.ci/install-tls-tools`
//! installs the clients.
#![cfg(all(
    target_os = "linux",
    any(feature = "tls-aws-lc-rs", feature = "tls-ring")
))]

mod util;

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use netloom::rt::net::{TcpListener, TcpStream, TlsStream, UnixStream};
use netloom::rt::{self, Runtime};
use netloom::tls::{TlsAcceptor, TlsClientConfig, TlsConnector, TlsServerConfig};

/// A self-signed certificate for localhost: (cert PEM, key PEM).
fn localhost_cert() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn acceptor_for(cert: &(String, String)) -> TlsAcceptor {
    TlsAcceptor::new(TlsServerConfig::from_pem(cert.0.as_bytes(), cert.1.as_bytes()).unwrap())
        .unwrap()
}

fn connector_for(cert: &(String, String)) -> TlsConnector {
    TlsConnector::new(TlsClientConfig::from_pem(cert.0.as_bytes()).unwrap()).unwrap()
}

/// The netloom error inside an `io::Error` from a TLS stream.
fn inner(e: &io::Error) -> Option<&netloom::Error> {
    e.get_ref()?.downcast_ref::<netloom::Error>()
}

/// Echoes plaintext until the peer's close_notify, then closes its side.
async fn echo<S: netloom::rt::net::SplitStream>(mut tls: TlsStream<S>) -> io::Result<u64> {
    let mut total = 0;
    let mut buf = vec![0; 8192];
    loop {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            tls.shutdown().await?;
            return Ok(total);
        }
        tls.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Sends `data` in uneven pieces (plain writes and coalescing writev) from
/// a writer task, reads the echo to the end, returns it.
async fn roundtrip<S: netloom::rt::net::SplitStream + Send + Sync + 'static>(
    tls: TlsStream<S>,
    data: Vec<u8>,
) -> Vec<u8> {
    let (mut reader, mut writer) = tls.into_split();
    let writer = rt::spawn_local(async move {
        let mut rest = &data[..];
        let mut i = 0usize;
        while !rest.is_empty() {
            let piece = (1 + i * 7919 % 30_000).min(rest.len());
            let (now, later) = rest.split_at(piece);
            if i % 3 == 0 && now.len() > 4 {
                let sent = writer
                    .writev(&[IoSlice::new(&now[..4]), IoSlice::new(&now[4..])])
                    .await
                    .unwrap();
                rest = &rest[sent..];
            } else {
                writer.write_all(now).await.unwrap();
                rest = later;
            }
            i += 1;
        }
        writer.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    let mut buf = vec![0; 5000];
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    writer.await.unwrap();
    got
}

async fn connect_tls(addr: SocketAddr, connector: &TlsConnector) -> TlsStream {
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector.connect("localhost", tcp).await.unwrap()
}

#[test]
fn tls_echo_many_connections_byte_exact() {
    const CONNECTIONS: usize = 40;
    util::raise_fd_limit();
    let cert = localhost_cert();
    let (acceptor, connector) = (acceptor_for(&cert), connector_for(&cert));
    let rt = Runtime::builder().loops(2).build().unwrap();
    let listener = rt
        .block_on(async { TcpListener::bind("127.0.0.1:0") })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(async move {
        let mut echoes = Vec::new();
        for _ in 0..CONNECTIONS {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            echoes.push(rt::spawn(async move {
                echo(acceptor.accept(tcp).await.unwrap()).await.unwrap()
            }));
        }
        let mut total = 0;
        for e in echoes {
            total += e.await.unwrap();
        }
        total
    });
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let connector = connector.clone();
            rt.spawn(async move {
                let data = util::pattern(i as u64, 1000 + i * 9973);
                let tls = connect_tls(addr, &connector).await;
                assert_eq!(tls.info().version(), Some("TLSv1_3"));
                let got = roundtrip(tls, data.clone()).await;
                assert!(got == data, "connection {i}: echo differs");
                data.len() as u64
            })
        })
        .collect();
    let sent: u64 = rt.block_on(async {
        let mut sent = 0;
        for c in clients {
            sent += rt::timeout(Duration::from_secs(60), c)
                .await
                .unwrap()
                .unwrap();
        }
        sent
    });
    let echoed = rt
        .block_on(rt::timeout(Duration::from_secs(30), server))
        .unwrap()
        .unwrap();
    assert_eq!(echoed, sent);
}

#[test]
fn tls_over_a_unix_stream_pair_with_a_large_transfer() {
    let cert = localhost_cert();
    let (acceptor, connector) = (acceptor_for(&cert), connector_for(&cert));
    let rt = Runtime::builder().loops(1).build().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let server = rt::spawn_local(async move { echo(acceptor.accept(a).await?).await });
        let tls = connector.connect("localhost", b).await.unwrap();
        assert_eq!(tls.info().server_name(), Some("localhost"));
        let data = util::pattern(7, 3 << 20);
        let got = rt::timeout(Duration::from_secs(60), roundtrip(tls, data.clone()))
            .await
            .unwrap();
        assert!(got == data, "3 MiB echo differs");
        assert_eq!(server.await.unwrap().unwrap(), data.len() as u64);
    });
}

#[test]
fn close_notify_is_eof_and_a_bare_fin_is_truncation() {
    let cert = localhost_cert();
    let (acceptor, connector) = (acceptor_for(&cert), connector_for(&cert));
    let rt = Runtime::builder().loops(1).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn_local(async move {
            let mut outcomes = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                let mut buf = [0; 64];
                let n = tls.read(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"ping");
                outcomes.push(tls.read(&mut buf).await);
                // The end, orderly or not, stays what it was.
                let again = tls.read(&mut buf).await;
                match &outcomes[outcomes.len() - 1] {
                    Ok(n) => assert_eq!(again.unwrap(), *n),
                    Err(e) => assert_eq!(again.unwrap_err().kind(), e.kind()),
                }
            }
            outcomes
        });

        let mut orderly = connect_tls(addr, &connector).await;
        orderly.write_all(b"ping").await.unwrap();
        orderly.shutdown().await.unwrap();

        let mut cut = connect_tls(addr, &connector).await;
        cut.write_all(b"ping").await.unwrap();
        cut.get_ref().shutdown(Shutdown::Write).unwrap(); // FIN, no close_notify

        let outcomes = rt::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcomes[0].as_ref().unwrap(), &0);
        let err = outcomes[1].as_ref().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            matches!(inner(err), Some(netloom::Error::TlsTruncated)),
            "{err:?}"
        );
        drop((orderly, cut));
    });
}

#[test]
fn garbage_fails_the_handshake_with_a_typed_error_and_an_alert() {
    let cert = localhost_cert();
    let acceptor = acceptor_for(&cert);
    let rt = Runtime::builder().loops(1).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn_local(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.map(|_| ())
        });
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let err = rt::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            matches!(
                inner(&err),
                Some(netloom::Error::Tls(netloom::TlsError::CorruptRecord(_)))
            ),
            "{err:?}"
        );
        // The client got a fatal alert record, then the end of the stream.
        let mut reply = Vec::new();
        let mut buf = [0; 64];
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(reply.first(), Some(&0x15), "an alert record: {reply:?}");
    });
}

#[test]
fn a_handshake_trickled_byte_by_byte_hits_the_deadline() {
    let cert = localhost_cert();
    let acceptor = acceptor_for(&cert);
    let rt = Runtime::builder().loops(1).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn_local(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let started = Instant::now();
            tcp.set_read_deadline(Some(started + Duration::from_millis(500)))
                .unwrap();
            (acceptor.accept(tcp).await.map(|_| ()), started.elapsed())
        });
        let mut slow = TcpStream::connect(addr).await.unwrap();
        let trickle = rt::spawn_local(async move {
            // A plausible record header, one byte at a time.
            for byte in [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00] {
                if slow.write_all(&[byte]).await.is_err() {
                    break;
                }
                rt::sleep(Duration::from_millis(200)).await;
            }
        });
        let (result, elapsed) = rt::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
        trickle.await.unwrap();
    });
}

#[test]
fn a_second_connection_resumes_and_alpn_is_agreed() {
    let cert = localhost_cert();
    let acceptor = TlsAcceptor::new(
        TlsServerConfig::from_pem(cert.0.as_bytes(), cert.1.as_bytes())
            .unwrap()
            .alpn(&[b"h2", b"http/1.1"]),
    )
    .unwrap();
    let connector = TlsConnector::new(
        TlsClientConfig::from_pem(cert.0.as_bytes())
            .unwrap()
            .alpn(&[b"http/1.1"]),
    )
    .unwrap();
    let rt = Runtime::builder().loops(1).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn_local(async move {
            let mut resumed = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let tls = acceptor.accept(tcp).await.unwrap();
                resumed.push(tls.info().resumed());
                echo(tls).await.unwrap();
            }
            resumed
        });
        for round in 0..2 {
            let tls = connect_tls(addr, &connector).await;
            let info = tls.info();
            assert_eq!(info.alpn_protocol(), Some(&b"http/1.1"[..]));
            assert_eq!(info.resumed(), round == 1, "round {round}");
            // Reading the echo also takes in the server's session ticket.
            assert_eq!(
                roundtrip(tls, b"ticket please".to_vec()).await,
                b"ticket please"
            );
        }
        let resumed = rt::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resumed, [false, true]);
    });
}

/// Writes the PEM files a command-line client needs.
fn write_pem(dir: &util::TempDir, cert: &(String, String)) -> std::path::PathBuf {
    let ca = dir.path("ca.pem");
    std::fs::write(&ca, &cert.0).unwrap();
    ca
}

fn tool_missing(name: &str) -> String {
    format!("`{name}` not found: run .ci/install-tls-tools (apt-get) first")
}

#[test]
fn openssl_s_client_talks_to_an_rt_tls_server() {
    let cert = localhost_cert();
    let acceptor = acceptor_for(&cert);
    let dir = util::TempDir::new("tls-openssl");
    let ca = write_pem(&dir, &cert);
    let rt = Runtime::builder().loops(1).build().unwrap();
    let listener = rt
        .block_on(async { TcpListener::bind("127.0.0.1:0") })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    // Reads one line, answers it, then closes with close_notify.
    let server = rt.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let sni = tls.info().server_name().map(str::to_owned);
        let mut line = Vec::new();
        let mut buf = [0; 256];
        while !line.contains(&b'\n') {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "s_client closed before its line");
            line.extend_from_slice(&buf[..n]);
        }
        let mut answer = b"echo: ".to_vec();
        answer.extend_from_slice(&line);
        tls.write_all(&answer).await.unwrap();
        tls.shutdown().await.unwrap();
        sni
    });
    let output = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
        ])
        .arg("-CAfile")
        .arg(&ca)
        .args(["-verify_return_error", "-quiet", "-ign_eof"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", tool_missing("openssl")))
        .unwrap();
    let mut child = output;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello from openssl\n").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "s_client did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "s_client failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("echo: hello from openssl\n"), "{stdout}");
    let sni = rt
        .block_on(rt::timeout(Duration::from_secs(10), server))
        .unwrap()
        .unwrap();
    assert_eq!(sni.as_deref(), Some("localhost"));
}
