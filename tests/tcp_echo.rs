//! Byte-exact echo over every topology and load balancer, many connections.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use netloom::{LoadBalancer, Options};
use util::*;

fn echo_many(options: Options, conns: usize, bytes_each: usize) -> Vec<usize> {
    let (engine, addr) = start(Echo, options.loops(2));
    let streams: Vec<_> = (0..conns).map(|_| connect(addr)).collect();
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == conns));
    let per_loop = engine.conn_counts();
    std::thread::scope(|s| {
        for (chunk_id, chunk) in streams.chunks(conns.div_ceil(8)).enumerate() {
            s.spawn(move || {
                for (i, stream) in chunk.iter().enumerate() {
                    echo_roundtrip(stream, &pattern((chunk_id * 10_000 + i) as u64, bytes_each));
                }
            });
        }
    });
    drop(streams);
    assert!(
        wait_until(Duration::from_secs(30), || engine.conn_count() == 0),
        "all closed"
    );
    stop(engine);
    per_loop
}

#[test]
fn reuseport_listener_per_loop() {
    let per_loop = echo_many(Options::default().reuseport(true), 200, 20_000);
    assert_eq!(per_loop.iter().sum::<usize>(), 200);
}

#[test]
fn acceptor_round_robin_spreads_evenly() {
    let per_loop = echo_many(
        Options::default().load_balancer(LoadBalancer::RoundRobin),
        200,
        20_000,
    );
    assert_eq!(per_loop, vec![100, 100]);
}

#[test]
fn acceptor_least_connections_balances() {
    let per_loop = echo_many(
        Options::default().load_balancer(LoadBalancer::LeastConnections),
        200,
        20_000,
    );
    assert_eq!(per_loop, vec![100, 100]);
}

#[test]
fn acceptor_source_hash_keeps_one_client_on_one_loop() {
    // Every client is 127.0.0.1, so all land on the same loop.
    let per_loop = echo_many(
        Options::default().load_balancer(LoadBalancer::SourceAddrHash),
        100,
        20_000,
    );
    assert!(
        per_loop.contains(&100) && per_loop.contains(&0),
        "{per_loop:?}"
    );
}

#[test]
fn thousand_concurrent_connections() {
    raise_fd_limit();
    echo_many(Options::default(), 1000, 4_000);
}

#[test]
fn large_stream_single_connection() {
    let (engine, addr) = start(Echo, Options::default().loops(1));
    let stream = connect(addr);
    echo_roundtrip(&stream, &pattern(7, 32 * 1024 * 1024));
    stop(engine);
}

#[test]
fn half_close_delivers_and_flushes_everything() {
    let (engine, addr) = start(Echo, Options::default().loops(1));
    let mut stream = connect(addr);
    let data = pattern(3, 16 * 1024 * 1024);
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    let t = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    stream
        .read_to_end(&mut got)
        .expect("reads until the server's FIN");
    t.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 0));
    stop(engine);
}

#[test]
fn ipv6_and_several_addresses_in_one_engine() {
    let engine = netloom::Engine::builder()
        .bind("tcp4://127.0.0.1:0")
        .bind("tcp6://[::1]:0")
        .options(Options::default().loops(1))
        .start(Echo)
        .unwrap();
    assert_eq!(engine.local_addrs().len(), 2);
    for addr in engine.local_addrs() {
        let addr = addr.inet().unwrap();
        let stream = connect(addr);
        echo_roundtrip(&stream, &pattern(addr.port() as u64, 100_000));
    }
    stop(engine);
}

#[test]
fn bad_addresses_and_options_are_typed_errors() {
    let start = |addr: &str, options: Options| {
        netloom::Engine::builder()
            .bind(addr)
            .options(options)
            .start(Echo)
            .map(|_| ())
    };
    assert!(matches!(
        start("udpx://127.0.0.1:1", Options::default()),
        Err(netloom::Error::UnknownScheme(_))
    ));
    assert!(matches!(
        start("tcp://no-port", Options::default()),
        Err(netloom::Error::InvalidAddress { .. })
    ));
    assert!(matches!(
        start(
            "tcp://127.0.0.1:0",
            Options::default().low_water(10).high_water(5)
        ),
        Err(netloom::Error::InvalidOption(_))
    ));
    assert!(matches!(
        netloom::Engine::builder().start(Echo).map(|_| ()),
        Err(netloom::Error::InvalidOption(_))
    ));
    // A port already taken (without SO_REUSEPORT) is a typed error, not a panic.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", taken.local_addr().unwrap());
    assert!(matches!(
        start(&url, Options::default()),
        Err(netloom::Error::AddrInUse(_))
    ));
}

#[test]
fn resets_mid_exchange_do_not_disturb_others() {
    let (engine, addr) = start(Echo, Options::default().loops(1));
    let survivor = connect(addr);
    for i in 0..200 {
        let s = connect(addr);
        (&s).write_all(&pattern(i, 50_000)).unwrap();
        // SO_LINGER 0: close sends RST with unread data in flight.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    }
    echo_roundtrip(&survivor, &pattern(99, 1_000_000));
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 1));
    stop(engine);
}
