//! UDP: echo, senders kept as values, handles, truncation, batching, multicast
//! and broadcast on loopback, spreading over loops.

mod util;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netloom::{
    Action, Addr, Conn, ConnHandle, Engine, Error, Handler, MulticastInterface, Options,
};
use util::*;

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn udp_engine<H: Handler>(handler: H, options: Options) -> (netloom::Engine, SocketAddr) {
    let engine = start_on(handler, &["udp://127.0.0.1:0"], options);
    let addr = engine.local_addrs()[0].inet().unwrap();
    (engine, addr)
}

/// Sends each datagram and waits for its echo (no loss on loopback with one
/// in flight); checks every byte.
fn ping_pong(client: &UdpSocket, to: SocketAddr, seed: u64, count: usize, max_len: usize) {
    let mut buf = vec![0u8; 65_536];
    for i in 0..count {
        let len = (i * 7919 + seed as usize) % max_len + 1;
        let data = pattern(seed * 1_000 + i as u64, len);
        client.send_to(&data, to).unwrap();
        let (n, from) = client.recv_from(&mut buf).expect("echo arrives");
        assert_eq!(from, to);
        assert!(buf[..n] == data[..], "datagram {i} differs");
    }
}

#[test]
fn echo_datagrams_of_every_size() {
    for batch in [32, 1] {
        let (engine, addr) = udp_engine(Echo, Options::default().loops(2).udp_batch(batch));
        assert_eq!(engine.conn_count(), 0, "UDP sockets are not connections");
        std::thread::scope(|s| {
            for seed in 0..8 {
                s.spawn(move || ping_pong(&udp_client(), addr, seed, 300, 9_000));
            }
        });
        let client = udp_client();
        for len in [0, 1, 1_400, 65_507] {
            let data = pattern(len as u64, len);
            client.send_to(&data, addr).unwrap();
            let mut buf = vec![0u8; 65_536];
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert!(buf[..n] == data[..], "{len}-byte datagram");
        }
        stop(engine);
    }
}

#[test]
fn a_burst_longer_than_one_batch_is_drained() {
    // The UDP socket stays level-triggered: what one recvmmsg leaves behind
    // is reported again, with no new datagram needed.
    let (engine, addr) = udp_engine(Echo, Options::default().loops(1).udp_batch(4));
    let client = udp_client();
    for i in 0..100u32 {
        client.send_to(&i.to_le_bytes(), addr).unwrap();
    }
    let mut seen = [false; 100];
    for _ in 0..100 {
        let mut buf = [0u8; 4];
        let n = client.recv(&mut buf).expect("every echo arrives");
        assert_eq!(n, 4);
        seen[u32::from_le_bytes(buf) as usize] = true;
    }
    assert!(seen.iter().all(|&s| s));
    stop(engine);
}

/// Answers each datagram with its loop's thread name.
struct WhichLoop;

impl Handler for WhichLoop {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let name = std::thread::current().name().unwrap_or("").to_string();
        let _ = conn.write(name.as_bytes());
        Action::None
    }
}

#[test]
fn one_socket_per_loop_spreads_peers_and_keeps_each_on_one_loop() {
    let (engine, addr) = udp_engine(WhichLoop, Options::default().loops(2));
    let mut loops_seen = HashMap::new();
    for _ in 0..64 {
        let client = udp_client();
        let mut names = Vec::new();
        for _ in 0..3 {
            client.send_to(b"?", addr).unwrap();
            let mut buf = [0u8; 64];
            let n = client.recv(&mut buf).unwrap();
            names.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
        assert!(names.windows(2).all(|w| w[0] == w[1]), "{names:?}");
        *loops_seen.entry(names[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(loops_seen.len(), 2, "both loops served: {loops_seen:?}");
    stop(engine);
}

/// Keeps every sender's address; the test later sends to them all through
/// a handle, from another thread.
#[derive(Default)]
struct Subscribers {
    peers: Mutex<Vec<Addr>>,
    handle: Mutex<Option<ConnHandle<()>>>,
}

impl Handler for Subscribers {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        self.peers.lock().unwrap().push(conn.peer_addr().clone());
        self.handle
            .lock()
            .unwrap()
            .get_or_insert_with(|| conn.handle());
        conn.discard(usize::MAX);
        Action::None
    }
}

#[test]
fn senders_are_plain_values_usable_after_the_callback() {
    let subs = Arc::new(Subscribers::default());
    let (engine, addr) = udp_engine(subs.clone(), Options::default().loops(1));
    let clients: Vec<_> = (0..5).map(|_| udp_client()).collect();
    for c in &clients {
        c.send_to(b"subscribe", addr).unwrap();
    }
    assert!(wait_until(Duration::from_secs(30), || subs
        .peers
        .lock()
        .unwrap()
        .len()
        == 5));
    let peers = subs.peers.lock().unwrap().clone();
    let handle = subs.handle.lock().unwrap().clone().unwrap();
    std::thread::spawn(move || {
        for (i, peer) in peers.iter().enumerate() {
            let to = peer.inet().unwrap();
            handle
                .async_send_to(to, format!("news {i}").into_bytes())
                .unwrap();
        }
    })
    .join()
    .unwrap();
    for c in &clients {
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"news "));
    }
    stop(engine);
}

/// Hands each datagram to a worker thread that replies through a handle.
struct AsyncEcho;

impl Handler for AsyncEcho {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        let handle = conn.handle();
        std::thread::spawn(move || handle.async_write(data).unwrap());
        Action::None
    }
}

#[test]
fn handles_reply_to_the_sender_they_were_made_for() {
    let (engine, addr) = udp_engine(AsyncEcho, Options::default().loops(2));
    std::thread::scope(|s| {
        for seed in 0..4 {
            s.spawn(move || ping_pong(&udp_client(), addr, seed, 100, 2_000));
        }
    });
    stop(engine);
}

/// Echoes each datagram, keeps a handle to the first sender, and answers a
/// wake-up (`on_traffic` with nothing inbound) with "woken".
#[derive(Default)]
struct EchoKeepingHandle {
    handle: Mutex<Option<ConnHandle<()>>>,
}

impl Handler for EchoKeepingHandle {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.inbound_len() == 0 {
            let _ = conn.write(b"woken");
            return Action::None;
        }
        let (datagram, mut out) = conn.split();
        let _ = out.write(datagram);
        self.handle
            .lock()
            .unwrap()
            .get_or_insert_with(|| conn.handle());
        Action::None
    }
}

#[test]
fn a_udp_handle_writes_wakes_and_runs_tasks_until_the_engine_stops() {
    let server = Arc::new(EchoKeepingHandle::default());
    let (engine, addr) = udp_engine(server.clone(), Options::default().loops(1));
    let client = udp_client();
    let mut buf = [0u8; 64];
    let mut receive = || {
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr);
        buf[..n].to_vec()
    };
    client.send_to(b"hello", addr).unwrap();
    assert_eq!(receive(), b"hello");
    let handle = server.handle.lock().unwrap().clone().unwrap();
    // Neither closes a UDP socket, nor does pausing stop its reading.
    handle.close().unwrap();
    handle.shutdown_write().unwrap();
    let parts = vec![b"one ".to_vec(), b"datagram".to_vec()];
    handle.async_writev(parts, None).unwrap();
    handle
        .execute(|conn| {
            conn.pause_reading();
            conn.write(b"task").unwrap();
        })
        .unwrap();
    handle.wake().unwrap();
    // Tasks take another lane than writes and wake-ups: any order.
    let mut got: Vec<Vec<u8>> = (0..3).map(|_| receive()).collect();
    got.sort();
    assert_eq!(got, [&b"one datagram"[..], b"task", b"woken"]);
    client.send_to(b"still served", addr).unwrap();
    assert_eq!(receive(), b"still served");
    assert!(!handle.is_closed());
    stop(engine);
    assert!(handle.is_closed());
    assert!(handle.async_write(b"late".to_vec()).is_err());
}

/// Reports the length it saw and whether the datagram was cut.
struct Measure;

impl Handler for Measure {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let reply = format!("{} {:?}", conn.inbound_len(), conn.truncated());
        let _ = conn.write(reply.as_bytes());
        Action::None
    }
}

#[test]
fn datagrams_longer_than_the_read_buffer_are_reported_truncated() {
    for batch in [8, 1] {
        let (engine, addr) = udp_engine(
            Measure,
            Options::default()
                .loops(1)
                .read_buffer_size(1_024)
                .udp_batch(batch),
        );
        let client = udp_client();
        let mut buf = [0u8; 64];
        for (len, expect) in [
            (1_024, "1024 None"),
            (3_000, "1024 Some(3000)"),
            (10, "10 None"),
        ] {
            client.send_to(&vec![1u8; len], addr).unwrap();
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), expect);
        }
        stop(engine);
    }
}

/// Closes, shuts down halfway and panics: the UDP socket keeps serving.
struct Unruly;

impl Handler for Unruly {
    type Context = u32; // datagrams seen on this loop's socket
    fn on_traffic(&self, conn: &mut Conn<'_, u32>) -> Action {
        *conn.context_mut() += 1;
        let seen = *conn.context();
        let _ = conn.write(seen.to_string().as_bytes());
        conn.shutdown_write();
        match conn.next(usize::MAX) {
            b"panic" => panic!("handler bug"),
            b"close" => Action::Close,
            _ => Action::None,
        }
    }
}

#[test]
fn close_and_panics_do_not_close_a_udp_socket() {
    let (engine, addr) = udp_engine(Unruly, Options::default().loops(1));
    let client = udp_client();
    let mut buf = [0u8; 16];
    for (i, msg) in ["close", "panic", "hello", "close"].iter().enumerate() {
        client.send_to(msg.as_bytes(), addr).unwrap();
        // Even the panicking call's reply, queued before the panic, leaves.
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), (i + 1).to_string());
    }
    stop(engine);
}

fn lo_index() -> u32 {
    // SAFETY: the argument is a NUL-terminated string literal.
    unsafe { libc::if_nametoindex(c"lo".as_ptr()) }
}

#[test]
fn multicast_group_on_loopback_is_served_once() {
    let group = Ipv4Addr::new(224, 0, 0, 123);
    // A free port for the group: bind and release a socket.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for iface in [
        MulticastInterface::Index(lo_index()),
        MulticastInterface::Addr(Ipv4Addr::LOCALHOST),
    ] {
        let engine = start_on(
            Echo,
            &[&format!("udp4://{group}:{port}")],
            Options::default()
                .loops(2)
                .multicast_interface(Some(iface))
                .multicast_loop(Some(true))
                .multicast_ttl(Some(0)),
        );
        let sender = udp_client();
        socket2::SockRef::from(&sender)
            .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
            .unwrap();
        for i in 0..20u64 {
            let data = pattern(i, 100 + i as usize);
            sender.send_to(&data, (group, port)).unwrap();
            let mut buf = [0u8; 512];
            let (n, _) = sender.recv_from(&mut buf).expect("one echo per datagram");
            assert!(buf[..n] == data[..]);
        }
        // Exactly once: no second copy from another loop.
        sender
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(sender.recv_from(&mut [0u8; 512]).is_err(), "a duplicate");
        stop(engine);
    }
}

/// Forwards every datagram to the broadcast address of loopback.
struct Rebroadcast(u16);

impl Handler for Rebroadcast {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        let to = SocketAddr::from((Ipv4Addr::new(127, 255, 255, 255), self.0));
        conn.send_to(to, &data).unwrap();
        Action::None
    }
}

#[test]
fn broadcast_is_allowed_when_asked_for() {
    let listener = UdpSocket::bind("0.0.0.0:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let (engine, addr) = udp_engine(
        Rebroadcast(port),
        Options::default().loops(1).broadcast(true),
    );
    udp_client().send_to(b"to everyone", addr).unwrap();
    let mut buf = [0u8; 64];
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to everyone");
    stop(engine);
}

#[test]
fn udp_option_values_are_checked() {
    let start = |options: Options, url: &str| {
        netloom::Engine::builder()
            .bind(url)
            .options(options)
            .start(Echo)
            .map(|_| ())
    };
    for bad in [
        Options::default().udp_batch(0),
        Options::default().udp_batch(2_000),
        Options::default().multicast_ttl(Some(256)),
    ] {
        assert!(matches!(
            start(bad, "udp://127.0.0.1:0"),
            Err(Error::InvalidOption(_))
        ));
    }
    assert!(matches!(
        start(
            Options::default()
                .multicast_interface(Some(MulticastInterface::Addr(Ipv4Addr::LOCALHOST))),
            "udp6://[::1]:0"
        ),
        Err(Error::InvalidOption(_))
    ));
    assert!(matches!(
        start(
            Options::default().multicast_interface(Some(MulticastInterface::Index(999_999))),
            "udp4://224.0.0.124:0"
        ),
        Err(Error::InvalidOption(_))
    ));
}

#[test]
fn datagram_calls_on_a_tcp_connection_are_unsupported() {
    let (reg, engine, addr) = registry(Options::default().loops(1));
    let _stream = connect(addr);
    let (h, _) = handle(&reg, 0);
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert!(matches!(
        h.async_send_to(to, b"x".to_vec()),
        Err(Error::Unsupported(_))
    ));
    let (tx, rx) = std::sync::mpsc::channel();
    h.execute(move |conn| {
        let _ = tx.send((conn.send_to(to, b"x"), conn.truncated()));
    })
    .unwrap();
    let (sent, truncated) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(matches!(sent, Err(Error::Unsupported(_))));
    assert_eq!(truncated, None);
    stop(engine);
}

#[test]
fn a_busy_udp_port_is_addr_in_use_unless_both_ask_for_reuseport() {
    let bind =
        |url: &str, options: Options| Engine::builder().bind(url).options(options).start(Echo);
    for loops in [1, 2] {
        let (first, addr) = udp_engine(Echo, Options::default().loops(loops));
        let url = format!("udp://{addr}");
        // Another engine (as a second process would be) and a plain socket
        // are refused. (One that asks for reuseport itself is refused by a
        // single socket; a group of several cannot tell it from its own.)
        let mut others = vec![Options::default().loops(2), Options::default().loops(1)];
        if loops == 1 {
            others.push(Options::default().loops(2).reuseport(true));
        }
        for options in others {
            match bind(&url, options) {
                Err(Error::AddrInUse(at)) => assert_eq!(at, addr.to_string()),
                other => panic!("{loops} loops: expected AddrInUse, got {other:?}"),
            }
        }
        let plain =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        plain.set_reuse_address(true).unwrap();
        assert!(plain.bind(&addr.into()).is_err(), "SO_REUSEADDR shares UDP");
        // Still the only receiver: every datagram is echoed by `first`.
        let client = udp_client();
        for i in 0..20 {
            let data = pattern(i, 64);
            client.send_to(&data, addr).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((from, &buf[..n]), (addr, &data[..]));
        }
        stop(first);
    }
    // A port held by a plain socket.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}", taken.local_addr().unwrap());
    assert!(matches!(
        bind(&url, Options::default().loops(2)),
        Err(Error::AddrInUse(_))
    ));
    drop(taken);
    // Both ask for reuseport: they share, as they asked.
    let (first, addr) = udp_engine(Echo, Options::default().loops(2).reuseport(true));
    let second = bind(
        &format!("udp://{addr}"),
        Options::default().loops(2).reuseport(true),
    )
    .expect("explicit sharing");
    stop(second);
    stop(first);
}
