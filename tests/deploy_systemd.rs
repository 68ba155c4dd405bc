//! systemd socket activation with the real `systemd-socket-activate`
//! (Debian's `systemd` package, installed by `.ci/install-tools`): it binds,
//! waits for the first client, then execs the `echo` example with the
//! sockets as descriptors 3, 4, ... and `LISTEN_FDS`/`LISTEN_PID`/
//! `LISTEN_FDNAMES`; the example serves them through `--addr systemd://`.
//! TCP (picked by name; also `echo_async`), Unix and UDP, every byte
//! checked; a connected socket (`--accept`) is refused with a clear error;
//! and the variables are gone, the descriptors close-on-exec, once netloom
//! took them.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ACTIVATE: &str = "systemd-socket-activate";

/// `systemd-socket-activate` with `args`, then `program` and its
/// arguments; killed (with what it exec'd: the same process) on drop.
struct Activated {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Activated {
    /// Starts it and waits until it listens on `sockets` sockets.
    fn spawn(
        args: &[&str],
        sockets: usize,
        program: &std::path::Path,
        program_args: &[&str],
    ) -> Activated {
        let mut child = Command::new(ACTIVATE)
            .args(args)
            .arg(program)
            .args(program_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-socket-activate starts");
        let stdout = util::lines_of(child.stdout.take().unwrap());
        let stderr = util::lines_of(child.stderr.take().unwrap());
        let mut activated = Activated {
            child,
            stdout,
            stderr,
        };
        for _ in 0..sockets {
            activated.read_until(true, "Listening on");
        }
        activated
    }

    /// The lines printed on stderr (`true`) or stdout until one contains
    /// `wanted`, waiting at most 20 s for each.
    fn read_until(&mut self, stderr: bool, wanted: &str) -> Vec<String> {
        let lines = if stderr { &self.stderr } else { &self.stdout };
        let mut seen = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    let done = line.contains(wanted);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(e) => panic!("no line with {wanted:?} ({e}); saw {seen:?}"),
            }
        }
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn roundtrip(stream: &mut (impl Read + Write), seed: u64) {
    // 64 KiB fit the loopback socket buffers: written whole, then read back.
    let data = util::pattern(seed, 64 * 1024);
    stream.write_all(&data).unwrap();
    let mut got = vec![0u8; data.len()];
    stream.read_exact(&mut got).unwrap();
    assert!(got == data, "echoed bytes differ");
}

#[test]
fn tcp_socket_picked_by_name() {
    if !util::require_tool(ACTIVATE) {
        return;
    }
    let echo = util::example_binary("echo");
    let (first, second) = (free_port(), free_port());
    let (a, b) = (format!("127.0.0.1:{first}"), format!("127.0.0.1:{second}"));
    let args = ["-l", &a, "-l", &b, "--fdname=admin:web"];
    let mut server = Activated::spawn(
        &args,
        2,
        &echo,
        &["--addr", "systemd://web", "--loops", "2"],
    );
    // The first client starts the program; its connection waits in the backlog.
    let mut client = util::connect(b.parse().unwrap());
    let banner = server.read_until(false, "listening");
    assert!(
        banner.iter().any(|l| l.contains(&b)) && !banner.iter().any(|l| l.contains(&a)),
        "serves `web` only: {banner:?}"
    );
    roundtrip(&mut client, 1);
    roundtrip(&mut util::connect(b.parse().unwrap()), 2);
}

#[test]
fn async_front_end_takes_the_socket_too() {
    if !util::require_tool(ACTIVATE) {
        return;
    }
    let echo = util::example_binary("echo_async");
    let at = format!("127.0.0.1:{}", free_port());
    let mut server = Activated::spawn(&["-l", &at], 1, &echo, &["--addr", "systemd://"]);
    let mut client = util::connect(at.parse().unwrap());
    let banner = server.read_until(false, "listening");
    assert!(banner.iter().any(|l| l.contains(&at)), "{banner:?}");
    roundtrip(&mut client, 30);
}

#[test]
fn unix_socket() {
    if !util::require_tool(ACTIVATE) {
        return;
    }
    let echo = util::example_binary("echo");
    let dir = util::TempDir::new("systemd-unix");
    let path = dir.path("echo.sock");
    let listen = path.display().to_string();
    let mut server = Activated::spawn(&["-l", &listen], 1, &echo, &["--addr", "systemd://"]);
    let mut client = UnixStream::connect(&path).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let banner = server.read_until(false, "listening");
    assert!(banner.iter().any(|l| l.contains(&listen)), "{banner:?}");
    roundtrip(&mut client, 3);
}

#[test]
fn udp_socket() {
    if !util::require_tool(ACTIVATE) {
        return;
    }
    let echo = util::example_binary("echo");
    let at = format!("127.0.0.1:{}", free_udp_port());
    let mut server = Activated::spawn(
        &["--datagram", "-l", &at],
        1,
        &echo,
        &["--addr", "systemd://"],
    );
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.connect(&at).unwrap();
    // The first datagram starts the program and waits for it in the queue.
    let first = util::pattern(4, 1200);
    client.send(&first).unwrap();
    let banner = server.read_until(false, "listening");
    assert!(banner.iter().any(|l| l.contains(&at)), "{banner:?}");
    let mut got = vec![0u8; 2048];
    let n = client.recv(&mut got).unwrap();
    assert!(got[..n] == first[..], "echoed datagram differs");
    for seed in 5..25 {
        let data = util::pattern(seed, 100 + seed as usize * 50);
        client.send(&data).unwrap();
        let n = client.recv(&mut got).unwrap();
        assert!(got[..n] == data[..], "echoed datagram {seed} differs");
    }
}

#[test]
fn a_connected_socket_from_accept_yes_is_refused() {
    if !util::require_tool(ACTIVATE) {
        return;
    }
    let echo = util::example_binary("echo");
    let at = format!("127.0.0.1:{}", free_port());
    let mut server = Activated::spawn(
        &["--accept", "-l", &at],
        1,
        &echo,
        &["--addr", "systemd://"],
    );
    let mut client = util::connect(at.parse().unwrap());
    let errors = server.read_until(true, "does not listen");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("echo:") && l.contains("Accept=no")),
        "{errors:?}"
    );
    // The refused program exits, closing the connection unanswered.
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

/// Run by `the_environment_is_consumed_and_descriptors_close_on_exec`
/// through `systemd-socket-activate`, as the activated program; does
/// nothing when run by itself.
#[test]
fn probe_activated_process() {
    if std::env::var("NETLOOM_SYSTEMD_PROBE").is_err() {
        return;
    }
    let engine = netloom::Engine::builder()
        .bind("systemd://")
        .start(util::Echo)
        .expect("systemd's socket is served");
    let vars_left: Vec<&str> = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some())
        .collect();
    // SAFETY: F_GETFD only reads descriptor 3's flags.
    let flags = unsafe { libc::fcntl(3, libc::F_GETFD) };
    println!(
        "PROBE vars_left={vars_left:?} cloexec={} addr={}",
        flags >= 0 && flags & libc::FD_CLOEXEC != 0,
        engine.local_addrs()[0]
    );
    util::stop(engine);
}

#[test]
fn the_environment_is_consumed_and_descriptors_close_on_exec() {
    if !util::require_tool(ACTIVATE) {
        return;
    }
    let me = std::env::current_exe().unwrap();
    let at = format!("127.0.0.1:{}", free_port());
    let args = ["-l", &at, "--fdname=web", "-E", "NETLOOM_SYSTEMD_PROBE=1"];
    let probe_args = [
        "--exact",
        "probe_activated_process",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut probe = Activated::spawn(&args, 1, &me, &probe_args);
    let _client = TcpStream::connect(&at).unwrap();
    let lines = probe.read_until(false, "PROBE");
    let report = lines.last().unwrap();
    let expected = format!("PROBE vars_left=[] cloexec=true addr={at}");
    assert!(report.ends_with(&expected), "{lines:?}");
}
