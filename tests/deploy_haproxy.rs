//! The deployment recipe of the README, with the real programs: HAProxy
//! (`mode tcp`, `send-proxy-v2`) in front of two `http` example processes
//! started with `--proxy-protocol v2`. curl from 127.0.0.2 (HAProxy itself
//! connects from 127.0.0.1) checks that the handlers see the client's
//! address; wrk drives the whole chain and must see 0 socket errors and
//! 0 non-2xx answers. Everything started is killed when dropped.

mod util;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use util::{ExampleServer, TempDir};

/// An `http` example backend expecting PROXY protocol v2 headers on
/// `port` (0: any free port).
fn start_backend(port: u16) -> ExampleServer {
    let addr = format!("tcp://127.0.0.1:{port}");
    let args = ["--addr", &addr, "--loops", "1", "--proxy-protocol", "v2"];
    ExampleServer::start("http", &args)
}

/// The same, restartable without downtime through `handoff`: a second
/// process started the same way takes its listening socket over, and the
/// first drains and exits.
fn start_restartable_backend(port: u16, handoff: &Path) -> ExampleServer {
    let addr = format!("tcp://127.0.0.1:{port}");
    let handoff = handoff.to_str().unwrap();
    let args = [
        "--addr",
        &addr,
        "--loops",
        "1",
        "--proxy-protocol",
        "v2",
        "--handoff",
        handoff,
    ];
    ExampleServer::start("http", &args)
}

/// HAProxy in the foreground, killed when dropped.
struct Haproxy {
    child: Child,
    addr: SocketAddr,
}

impl Haproxy {
    /// Writes a configuration into `dir` that balances `backends`
    /// round-robin, each with `send-proxy-v2`, and starts HAProxy on it.
    /// Its HTTP health checks (`GET /whoami` every 100 ms) come with a
    /// `LOCAL` header: a backend that refused them would be taken out after
    /// three, and the requests of the tests would fail.
    fn start(dir: &TempDir, backends: &[SocketAddr]) -> Haproxy {
        let addr = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, at)| format!("    server app{i} {at} send-proxy-v2 check inter 100ms\n"))
            .collect();
        let config = format!(
            "global\n    maxconn 512\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
             frontend web\n    bind {addr}\n    default_backend app\n\
             backend app\n    balance roundrobin\n    option httpchk GET /whoami\n{servers}"
        );
        let path = dir.path("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        let haproxy = Haproxy { child, addr };
        let listening =
            util::wait_until(Duration::from_secs(10), || TcpStream::connect(addr).is_ok());
        assert!(listening, "haproxy listens on {addr}");
        // Long enough for several rounds of health checks.
        std::thread::sleep(Duration::from_millis(500));
        haproxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
fn free_port() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// `GET /whoami` through `haproxy` with curl from 127.0.0.2, from a local
/// port in 42000-42999: the body the backend answered.
fn whoami_from_127_0_0_2(haproxy: SocketAddr) -> String {
    let url = format!("http://{haproxy}/whoami");
    let out = Command::new("timeout")
        .args(["20", "curl", "-sS", "--fail", "--max-time", "10"])
        .args([
            "--interface",
            "127.0.0.2",
            "--local-port",
            "42000-42999",
            &url,
        ])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn haproxy_with_send_proxy_v2_passes_the_client_address_and_wrk_sees_no_errors() {
    if !util::require_tool("haproxy") || !util::require_tool("curl") || !util::require_tool("wrk") {
        return;
    }
    let dir = TempDir::new("deploy-haproxy");
    let backends = [start_backend(0), start_backend(0)];
    let haproxy = Haproxy::start(&dir, &[backends[0].addr, backends[1].addr]);

    // Round-robin sends one request to each backend; both see the client,
    // 127.0.0.2 and its port, not HAProxy's 127.0.0.1.
    for _ in 0..2 {
        let seen: SocketAddr = whoami_from_127_0_0_2(haproxy.addr)
            .parse()
            .expect("an address");
        assert_eq!(seen.ip().to_string(), "127.0.0.2");
        assert!((42000..=42999).contains(&seen.port()), "{seen}");
    }
    // A client that bypasses the balancer sends no header: refused.
    let direct = format!("http://{}/whoami", backends[0].addr);
    let out = Command::new("timeout")
        .args(["20", "curl", "-sS", "--max-time", "10", &direct])
        .output()
        .expect("curl runs");
    assert!(
        !out.status.success(),
        "a request without a PROXY header is answered"
    );

    let wrk = start_wrk(haproxy.addr, "2s");
    assert_clean_wrk_run(wrk);

    drop(haproxy);
    for backend in backends {
        assert!(backend.terminate().success(), "a backend exits cleanly");
    }
}

/// wrk through `haproxy` for `duration`, 32 connections, started now.
fn start_wrk(haproxy: SocketAddr, duration: &str) -> std::process::Child {
    let url = format!("http://{haproxy}/plaintext");
    Command::new("timeout")
        .args(["60", "wrk", "-t2", "-c32", &format!("-d{duration}"), &url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wrk runs")
}

/// Waits for `wrk` and asserts that it saw no socket error and no non-2xx
/// answer, and answered more than 100 requests.
fn assert_clean_wrk_run(wrk: std::process::Child) {
    let out = wrk.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(util::clean_wrk_requests(&out) > 100, "{report}");
    eprintln!("wrk through haproxy:\n{report}");
}

/// The zero-downtime restart behind the balancer: while wrk runs through
/// HAProxy, one backend is replaced through `--handoff` (the new process
/// takes the listening socket over; the old one answers its connections'
/// next request with `Connection: close`, drains and exits). wrk sees no
/// error, and the new backend still sees the client's address.
#[test]
fn a_backend_restarted_through_the_handoff_behind_haproxy_costs_wrk_no_error() {
    if !util::require_tool("haproxy") || !util::require_tool("curl") || !util::require_tool("wrk") {
        return;
    }
    let dir = TempDir::new("deploy-haproxy-restart");
    let handoff = dir.path("app0.sock");
    let mut first = start_restartable_backend(0, &handoff);
    let other = start_backend(0);
    let haproxy = Haproxy::start(&dir, &[first.addr, other.addr]);

    let wrk = start_wrk(haproxy.addr, "4s");
    std::thread::sleep(Duration::from_millis(1500));
    let second = start_restartable_backend(first.addr.port(), &handoff);
    assert_eq!(
        second.addr, first.addr,
        "the successor serves the same socket"
    );
    let status = first.exits_within(Duration::from_secs(20));
    assert!(status.success(), "the old backend exits cleanly: {status}");
    assert!(first.printed("drained"), "the old backend drained");
    assert_clean_wrk_run(wrk);

    for _ in 0..2 {
        let seen: SocketAddr = whoami_from_127_0_0_2(haproxy.addr)
            .parse()
            .expect("an address");
        assert_eq!(seen.ip().to_string(), "127.0.0.2");
    }
    drop(haproxy);
    assert!(
        second.terminate_within(Duration::from_secs(10)).success(),
        "the new backend exits cleanly"
    );
    assert!(
        other.terminate().success(),
        "the other backend exits cleanly"
    );
}

/// A chain of two PROXY protocol hops: HAProxy sends v2 to the `proxy`
/// example (`--proxy-protocol v2`), which passes the client on to an
/// `http` backend in a v1 header (`--send-proxy v1`); the handler at the
/// end still sees curl's 127.0.0.2.
#[test]
fn the_proxy_example_passes_the_client_from_haproxy_on_to_its_backend() {
    if !util::require_tool("haproxy") || !util::require_tool("curl") {
        return;
    }
    let dir = TempDir::new("deploy-haproxy-chain");
    let args = [
        "--addr",
        "tcp://127.0.0.1:0",
        "--loops",
        "1",
        "--proxy-protocol",
        "v1",
    ];
    let backend = ExampleServer::start("http", &args);
    let backend_addr = backend.addr.to_string();
    let proxy = ExampleServer::start(
        "proxy",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--upstream",
            &backend_addr,
            "--proxy-protocol",
            "v2",
            "--send-proxy",
            "v1",
        ],
    );
    let haproxy = Haproxy::start(&dir, &[proxy.addr]);
    let seen: SocketAddr = whoami_from_127_0_0_2(haproxy.addr)
        .parse()
        .expect("an address");
    assert_eq!(seen.ip().to_string(), "127.0.0.2");
    assert!((42000..=42999).contains(&seen.port()), "{seen}");
}
