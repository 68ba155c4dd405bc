//! Socket options: set through `Options` (or per connection), read back
//! with getsockopt; bad values are typed errors at start-up.
//!
//! Linux only: it reads back Linux's options (`SO_BINDTODEVICE`,
//! `TCP_DEFER_ACCEPT`, `SO_ACCEPTCONN`, ...).
#![cfg(target_os = "linux")]

mod util;

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::mpsc;
use std::time::Duration;

use netloom::{Action, Conn, Error, Handler, Options};
use socket2::SockRef;
use util::*;

/// What an accepted connection (or UDP socket) reports about its options.
#[derive(Debug)]
struct Seen {
    nodelay: Option<bool>,
    keepalive: Option<(bool, Duration, Duration, u32)>,
    linger: Option<Option<Duration>>,
    recv_buffer: usize,
    send_buffer: usize,
    tos: Option<u32>,
    broadcast: Option<bool>,
    multicast: Option<(bool, u32)>,
    device: Option<Vec<u8>>,
    /// `set_nodelay(false)` through `Conn::socket`, read back.
    nodelay_after_reset: Option<bool>,
}

struct Report(mpsc::Sender<Seen>);

fn seen(conn: &mut Conn<'_, ()>) -> Seen {
    let s = conn.socket();
    let tcp = conn.transport() == netloom::Transport::Tcp;
    let udp = conn.transport() == netloom::Transport::Udp;
    let inet = conn.peer_addr().inet().is_some();
    Seen {
        nodelay: tcp.then(|| s.nodelay().unwrap()),
        keepalive: tcp.then(|| {
            (
                s.keepalive().unwrap(),
                s.keepalive_time().unwrap(),
                s.keepalive_interval().unwrap(),
                s.keepalive_retries().unwrap(),
            )
        }),
        linger: tcp.then(|| s.linger().unwrap()),
        recv_buffer: s.recv_buffer_size().unwrap(),
        send_buffer: s.send_buffer_size().unwrap(),
        tos: inet.then(|| s.tos().unwrap()),
        broadcast: udp.then(|| s.broadcast().unwrap()),
        multicast: udp.then(|| {
            (
                s.multicast_loop_v4().unwrap(),
                s.multicast_ttl_v4().unwrap(),
            )
        }),
        device: inet.then(|| s.device().unwrap()).flatten(),
        nodelay_after_reset: tcp.then(|| {
            s.set_nodelay(false).unwrap();
            s.nodelay().unwrap()
        }),
    }
}

impl Handler for Report {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.0.send(seen(conn));
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.transport() == netloom::Transport::Udp {
            let _ = self.0.send(seen(conn));
        }
        conn.discard(usize::MAX);
        Action::None
    }
}

fn report(urls: &[&str], options: Options) -> (netloom::Engine, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    (start_on(Report(tx), urls, options), rx)
}

#[test]
fn accepted_tcp_connections_carry_the_options() {
    let options = Options::default()
        .loops(1)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .tcp_keepalive_interval(Some(Duration::from_secs(5)))
        .tcp_keepalive_retries(Some(4))
        .linger(Some(Duration::from_secs(2)))
        .recv_buffer_size(Some(100_000))
        .send_buffer_size(Some(200_000))
        .ip_tos(Some(0x10));
    let (engine, rx) = report(&["tcp://127.0.0.1:0"], options);
    let _client = Client::connect(&engine.local_addrs()[0]);
    let seen = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(seen.nodelay, Some(true), "TCP_NODELAY is on by default");
    assert_eq!(
        seen.keepalive,
        Some((true, Duration::from_secs(30), Duration::from_secs(5), 4))
    );
    assert_eq!(seen.linger, Some(Some(Duration::from_secs(2))));
    // The kernel doubles buffer sizes for its bookkeeping.
    assert_eq!(seen.recv_buffer, 200_000);
    assert_eq!(seen.send_buffer, 400_000);
    assert_eq!(seen.tos, Some(0x10), "inherited from the listener");
    assert_eq!(
        seen.nodelay_after_reset,
        Some(false),
        "per-connection setter"
    );
    stop(engine);
}

#[test]
fn defaults_leave_the_kernel_alone() {
    let (engine, rx) = report(
        &["tcp://127.0.0.1:0"],
        Options::default().loops(1).tcp_nodelay(false),
    );
    let _client = Client::connect(&engine.local_addrs()[0]);
    let seen = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(seen.nodelay, Some(false));
    assert!(!seen.keepalive.unwrap().0);
    assert_eq!(seen.linger, Some(None));
    assert_eq!(seen.tos, Some(0));
    stop(engine);
}

/// The listening (or UDP) socket bound to `addr` among this process's
/// descriptors.
fn listener_fd(addr: SocketAddr) -> RawFd {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .parse::<RawFd>()
        else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the getsockopt calls
        // below, while the engine (which owns it) runs.
        let fd_ref = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = SockRef::from(&fd_ref);
        let listening = sock.is_listener().unwrap_or(false);
        let datagram = sock.r#type().ok() == Some(socket2::Type::DGRAM);
        let bound = sock.local_addr().ok().and_then(|a| a.as_socket());
        if (listening || datagram) && bound == Some(addr) {
            return fd;
        }
    }
    panic!("no listener on {addr}");
}

fn int_option(fd: RawFd, level: i32, name: i32) -> i32 {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the local int.
    let rc =
        unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
    assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
    value
}

#[test]
fn listener_options_round_trip() {
    let options = Options::default()
        .loops(1)
        .tcp_fastopen(Some(16))
        .tcp_defer_accept(Some(Duration::from_secs(5)))
        .reuse_address(false)
        .bind_device(Some("lo".into()))
        .backlog(Some(77))
        .recv_buffer_size(Some(70_000));
    let (engine, _rx) = report(&["tcp://127.0.0.1:0"], options);
    let fd = listener_fd(engine.local_addrs()[0].inet().unwrap());
    assert_eq!(int_option(fd, libc::IPPROTO_TCP, libc::TCP_FASTOPEN), 16);
    // The kernel counts SYN-ACK retransmissions and rounds up to them.
    assert!(int_option(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) >= 5);
    // SAFETY: borrowed while the engine runs, as above.
    let fd_ref = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = SockRef::from(&fd_ref);
    assert!(!sock.reuse_address().unwrap());
    assert_eq!(sock.device().unwrap().as_deref(), Some(&b"lo"[..]));
    assert_eq!(sock.recv_buffer_size().unwrap(), 140_000);
    stop(engine);
}

#[test]
fn ipv6_only_follows_the_scheme_unless_set() {
    // The kernel forces IPV6_V6ONLY on when a socket binds a specific IPv6
    // address, so this takes the wildcard, kept to loopback by the device.
    for (url, option, expected) in [
        ("tcp6://[::]:0", None, true),
        ("tcp://[::]:0", None, false),
        ("tcp6://[::]:0", Some(false), false),
        ("udp://[::]:0", Some(true), true),
    ] {
        let options = Options::default()
            .loops(1)
            .ipv6_only(option)
            .bind_device(Some("lo".into()));
        let (engine, _rx) = report(&[url], options);
        let fd = listener_fd(engine.local_addrs()[0].inet().unwrap());
        // SAFETY: borrowed while the engine runs.
        let fd_ref = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = SockRef::from(&fd_ref);
        assert_eq!(sock.only_v6().unwrap(), expected, "{url} {option:?}");
        stop(engine);
    }
}

#[test]
fn udp_sockets_carry_the_options() {
    let options = Options::default()
        .loops(2)
        .recv_buffer_size(Some(300_000))
        .send_buffer_size(Some(150_000))
        .ip_tos(Some(0x20))
        .broadcast(true)
        .multicast_loop(Some(false))
        .multicast_ttl(Some(3))
        .bind_device(Some("lo".into()));
    let (engine, rx) = report(&["udp4://127.0.0.1:0"], options);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(b"x", engine.local_addrs()[0].inet().unwrap())
        .unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(seen.recv_buffer, 600_000);
    assert_eq!(seen.send_buffer, 300_000);
    assert_eq!(seen.tos, Some(0x20));
    assert_eq!(seen.broadcast, Some(true));
    assert_eq!(seen.multicast, Some((false, 3)));
    assert_eq!(seen.device.as_deref(), Some(&b"lo"[..]));
    stop(engine);
}

#[test]
fn unix_connections_get_buffer_sizes() {
    let dir = TempDir::new("opts");
    let url = format!("unix://{}", dir.path("o.sock").display());
    let (engine, rx) = report(
        &[&url],
        Options::default()
            .loops(1)
            .recv_buffer_size(Some(90_000))
            .send_buffer_size(Some(80_000)),
    );
    let _client = Client::connect(&engine.local_addrs()[0]);
    let seen = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!((seen.recv_buffer, seen.send_buffer), (180_000, 160_000));
    assert_eq!(seen.nodelay, None);
    stop(engine);
}

#[test]
fn bad_values_are_typed_errors_at_start_up() {
    let secs = |s: f64| Some(Duration::from_secs_f64(s));
    let bad = [
        Options::default().tcp_keepalive(secs(0.0)),
        Options::default().tcp_keepalive(secs(1.5)),
        Options::default().tcp_keepalive(secs(40_000.0)),
        Options::default().tcp_keepalive_interval(secs(0.0)),
        Options::default().tcp_keepalive_retries(Some(0)),
        Options::default().tcp_keepalive_retries(Some(200)),
        Options::default().recv_buffer_size(Some(0)),
        Options::default().send_buffer_size(Some(usize::MAX)),
        Options::default().linger(Some(Duration::from_secs(u64::MAX))),
        Options::default().bind_device(Some(String::new())),
        Options::default().bind_device(Some("a-much-too-long-name".into())),
        Options::default().bind_device(Some("nosuchdev0".into())),
        Options::default().tcp_fastopen(Some(0)),
        Options::default().tcp_defer_accept(Some(Duration::ZERO)),
        Options::default().ip_tos(Some(256)),
        Options::default().backlog(Some(0)),
    ];
    for options in bad {
        let shown = format!("{options:?}");
        for url in ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"] {
            let outcome = netloom::Engine::builder()
                .bind(url)
                .options(options.clone())
                .start(Echo)
                .map(|_| ());
            assert!(
                matches!(outcome, Err(Error::InvalidOption(_))),
                "{url} {shown}: {outcome:?}"
            );
        }
    }
}
