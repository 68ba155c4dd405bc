//! The examples' `--metrics-addr`: echo, http and redis serve their engine's
//! counters at `/metrics`; `curl` scrapes them after known traffic, the
//! figures match it, and `promtool check metrics` finds no problem in the
//! text. Bad requests to the endpoint are refused and closed.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{connect, echo_roundtrip, pattern, ExampleServer};

/// An example started with `--metrics-addr` on a free port.
struct WithMetrics {
    /// Killed when dropped.
    server: ExampleServer,
    metrics: SocketAddr,
}

/// Starts example `name` on free ports with two loops; reads the address
/// it serves (its first line) and the metrics address (the next one).
fn start(name: &str) -> WithMetrics {
    let server = ExampleServer::start(
        name,
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--loops",
            "2",
            "--metrics-addr",
            "tcp://127.0.0.1:0",
        ],
    );
    let second = server
        .stdout
        .recv_timeout(Duration::from_secs(30))
        .expect("the example says where it serves metrics");
    let metrics = second
        .split_whitespace()
        .find_map(|w| {
            w.strip_prefix("http://")?
                .strip_suffix("/metrics")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no metrics address in {second:?}"));
    WithMetrics { server, metrics }
}

/// `curl`'s answer to `GET /metrics`.
fn scrape(metrics: SocketAddr) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10"])
        .arg(format!("http://{metrics}/metrics"))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 text")
}

/// `promtool check metrics` on `text`: it must pass and report nothing.
fn promtool_accepts(text: &str) {
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}\n{text}"
    );
}

/// The sum over the loops of the samples of `family` (labels ignored).
fn total(text: &str, family: &str) -> f64 {
    let samples: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(samples.len(), 2, "{family}: one sample per loop in\n{text}");
    samples.iter().sum()
}

/// The status line of the endpoint's answer to `request`, read to the end
/// of the connection (the endpoint closes it).
fn status_of(metrics: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(metrics);
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("answered, then closed");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_string()
}

#[test]
fn echo_counts_the_bytes_it_echoed_and_refuses_bad_requests() {
    if !util::require_tool("curl") || !util::require_tool("promtool") {
        return;
    }
    let echo = start("echo");
    let stream = connect(echo.server.addr);
    echo_roundtrip(&stream, &pattern(7, 5000));
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    (&stream).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    let text = scrape(echo.metrics);
    promtool_accepts(&text);
    assert_eq!(total(&text, "netloom_accepted_connections_total"), 1.0);
    assert_eq!(total(&text, "netloom_closed_connections_total"), 1.0);
    assert_eq!(total(&text, "netloom_open_connections"), 0.0);
    assert_eq!(total(&text, "netloom_read_bytes_total"), 5000.0);
    assert_eq!(total(&text, "netloom_written_bytes_total"), 5000.0);
    assert_eq!(total(&text, "netloom_outbound_queued_bytes"), 0.0);
    assert!(total(&text, "netloom_busy_seconds_total") > 0.0);
    assert!(text.contains("netloom_errors_total{loop=\"0\",kind=\"io\"} 0\n"));

    let m = echo.metrics;
    assert_eq!(
        status_of(m, b"GET /other HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        status_of(m, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(status_of(m, b"garbage\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    let endless = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(16 << 10));
    assert_eq!(
        status_of(m, endless.as_bytes()),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // Still serving after the refusals.
    assert!(status_of(m, b"GET /metrics HTTP/1.1\r\n\r\n").ends_with("200 OK"));
    echo.server.terminate();
}

#[test]
fn http_serves_metrics_beside_its_requests() {
    if !util::require_tool("curl") || !util::require_tool("promtool") {
        return;
    }
    let http = start("http");
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10"])
        .arg(format!("http://{}/plaintext", http.server.addr))
        .output()
        .expect("curl runs");
    assert_eq!(out.stdout, b"Hello, World!");
    let text = scrape(http.metrics);
    promtool_accepts(&text);
    assert_eq!(total(&text, "netloom_accepted_connections_total"), 1.0);
    assert!(total(&text, "netloom_read_bytes_total") > 0.0);
    assert!(total(&text, "netloom_written_bytes_total") > 13.0);
}

#[test]
fn redis_serves_metrics_beside_its_commands() {
    if !util::require_tool("curl") || !util::require_tool("promtool") {
        return;
    }
    let redis = start("redis");
    let mut stream = connect(redis.server.addr);
    stream.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    stream.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    // The reply is counted when the loop settles the connection, which may
    // come a moment after the client has it.
    let mut text = scrape(redis.metrics);
    for _ in 0..50 {
        if total(&text, "netloom_written_bytes_total") == 7.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        text = scrape(redis.metrics);
    }
    promtool_accepts(&text);
    assert_eq!(total(&text, "netloom_accepted_connections_total"), 1.0);
    assert_eq!(total(&text, "netloom_open_connections"), 1.0);
    assert_eq!(total(&text, "netloom_read_bytes_total"), 6.0);
    assert_eq!(total(&text, "netloom_written_bytes_total"), 7.0);
    drop(stream);
}
