//! Black-box tests of `examples/loadgen.rs`: run as a separate process
//! against `examples/echo` (every echo must verify), against an in-process
//! server that corrupts a byte now and then (the corruption must be caught
//! and fail the run), and against a port nobody listens on.

mod util;

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use netloom::{Action, Conn, Handler, Options};
use util::{example_binary, ExampleServer};

/// Runs loadgen with `args`, killing it (and failing) after `limit`.
fn run_loadgen(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(example_binary("loadgen"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen starts");
    // Both pipes are drained on threads so a chatty child never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// The JSON object on the last stdout line, as key -> number (every value
/// loadgen prints is a number).
fn summary(output: &Output) -> HashMap<String, f64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default().trim();
    let body = last
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| {
            panic!(
                "last line is not a JSON object: {last:?}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    body.split(',')
        .map(|pair| {
            let (key, value) = pair.split_once(':').expect("key:value");
            let key = key.trim().trim_matches('"').to_string();
            let value = value.trim().parse().expect("numeric value");
            (key, value)
        })
        .collect()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_echo_verifies_against_the_echo_example() {
    let server = ExampleServer::start("echo", &["--addr", "tcp://127.0.0.1:0", "--loops", "1"]);
    let addr = format!("tcp://{}", server.addr);
    // (conns, size, pipeline, loops): tiny messages, messages split across
    // reads, deep pipelines, several client loops.
    let runs = [
        ("20", "64", "1", "1"),
        ("8", "3000", "4", "2"),
        ("4", "200000", "2", "1"),
    ];
    for (conns, size, pipeline, loops) in runs {
        let output = run_loadgen(
            &[
                "--addr",
                &addr,
                "--conns",
                conns,
                "--size",
                size,
                "--pipeline",
                pipeline,
                "--loops",
                loops,
                "--warmup",
                "0.2",
                "--duration",
                "0.8",
            ],
            Duration::from_secs(30),
        );
        let report = summary(&output);
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(report["errors"], 0.0, "{}", describe(&output));
        assert!(report["msgs"] > 0.0, "{}", describe(&output));
        assert!(report["msgs_per_s"] > 0.0 && report["mb_per_s"] > 0.0);
        assert!(report["p50_us"] > 0.0);
        assert!(report["p50_us"] <= report["p99_us"] && report["p99_us"] <= report["p999_us"]);
        assert_eq!(report["conns"], conns.parse::<f64>().unwrap());
        assert_eq!(report["size"], size.parse::<f64>().unwrap());
        assert_eq!(report["pipeline"], pipeline.parse::<f64>().unwrap());
        assert!(report["duration"] > 0.5, "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("msgs/s"), "no progress line: {stderr}");
    }
    assert!(server.terminate().success());
}

/// Echoes like the echo example, but flips one bit of every `EVERY`th byte
/// it sends back.
struct Corrupting;

#[derive(Default)]
struct Echoed(u64);

impl Corrupting {
    const EVERY: u64 = 10_007;
}

impl Handler for Corrupting {
    type Context = Echoed;

    fn on_traffic(&self, conn: &mut Conn<'_, Echoed>) -> Action {
        let mut data = conn.next(usize::MAX).to_vec();
        let echoed = &mut conn.context_mut().0;
        for byte in &mut data {
            *echoed += 1;
            if *echoed % Self::EVERY == 0 {
                *byte ^= 0x10;
            }
        }
        match conn.write(&data) {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }
}

#[test]
fn corrupted_echoes_are_counted_and_fail_the_run() {
    let (engine, addr) = util::start(Corrupting, Options::default().loops(1));
    let output = run_loadgen(
        &[
            "--addr",
            &format!("tcp://{addr}"),
            "--conns",
            "10",
            "--size",
            "256",
            "--pipeline",
            "4",
            "--duration",
            "1",
        ],
        Duration::from_secs(30),
    );
    let report = summary(&output);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(report["errors"] > 0.0, "{}", describe(&output));
    assert_eq!(report["errors"], report["corrupted_echoes"]);
    assert_eq!(report["failed_conns"], 0.0, "{}", describe(&output));
    // One flipped byte per 10,007 spoils one message of 256 bytes: roughly
    // one in 39 messages, never all of them.
    assert!(report["msgs"] > report["errors"], "{}", describe(&output));
    util::stop(engine);
}

#[test]
fn connections_nobody_accepts_fail_the_run_at_once() {
    // A port that was just free: connects are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = run_loadgen(
        &[
            "--addr",
            &format!("tcp://127.0.0.1:{port}"),
            "--conns",
            "5",
            "--duration",
            "60",
        ],
        Duration::from_secs(20),
    );
    let report = summary(&output);
    assert!(!output.status.success(), "{}", describe(&output));
    assert_eq!(report["failed_conns"], 5.0, "{}", describe(&output));
    assert_eq!(report["errors"], 5.0);
    // It stopped when the last connection was gone, not after --duration
    // (run_loadgen's limit).
    assert_eq!(report["msgs"], 0.0);
}
