//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use netloom::{Action, Conn, ConnHandle, Engine, Handler, Options, Token};

/// Echoes every byte back, zero copy.
pub struct Echo;

impl Handler for Echo {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let (inbound, mut out) = conn.split();
        let n = inbound.len();
        let written = out.write(inbound);
        conn.discard(n);
        if written.is_err() {
            return Action::Close;
        }
        Action::None
    }
}

/// Starts `handler` on 127.0.0.1 with an OS-chosen port.
pub fn start<H: Handler>(handler: H, options: Options) -> (Engine, SocketAddr) {
    let engine = Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .options(options)
        .start(handler)
        .expect("engine starts");
    let addr = engine.local_addrs()[0];
    (engine, addr)
}

/// Stops the engine and waits for it, failing the test after 10 s.
pub fn stop(engine: Engine) {
    engine.stop();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(engine.wait()));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("engine stops within 10 s")
        .expect("clean stop");
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `data` from one thread while reading it back on this one; checks
/// every byte.
pub fn echo_roundtrip(stream: &TcpStream, data: &[u8]) {
    let mut writer = stream.try_clone().unwrap();
    let owned = data.to_vec();
    let t = std::thread::spawn(move || writer.write_all(&owned).unwrap());
    let mut got = vec![0u8; data.len()];
    (&*stream).read_exact(&mut got).expect("echo arrives");
    t.join().unwrap();
    assert!(got == data, "echoed bytes differ");
}

/// Polls `cond` every 5 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Raises the soft open-file limit to the hard one (tests hold both ends).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write a plain rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_cur
    }
}

/// Descriptors open in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Publishes each connection's handle and fd; echoes nothing.
#[derive(Default)]
pub struct Registry {
    pub opened: Mutex<Vec<(ConnHandle<()>, i32)>>,
    pub traffic: Mutex<Vec<(Token, Vec<u8>)>>,
}

impl Handler for Registry {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        use std::os::fd::AsRawFd;
        let fd = conn.as_raw_fd();
        self.opened.lock().unwrap().push((conn.handle(), fd));
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        self.traffic.lock().unwrap().push((conn.token(), data));
        Action::None
    }
}

pub fn registry(options: Options) -> (Arc<Registry>, netloom::Engine, std::net::SocketAddr) {
    let reg = Arc::new(Registry::default());
    let (engine, addr) = start(reg.clone(), options);
    (reg, engine, addr)
}

pub fn handle(reg: &Registry, i: usize) -> (ConnHandle<()>, i32) {
    assert!(wait_until(Duration::from_secs(5), || reg
        .opened
        .lock()
        .unwrap()
        .len()
        > i));
    reg.opened.lock().unwrap()[i].clone()
}

/// Builds an example with the cargo running this test (same profile) and
/// returns its path, for black-box tests of the example binaries.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building example {name} failed");
    // This test runs from <target>/<profile>/deps/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

/// A running example binary, killed when dropped.
pub struct ExampleServer {
    pub child: std::process::Child,
    pub addr: SocketAddr,
}

impl ExampleServer {
    /// Starts example `name` with `args` and waits for the first address it
    /// prints on stdout (the last word of its first line).
    pub fn start(name: &str, args: &[&str]) -> ExampleServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(example_binary(name))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("example starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split_whitespace()
            .find_map(|word| word.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        ExampleServer { child, addr }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0);
        self.child.wait().unwrap()
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
