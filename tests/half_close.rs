//! Half-close: a client that sends its requests and shuts down its write
//! side gets every reply, whoever makes it (the loop, a worker thread, a
//! task, the other side of a proxy), with the real `nc` and `socat` against
//! the examples; and a peer that half-closes and then stops reading cannot
//! pin a connection or memory.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use netloom::{Action, Conn, Error, Handler, Options};
use util::{connect, pattern, start, stop, ExampleServer};

/// Runs `program args` with `input` on its standard input (then end of
/// file, as `printf ... |` gives it) and returns its standard output. None
/// when the program is not installed (outside CI; `.ci/install-tools`
/// installs it).
fn pipe_through(program: &str, args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    if !util::require_tool(program) {
        return None;
    }
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts: {e}"));
    // Written from a thread of its own while the output is read: the
    // program stops reading its input once its output pipe is full.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    std::thread::spawn(move || stdin.write_all(&input));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let output = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{program} finishes"))
        .unwrap();
    assert!(output.status.success(), "{program} failed: {output:?}");
    Some(output.stdout)
}

/// `nc` sends its input, shuts down its write side (`-N`) and prints what
/// comes back until the server closes; `-q 30` only bounds the wait.
fn nc(addr: std::net::SocketAddr, input: &str) -> Option<String> {
    let port = addr.port().to_string();
    let args = ["-N", "-q", "30", "127.0.0.1", port.as_str()];
    let out = pipe_through("nc", &args, input.as_bytes())?;
    Some(String::from_utf8(out).unwrap())
}

#[test]
fn pool_answers_every_job_of_a_client_that_half_closed() {
    let pool = ExampleServer::start("pool", &["--addr", "tcp://127.0.0.1:0", "--loops", "1"]);
    let input = "SLOW 300 first\nHASH 1000000 second\nPANIC third\nfourth\n";
    let Some(replies) = nc(pool.addr, input) else {
        return;
    };
    let lines: Vec<&str> = replies.lines().collect();
    assert_eq!(lines.len(), 4, "every reply, then the close: {replies:?}");
    assert_eq!(lines[0], "OK first");
    assert!(
        lines[1].starts_with("OK ") && lines[1].ends_with(" second"),
        "{replies:?}"
    );
    assert_eq!(lines[2], "ERR job panicked");
    assert_eq!(lines[3], "ERR unknown command \"fourth\"");
    assert!(pool.terminate().success());
}

#[test]
fn tasks_in_callbacks_answers_a_pending_sleep_after_the_clients_fin() {
    let server = ExampleServer::start(
        "tasks_in_callbacks",
        &["--addr", "tcp://127.0.0.1:0", "--loops", "1"],
    );
    let Some(replies) = nc(server.addr, "SLEEP 500\nPING\n") else {
        return;
    };
    assert_eq!(replies, "PONG\nWOKE 500\n");
    assert!(server.terminate().success());
}

#[test]
fn proxy_forwards_the_fin_and_returns_the_whole_answer_to_socat() {
    let echo = ExampleServer::start("echo", &["--addr", "tcp://127.0.0.1:0", "--loops", "1"]);
    let backend = echo.addr.to_string();
    let proxy = ExampleServer::start(
        "proxy",
        &["--addr", "tcp://127.0.0.1:0", "--upstream", &backend],
    );
    let to = format!("TCP:{}", proxy.addr);
    // socat waits for the other direction's end for `-t` seconds at most
    // after its input ended; it ends as soon as the proxy closes.
    let Some(reply) = pipe_through("socat", &["-t", "30", "-", &to], b"via socat\n") else {
        return;
    };
    assert_eq!(reply, b"via socat\n");
    // A megabyte, for the FIN to overtake nothing on the way.
    let big = pattern(7, 1 << 20);
    let reply = pipe_through("socat", &["-t", "30", "-", &to], &big).unwrap();
    assert!(
        reply == big,
        "{} of {} bytes came back",
        reply.len(),
        big.len()
    );
    assert!(proxy.terminate().success());
    assert!(echo.terminate().success());
}

/// Answers each connection only after the peer's FIN: a worker thread
/// writes `chunks` pieces of 1 KiB through a handle, then closes.
struct ReplyAfterEof {
    chunks: usize,
}

impl Handler for ReplyAfterEof {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.discard(usize::MAX);
        Action::None
    }
    fn on_eof(&self, conn: &mut Conn<'_, ()>) -> Action {
        assert!(conn.is_read_closed());
        let handle = conn.handle();
        let chunks = self.chunks;
        std::thread::spawn(move || {
            for i in 0..chunks {
                std::thread::sleep(Duration::from_millis(2));
                handle.async_write(pattern(i as u64, 1024)).unwrap();
            }
            handle.close().unwrap();
        });
        Action::None
    }
}

#[test]
fn handle_writes_after_the_peers_fin_reach_the_peer_byte_exact() {
    let (engine, addr) = start(ReplyAfterEof { chunks: 50 }, Options::default().loops(2));
    let clients: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                stream.write_all(b"request").unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let mut got = Vec::new();
                stream.read_to_end(&mut got).unwrap();
                got
            })
        })
        .collect();
    let expected: Vec<u8> = (0..50).flat_map(|i| pattern(i, 1024)).collect();
    for client in clients {
        assert!(client.join().unwrap() == expected, "replies lost or mixed");
    }
    stop(engine);
}

/// Keeps a half-open connection and writes to it from a thread until the
/// handle refuses; reports how the connection ended.
struct FloodAfterEof {
    closed: mpsc::Sender<Option<String>>,
    /// The most bytes ever pending on the connection, as its handle saw.
    most_pending: Arc<AtomicUsize>,
}

impl Handler for FloodAfterEof {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.discard(usize::MAX);
        Action::None
    }
    fn on_eof(&self, conn: &mut Conn<'_, ()>) -> Action {
        let handle = conn.handle();
        let most_pending = self.most_pending.clone();
        std::thread::spawn(move || loop {
            match handle.async_write(vec![b'x'; 64 * 1024]) {
                Ok(()) => {
                    most_pending.fetch_max(handle.pending(), Ordering::Relaxed);
                }
                Err(Error::OutboundFull { .. }) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        });
        Action::None
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, err: Option<&Error>) -> Action {
        let _ = self.closed.send(err.map(|e| e.to_string()));
        Action::None
    }
}

#[test]
fn a_peer_that_half_closes_and_stops_reading_is_closed_with_bounded_memory() {
    let (tx, rx) = mpsc::channel();
    let cap = 1 << 20;
    let options = Options::default()
        .loops(1)
        .async_write_cap(cap)
        .half_open_timeout(Duration::from_millis(200));
    let most_pending = Arc::new(AtomicUsize::new(0));
    let handler = FloodAfterEof {
        closed: tx,
        most_pending: most_pending.clone(),
    };
    let (engine, addr) = start(handler, options);
    let stream = connect(addr);
    stream.shutdown(Shutdown::Write).unwrap();
    // Never reads: the kernel's buffers fill, then the handle's cap holds.
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the stalled half-open connection is closed");
    let err = err.expect("closed with an error");
    assert!(err.contains("half-open"), "{err}");
    let most = most_pending.load(Ordering::Relaxed);
    assert!(
        most > 0 && most <= cap,
        "pending bytes bounded by the cap: {most}"
    );
    drop(stream);
    stop(engine);
}

#[test]
fn echo_still_closes_after_the_peers_fin_by_default() {
    let (engine, addr) = start(util::Echo, Options::default().loops(1));
    let mut stream = connect(addr);
    let data = pattern(3, 200_000);
    stream.write_all(&data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    assert!(got == data, "everything sent before the FIN is echoed");
    stop(engine);
}

#[test]
fn an_rt_stream_writes_after_reading_the_end_of_stream() {
    use netloom::rt::net::TcpListener;
    let rt = netloom::rt::Runtime::builder().loops(1).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        // The request is complete only now; the reply follows the EOF.
        netloom::rt::sleep(Duration::from_millis(20)).await;
        request.reverse();
        stream.write_all(&request).await.unwrap();
    });
    let mut stream = connect(addr);
    let data = pattern(9, 100_000);
    stream.write_all(&data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    let mut expected = data;
    expected.reverse();
    assert!(got == expected, "the reply after EOF arrives whole");
    rt.shutdown();
}

/// Replies through its own handle (as a task or worker would), then closes
/// at once from the callback.
struct HandleReplyThenClose;

impl Handler for HandleReplyThenClose {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let request = conn.next(usize::MAX).to_vec();
        conn.handle().async_write(request).unwrap();
        Action::Close
    }
}

#[test]
fn a_close_waits_for_handle_writes_still_in_the_inbox() {
    let (engine, addr) = start(HandleReplyThenClose, Options::default().loops(1));
    for i in 0..50 {
        let mut stream = connect(addr);
        let data = pattern(i, 1000);
        stream.write_all(&data).unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        assert!(got == data, "the reply written before the close arrives");
    }
    stop(engine);
}
