//! The example servers over TLS (`--tls-self-signed`, `--tls-cert`/`--tls-key`)
//! driven by unmodified real clients: `openssl s_client` (echo, session
//! resumption), `curl --cacert` (HTTP/1.1 keep-alive and ALPN), `wrk` and
//! `h2load --h1` over https, `redis-cli --tls` and `redis-benchmark --tls
//! -P 16`. `.ci/install-tools` installs them. Run with
//! `cargo test --features tls --test example_tls`.
#![cfg(feature = "tls")]

mod util;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use util::ExampleServer;

/// The PEM path of an example's self-signed certificate; its directory is
/// removed when dropped.
struct SelfSigned(PathBuf);

impl std::ops::Deref for SelfSigned {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts example `name` with TLS and a self-signed certificate; returns
/// the server and that certificate's PEM path.
fn start_tls(name: &str, args: &[&str]) -> (ExampleServer, SelfSigned) {
    let mut command = Command::new(util::example_binary_with(name, &["tls"]));
    command
        .args(args)
        .arg("--tls-self-signed")
        .stderr(Stdio::null());
    let server = ExampleServer::spawn(command);
    let pem = std::env::temp_dir()
        .join(format!("netloom-{name}-{}", server.child.id()))
        .join("cert.pem");
    assert!(pem.is_file(), "the example wrote {}", pem.display());
    (server, SelfSigned(pem))
}

/// Runs `command` with `input` on its stdin until its output (stdout and
/// stderr) contains `expect`, then closes stdin and waits at most 10 s for
/// it to exit. Returns the whole output.
fn converse(mut command: Command, input: &[u8], expect: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the client starts");
    let (tx, rx) = mpsc::channel();
    for mut stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let mut output = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&output).contains(expect) && Instant::now() < deadline {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(50)) {
            output.extend_from_slice(&bytes);
        }
    }
    drop(stdin);
    let exit_by = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < exit_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(bytes) = rx.recv_timeout(Duration::from_millis(200)) {
        output.extend_from_slice(&bytes);
    }
    String::from_utf8_lossy(&output).into_owned()
}

fn s_client(port: u16, pem: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(pem)
        .args(extra);
    command
}

#[test]
fn openssl_s_client_verifies_echoes_and_resumes_its_session() {
    if !util::require_tool("openssl") {
        return;
    }
    let (server, pem) = start_tls("echo", &["--addr", "tcp://127.0.0.1:0", "--loops", "2"]);
    let port = server.addr.port();
    let session = pem.with_file_name("session.pem");
    let session = session.to_str().unwrap();
    let first = converse(
        s_client(port, pem.as_path(), &["-sess_out", session]),
        b"hello over tls\n",
        "hello over tls\n",
    );
    assert!(first.contains("Verify return code: 0 (ok)"), "{first}");
    assert!(first.contains("New, TLSv1.3"), "{first}");
    let echoed = first.matches("hello over tls").count();
    assert_eq!(echoed, 1, "exactly one echo line: {first}");

    let second = converse(
        s_client(port, pem.as_path(), &["-sess_in", session]),
        b"resumed\n",
        "resumed\n",
    );
    assert!(second.contains("Reused, TLSv1.3"), "{second}");
    assert!(second.contains("\nresumed\n"), "{second}");
    assert!(server.terminate().success());
}

#[test]
fn curl_keeps_one_tls_connection_alive_and_negotiates_alpn() {
    curl_keeps_one_tls_connection_alive("http");
}

/// The async HTTP example: the same exchange over `rt`'s TLS streams.
#[test]
fn curl_keeps_one_tls_connection_alive_with_the_async_server() {
    curl_keeps_one_tls_connection_alive("http_async");
}

fn curl_keeps_one_tls_connection_alive(example: &str) {
    if !util::require_tool("curl") {
        return;
    }
    let (server, pem) = start_tls(example, &["--addr", "tcp://127.0.0.1:0", "--loops", "2"]);
    let base = format!("https://localhost:{}", server.addr.port());
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "10", "--cacert"])
        .arg(&*pem)
        .args(["-w", "[connects=%{num_connects} http=%{http_version}]\n"])
        .arg(format!("{base}/plaintext"))
        .arg(format!("{base}/json"))
        .arg(format!("{base}/plaintext"))
        .output()
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "Hello, World![connects=1 http=1.1]\n\
         {\"message\":\"Hello, World!\"}[connects=0 http=1.1]\n\
         Hello, World![connects=0 http=1.1]\n",
        "three answers over one connection"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("ALPN") && l.contains("accepted") && l.contains("http/1.1")),
        "{stderr}"
    );
    assert!(server.terminate().success());
}

/// `wrk` over https: 2 s, 32 connections, no error of any kind.
#[test]
fn wrk_over_https_sees_no_errors() {
    if !util::require_tool("wrk") {
        return;
    }
    let (server, _) = start_tls("http", &["--addr", "tcp://127.0.0.1:0", "--loops", "2"]);
    let url = format!("https://127.0.0.1:{}/plaintext", server.addr.port());
    let out = Command::new("timeout")
        .args(["30", "wrk", "-t2", "-c32", "-d2s", &url])
        .output()
        .expect("wrk runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(util::clean_wrk_requests(&out) > 100, "{report}");
    assert!(server.terminate().success());
}

#[test]
fn h2load_h1_over_https_gets_every_response() {
    if !util::require_tool("h2load") {
        return;
    }
    let (server, _) = start_tls("http", &["--addr", "tcp://127.0.0.1:0", "--loops", "2"]);
    let url = format!("https://127.0.0.1:{}/plaintext", server.addr.port());
    let out = Command::new("timeout")
        .args([
            "30", "h2load", "--h1", "-n", "4000", "-c", "16", "-m", "4", &url,
        ])
        .output()
        .expect("h2load runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("4000 total, 4000 started, 4000 done, 4000 succeeded, 0 failed, 0 errored"),
        "{report}"
    );
    assert!(report.contains("status codes: 4000 2xx"), "{report}");
    assert!(server.terminate().success());
}

#[test]
fn redis_cli_and_redis_benchmark_speak_tls_without_errors() {
    if !util::require_tool("redis-cli") || !util::require_tool("redis-benchmark") {
        return;
    }
    let (server, pem) = start_tls("redis", &["--addr", "tcp://127.0.0.1:0", "--loops", "2"]);
    let port = server.addr.port().to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("timeout")
            .args(["10", "redis-cli", "--tls", "--cacert"])
            .arg(&*pem)
            .args(["-h", "localhost", "-p", &port])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["SET", "greeting", "over tls"]), "OK");
    assert_eq!(cli(&["GET", "greeting"]), "over tls");

    let out = Command::new("timeout")
        .args(["60", "redis-benchmark", "--tls", "--cacert"])
        .arg(&*pem)
        .args(["-h", "localhost", "-p", &port])
        .args([
            "-P",
            "16",
            "-n",
            "20000",
            "-c",
            "8",
            "-t",
            "ping,set,get,incr,lpush",
        ])
        .arg("--csv")
        .output()
        .expect("redis-benchmark runs");
    let csv = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{csv}\n{stderr}");
    assert!(
        !csv.contains("ERR") && !stderr.contains("rror"),
        "{csv}\n{stderr}"
    );
    let tests = csv.lines().skip(1).count();
    assert_eq!(tests, 6, "every test ran (PING twice): {csv}");
    // Every SET landed: INCR counted 20,000 times on one key.
    assert_eq!(cli(&["GET", "counter:__rand_int__"]), "20000");
    assert!(server.terminate().success());
}

/// The TLS client side: `loadgen --tls-ca` against the TLS echo example,
/// every echoed byte checked.
#[test]
fn loadgen_over_tls_verifies_every_echoed_byte() {
    loadgen_over_tls("echo");
}

/// The same against the async echo example (`rt`'s TLS streams).
#[test]
fn loadgen_over_tls_verifies_every_byte_the_async_echo_returns() {
    loadgen_over_tls("echo_async");
}

fn loadgen_over_tls(example: &str) {
    let (server, pem) = start_tls(example, &["--addr", "tcp://127.0.0.1:0", "--loops", "2"]);
    let addr = format!("tcp://{}", server.addr);
    let out = Command::new("timeout")
        .arg("60")
        .arg(util::example_binary_with("loadgen", &["tls"]))
        .args(["--addr", &addr, "--tls-ca"])
        .arg(&*pem)
        .args(["--conns", "16", "--size", "4096", "--pipeline", "4"])
        .args(["--duration", "1", "--loops", "1"])
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains("\"errors\":0,"), "{summary}");
    assert!(!summary.contains("\"msgs\":0,"), "{summary}");
    assert!(server.terminate().success());
}
