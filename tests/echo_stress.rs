//! Many idle connections and many connect/close cycles leak nothing.

mod util;

use std::time::Duration;

use netloom::Options;
use util::*;

#[test]
fn connect_close_cycles_leak_no_descriptors() {
    let (engine, addr) = start(Echo, Options::default().loops(2));
    let baseline = open_fds();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            s.spawn(move || {
                for i in 0..5_000u64 {
                    let c = connect(addr);
                    if i % 10 == 0 {
                        echo_roundtrip(&c, &pattern(t * 100_000 + i, 64));
                    }
                }
            });
        }
    });
    assert!(wait_until(Duration::from_secs(10), || engine.conn_count() == 0));
    assert!(
        wait_until(Duration::from_secs(30), || open_fds() <= baseline),
        "fds leaked"
    );
    stop(engine);
}

#[test]
fn nine_thousand_idle_connections_then_traffic_on_each() {
    raise_fd_limit();
    let (engine, addr) = start(Echo, Options::default().loops(2));
    let baseline = open_fds();
    let conns: Vec<_> = (0..9_000).map(|_| connect(addr)).collect();
    assert!(wait_until(Duration::from_secs(20), || engine.conn_count() == 9_000));
    for (i, c) in conns.iter().enumerate().step_by(7) {
        echo_roundtrip(c, &pattern(i as u64, 32));
    }
    drop(conns);
    assert!(wait_until(Duration::from_secs(20), || engine.conn_count() == 0));
    assert!(
        wait_until(Duration::from_secs(30), || open_fds() <= baseline),
        "fds leaked"
    );
    stop(engine);
}
