//! Black-box test of `examples/echo_async.rs` out of descriptors: run under
//! a low open-file limit, with more clients than it can accept, it logs the
//! accept failures at a bounded rate (the accept loop backs off, as the
//! callback engine's acceptor does) instead of a line every 10 ms, keeps
//! serving the connections it has, and accepts again once descriptors free
//! up.

mod util;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{echo_roundtrip, ExampleServer};

/// The example's open-file limit: room for its runtime and a few dozen
/// connections.
const FD_LIMIT: usize = 64;
/// How long the shortage lasts. At the old fixed 10 ms pause it logged
/// about 300 lines in this time; with the backoff (10 ms doubling to 1 s)
/// about ten.
const SHORTAGE: Duration = Duration::from_secs(3);

#[test]
fn descriptor_shortage_is_logged_at_a_bounded_rate_and_recovers() {
    util::raise_fd_limit();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\""))
        .arg(util::example_binary("echo_async"))
        .args(["--addr", "tcp://127.0.0.1:0", "--loops", "1"])
        .stderr(Stdio::piped());
    let mut server = ExampleServer::spawn(command);
    let first = util::connect(server.addr);
    echo_roundtrip(&first, b"before the shortage");

    // More clients than descriptors: the kernel completes their handshakes
    // (the listen backlog), the example runs out of descriptors accepting.
    let extra: Vec<TcpStream> = (0..2 * FD_LIMIT)
        .map(|_| util::connect(server.addr))
        .collect();
    std::thread::sleep(SHORTAGE);
    echo_roundtrip(&first, b"during the shortage");

    // Descriptors free up: a new client is accepted and served again.
    drop(extra);
    let after = util::connect(server.addr);
    echo_roundtrip(&after, b"after the shortage");

    let mut stderr = server.child.stderr.take().unwrap();
    assert!(server.terminate().success());
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    let failures = log.lines().filter(|l| l.contains("accept")).count();
    assert!(failures >= 1, "the shortage was logged: {log}");
    // At most the backoff's schedule (10, 20, 40 ... 640 ms, then 1 s):
    // a slow machine logs fewer lines, never more.
    assert!(
        failures <= 20,
        "{failures} accept lines in about {SHORTAGE:?}:\n{log}"
    );
}
