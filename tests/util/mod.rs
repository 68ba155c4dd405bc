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
    let addr = engine.local_addrs()[0].inet().expect("an inet address");
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
        #[allow(clippy::unnecessary_cast)] // rlim_t is i64 on FreeBSD
        let limit = lim.rlim_cur as u64;
        limit
    }
}

/// Descriptors open in this process.
#[cfg(target_os = "linux")]
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Descriptors open in this process: every number below the table size
/// that `fcntl` knows (no `/proc` here).
#[cfg(not(target_os = "linux"))]
pub fn open_fds() -> usize {
    // SAFETY: getdtablesize takes no arguments.
    let table = unsafe { libc::getdtablesize() };
    // SAFETY: F_GETFD only reads the descriptor's flags; EBADF for a free one.
    (0..table)
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
        .count()
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
    assert!(wait_until(Duration::from_secs(30), || reg
        .opened
        .lock()
        .unwrap()
        .len()
        > i));
    reg.opened.lock().unwrap()[i].clone()
}

/// A directory of its own for one test (socket files), removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netloom-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique abstract socket name for this test process.
pub fn abstract_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "netloom-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts `handler` on every URL of `urls`.
pub fn start_on<H: Handler>(handler: H, urls: &[&str], options: Options) -> Engine {
    let mut builder = Engine::builder().options(options);
    for url in urls {
        builder = builder.bind(url);
    }
    builder.start(handler).expect("engine starts")
}

/// A stream client over TCP or a Unix domain socket.
pub enum Client {
    Tcp(TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Client {
    /// Connects to a bound address of an engine, with 10 s I/O timeouts.
    pub fn connect(addr: &netloom::Addr) -> Client {
        use netloom::{Addr, UnixAddr};
        use std::os::unix::net::UnixStream;
        let client = match addr {
            Addr::Inet(a) => return Client::Tcp(connect(*a)),
            Addr::Unix(UnixAddr::Path(p)) => UnixStream::connect(p).expect("connect"),
            #[cfg(target_os = "linux")]
            Addr::Unix(UnixAddr::Abstract(name)) => {
                use std::os::linux::net::SocketAddrExt;
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
                UnixStream::connect_addr(&a).expect("connect")
            }
            #[cfg(not(target_os = "linux"))]
            Addr::Unix(UnixAddr::Abstract(_)) => panic!("abstract Unix names are Linux-only"),
            Addr::Unix(UnixAddr::Unnamed) => panic!("cannot connect to an unnamed socket"),
        };
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client::Unix(client)
    }

    pub fn try_clone(&self) -> Client {
        match self {
            Client::Tcp(s) => Client::Tcp(s.try_clone().unwrap()),
            Client::Unix(s) => Client::Unix(s.try_clone().unwrap()),
        }
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Client::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Client::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

impl Read for &Client {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Client::Tcp(s) => (&*s).read(buf),
            Client::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Client {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Client::Tcp(s) => (&*s).write(buf),
            Client::Unix(s) => (&*s).write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`echo_roundtrip`] over any stream client.
pub fn client_roundtrip(client: &Client, data: &[u8]) {
    let writer = client.try_clone();
    let owned = data.to_vec();
    let t = std::thread::spawn(move || (&writer).write_all(&owned).unwrap());
    let mut got = vec![0u8; data.len()];
    (&*client).read_exact(&mut got).expect("echo arrives");
    t.join().unwrap();
    assert!(got == data, "echoed bytes differ");
}

/// Builds an example with the cargo running this test (same profile) and
/// returns its path, for black-box tests of the example binaries.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    example_binary_with(name, &[])
}

/// As [`example_binary`], built with the crate's `features` (`&["tls"]`
/// for the examples' TLS flags; the test itself is built with them too, so
/// the library is not rebuilt).
pub fn example_binary_with(name: &str, features: &[&str]) -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
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

/// A running example binary, killed when dropped. Its stdout keeps being
/// read (so its last lines, such as "drained, exiting", never meet a
/// closed pipe).
pub struct ExampleServer {
    pub child: std::process::Child,
    /// The first address its first line names.
    pub addr: SocketAddr,
    /// Its stdout, a line at a time, after the first.
    pub stdout: std::sync::mpsc::Receiver<String>,
}

impl ExampleServer {
    /// Starts example `name` with `args` and waits for the first address it
    /// prints on stdout (the last word of its first line).
    pub fn start(name: &str, args: &[&str]) -> ExampleServer {
        let mut command = std::process::Command::new(example_binary(name));
        command.args(args);
        ExampleServer::spawn(command)
    }

    /// Runs `command` (an example binary, or a shell that `exec`s one) and
    /// waits (at most 30 s) for the first address it prints on stdout.
    pub fn spawn(mut command: std::process::Command) -> ExampleServer {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("example starts");
        let stdout = lines_of(child.stdout.take().unwrap());
        let line = stdout
            .recv_timeout(Duration::from_secs(30))
            .expect("the example says where it listens");
        let addr = line
            .split_whitespace()
            .find_map(|word| word.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        ExampleServer {
            child,
            addr,
            stdout,
        }
    }

    /// Waits for the process to exit on its own, at most `limit`.
    pub fn exits_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a line it printed after the first contains `text`: reads
    /// until one does or its stdout ends (give up after 10 s).
    pub fn printed(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(text) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.sigterm();
        self.child.wait().unwrap()
    }

    /// Sends SIGTERM and waits at most `limit` for the exit.
    pub fn terminate_within(mut self, limit: Duration) -> std::process::ExitStatus {
        self.sigterm();
        self.exits_within(limit)
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of a child's `pipe`, read on a thread of their own (the child
/// never blocks on a full pipe, nor dies of a closed one).
pub fn lines_of(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The number of requests in a finished `wrk` run's output, after
/// asserting that wrk succeeded and saw no socket error and no non-2xx
/// answer.
pub fn clean_wrk_requests(out: &std::process::Output) -> u64 {
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("Socket errors"), "{report}");
    assert!(!report.contains("Non-2xx"), "{report}");
    report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {report}"))
}

/// Whether the program `tool` (installed by `.ci/install-tools`) is on
/// PATH. When it is not: in CI (`CI=true`) the test fails; elsewhere it
/// says loudly on stderr that the test is skipped, and returns false.
pub fn require_tool(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return true;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !in_ci,
        "{tool} is missing in CI: .ci/install-tools should have installed it"
    );
    eprintln!("######## SKIPPED: {tool} is not installed (run .ci/install-tools) ########");
    false
}
