//! Go's deadline rules on the async front-end, one test per rule.

use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use netloom::rt::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use netloom::rt::{self, Runtime};

fn runtime() -> Runtime {
    Runtime::builder()
        .loops(1)
        .shutdown_grace(Duration::ZERO)
        .build()
        .unwrap()
}

/// A connected pair inside the runtime: (client, server side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn blocked_read_fails_when_its_deadline_passes() {
    runtime().block_on(async {
        let (_client, mut server) = tcp_pair().await;
        let start = Instant::now();
        server.set_read_deadline(Some(start + ms(50))).unwrap();
        let err = server.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        let waited = start.elapsed();
        assert!(waited >= ms(50) && waited < ms(60_000), "{waited:?}");
        // The deadline stays passed: the next read fails at once too.
        let err = server.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn blocked_write_fails_when_its_deadline_passes() {
    runtime().block_on(async {
        let (_client, mut server) = tcp_pair().await;
        // The client never reads: the send buffer fills and write_all blocks.
        server
            .set_write_deadline(Some(Instant::now() + ms(100)))
            .unwrap();
        let chunk = vec![7u8; 1 << 20];
        let err = loop {
            if let Err(e) = server.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn deadline_in_the_past_fails_the_next_operation_at_once() {
    runtime().block_on(async {
        let (mut client, mut server) = tcp_pair().await;
        client.write_all(b"data").await.unwrap();
        rt::sleep(ms(20)).await;
        // Data is waiting, but the deadline has passed: Go fails the read.
        server.set_deadline(Some(Instant::now() - ms(1))).unwrap();
        let start = Instant::now();
        let err = server.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        let err = server.write(b"x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        // At once: no timer is involved (a bug would block for good).
        assert!(start.elapsed() < ms(60_000));
        // Clearing the deadline makes the connection usable again.
        server.set_deadline(None).unwrap();
        let mut buf = [0; 8];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"data");
    });
}

#[test]
fn moving_a_deadline_earlier_while_blocked_takes_effect() {
    runtime().block_on(async {
        let (_client, server) = tcp_pair().await;
        let (mut reader, control) = server.into_split();
        let start = Instant::now();
        control
            .as_ref()
            .set_read_deadline(Some(start + Duration::from_secs(300)))
            .unwrap();
        let blocked = rt::spawn_local(async move { reader.read(&mut [0; 8]).await });
        rt::sleep(ms(30)).await;
        assert!(!blocked.is_finished());
        control
            .as_ref()
            .set_read_deadline(Some(Instant::now() + ms(30)))
            .unwrap();
        let err = blocked.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        // The earlier deadline ended the read, long before the first one.
        let waited = start.elapsed();
        assert!(waited >= ms(60) && waited < ms(120_000), "{waited:?}");
    });
}

#[test]
fn moving_a_deadline_into_the_past_wakes_the_blocked_operation() {
    runtime().block_on(async {
        let (_client, server) = tcp_pair().await;
        let (mut reader, control) = server.into_split();
        let blocked = rt::spawn_local(async move { reader.read(&mut [0; 8]).await });
        rt::sleep(ms(20)).await;
        control
            .as_ref()
            .set_read_deadline(Some(Instant::now() - ms(1)))
            .unwrap();
        let err = rt::timeout(ms(60_000), blocked)
            .await
            .expect("woken at once")
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn stale_timer_after_moving_the_deadline_later_does_nothing() {
    runtime().block_on(async {
        let (mut client, server) = tcp_pair().await;
        let (mut reader, control) = server.into_split();
        let start = Instant::now();
        // A timer is armed for 500 ms; the deadline then moves far later.
        // (Only a stall of 500 ms between these two lines would let the
        // first deadline pass for real.)
        control
            .as_ref()
            .set_read_deadline(Some(start + ms(500)))
            .unwrap();
        control
            .as_ref()
            .set_read_deadline(Some(start + ms(300_000)))
            .unwrap();
        let blocked = rt::spawn_local(async move {
            let mut buf = [0; 8];
            let n = reader.read(&mut buf).await?;
            Ok::<_, io::Error>((buf[..n].to_vec(), Instant::now()))
        });
        // The 500 ms timer fires meanwhile, finds the newer deadline and
        // must not fail the parked read.
        rt::sleep(ms(1000)).await;
        assert!(
            !blocked.is_finished(),
            "the stale 500 ms timer failed the read"
        );
        client.write_all(b"late").await.unwrap();
        let (data, _) = blocked.await.unwrap().unwrap();
        assert_eq!(data, b"late");
    });
}

#[test]
fn stale_timer_after_clearing_the_deadline_does_nothing() {
    runtime().block_on(async {
        let (mut client, server) = tcp_pair().await;
        let (mut reader, control) = server.into_split();
        // A timer is armed for 500 ms, then the deadline is cleared (only a
        // 500 ms stall between these lines would let it pass for real).
        control
            .as_ref()
            .set_read_deadline(Some(Instant::now() + ms(500)))
            .unwrap();
        control.as_ref().set_read_deadline(None).unwrap();
        let blocked = rt::spawn_local(async move {
            let mut buf = [0; 8];
            let n = reader.read(&mut buf).await?;
            Ok::<_, io::Error>(buf[..n].to_vec())
        });
        // The timer fires meanwhile and must not fail the parked read.
        rt::sleep(ms(1000)).await;
        assert!(!blocked.is_finished(), "the cleared deadline's timer fired");
        client.write_all(b"ok").await.unwrap();
        assert_eq!(blocked.await.unwrap().unwrap(), b"ok");
    });
}

#[test]
fn deadline_extended_before_every_read_keeps_a_busy_connection_alive() {
    runtime().block_on(async {
        let (mut client, mut server) = tcp_pair().await;
        // 20 writes 60 ms apart outlast one 1 s deadline: only extending
        // it keeps the reads alive (a stall of ~1 s would end them).
        let writer = rt::spawn_local(async move {
            for i in 0..20u8 {
                client.write_all(&[i]).await.unwrap();
                rt::sleep(ms(60)).await;
            }
            client
        });
        let mut got = Vec::new();
        while got.len() < 20 {
            server
                .set_read_deadline(Some(Instant::now() + ms(1000)))
                .unwrap();
            let mut buf = [0; 32];
            let n = server.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, (0..20).collect::<Vec<u8>>());
        let _client = writer.await.unwrap();
        server
            .set_read_deadline(Some(Instant::now() + ms(30)))
            .unwrap();
        let err = server.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn accept_and_udp_and_unix_honour_deadlines() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener
            .set_deadline(Some(Instant::now() + ms(20)))
            .unwrap();
        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_deadline(Some(Instant::now() + ms(20)))
            .unwrap();
        let err = udp.recv_from(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);

        let (mut a, _b) = UnixStream::pair().unwrap();
        a.set_read_deadline(Some(Instant::now() + ms(20))).unwrap();
        let err = a.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn sleep_timeout_and_interval_use_the_loop_timers() {
    runtime().block_on(async {
        let start = Instant::now();
        rt::sleep(ms(30)).await;
        assert!(start.elapsed() >= ms(30));
        assert!(rt::timeout(ms(20), rt::sleep(ms(5000))).await.is_err());
        assert_eq!(rt::timeout(ms(5000), async { 4 }).await, Ok(4));
        let mut every = rt::interval(ms(10));
        let first = every.tick().await;
        let second = every.tick().await;
        let third = every.tick().await;
        // A period apart on schedule; more when a tick came over a period
        // late (then the schedule restarts from that tick, as Go's ticker
        // drops ticks): never closer.
        assert!(second - first >= ms(10), "{:?}", second - first);
        assert!(third - second >= ms(10), "{:?}", third - second);
        assert!(third <= Instant::now());
        let metrics = rt::metrics().unwrap();
        assert_eq!(
            metrics.sleeps, 0,
            "fired and dropped sleeps free their slots"
        );
    });
}

#[test]
fn readable_waits_for_data_without_consuming_it_and_obeys_the_read_deadline() {
    runtime().block_on(async {
        let (mut client, mut server) = tcp_pair().await;
        // Nothing sent yet: readable() waits, and its deadline applies.
        server
            .set_read_deadline(Some(Instant::now() + ms(50)))
            .unwrap();
        let err = server.readable().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        server.set_read_deadline(None).unwrap();

        // Data sent later wakes it; the bytes are still there to read.
        let writer = rt::spawn_local(async move {
            rt::sleep(ms(30)).await;
            client.write_all(b"ping").await.unwrap();
            client
        });
        server.readable().await.unwrap();
        let mut buf = [0; 16];
        assert_eq!(server.read(&mut buf).await.unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        assert_eq!(rt::metrics().unwrap().parked_waiters, 0);

        // The end of the stream makes it readable too (the read returns 0).
        drop(writer.await.unwrap());
        server.readable().await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        server.writable().await.unwrap();
    });
}

#[test]
fn a_dropped_readable_leaves_no_waker_behind() {
    runtime().block_on(async {
        let (_client, mut server) = tcp_pair().await;
        let outcome = rt::timeout(ms(20), server.readable()).await;
        assert!(outcome.is_err(), "nothing was sent");
        assert_eq!(rt::metrics().unwrap().parked_waiters, 0);
    });
}
