//! loadgen: a verifying, pipelining load generator for echo, HTTP/1.1 and
//! RESP servers, plus an idle-connection memory probe.
//!
//! Plain std threads, each with its own mio poll (edge-triggered epoll) over a
//! share of the connections; no async runtime. Each connection keeps
//! `--pipeline` requests in flight; everything issuable is written with one
//! `write`. Every reply is checked (see `proto.rs`); a wrong one counts as an
//! error and closes that connection, and the exit status is then 1.
//!
//! Latency is per request, from the moment it was issued to the moment the
//! read that completed it returned. Requests completing in the measured
//! window (after `--warmup`) are counted. With `--server-pid` the server's
//! user/system CPU time over that window (`/proc/PID/stat`) is reported, and
//! the busy time of the server's and the client's cores (`/proc/stat`).
//! With `--count-syscalls perf` (or `strace`) also the server's system calls
//! over that window, and per message (see `netloom_bench::syscalls`).
//!
//! `--mode idle --steps 1000,9000` instead opens that many connections (each
//! echoes one byte so the server has really set it up), then reads the
//! server's resident memory at each step.
//!
//! Output: one JSON line on stdout, a summary on stderr.

mod proto;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use netloom_bench::flags::Flags;
use netloom_bench::hist::Histogram;
use netloom_bench::procfs;
use netloom_bench::syscalls;
use proto::{Mode, Proto, Stream};
use serde_json::{json, Value};

const USAGE: &str = "--addr HOST:PORT [--mode echo|http|resp-get|resp-set|idle] \
[--conns 100] [--size 64] [--pipeline 1] [--duration 5] [--warmup 1] [--threads 1] \
[--keys 10000] [--path /plaintext] [--body 'Hello, World!'] [--steps 1000,9000] \
[--server-pid PID] [--server-cpu 0] [--client-cpu 1] [--count-syscalls off|perf|strace] \
[--label NAME]";

struct Config {
    addr: SocketAddr,
    conns: usize,
    pipeline: usize,
    duration: Duration,
    warmup: Duration,
    threads: usize,
    server_pid: Option<u32>,
    server_cpu: usize,
    client_cpu: usize,
    /// Count the server's system calls over the window with this tool.
    count_syscalls: Option<syscalls::Tool>,
}

fn main() {
    let flags = Flags::parse("loadgen", USAGE);
    let addr = flags.text("addr", "");
    let addr: SocketAddr = addr
        .parse()
        .unwrap_or_else(|_| fail("--addr takes HOST:PORT"));
    let server_pid = match flags.get("server-pid", 0u32) {
        0 => None,
        pid => Some(pid),
    };
    netloom_bench::raise_fd_limit();
    let mode = flags.text("mode", "echo");
    let label = flags.text("label", &mode);
    let mut result = if mode == "idle" {
        let steps: Vec<usize> = flags
            .text("steps", "1000,9000")
            .split(',')
            .map(|s| s.parse().unwrap_or_else(|_| fail("--steps takes N,N,...")))
            .collect();
        let pid = server_pid.unwrap_or_else(|| fail("--mode idle needs --server-pid"));
        idle(addr, pid, &steps).unwrap_or_else(|e| fail(&format!("idle: {e}")))
    } else {
        let mode = match mode.as_str() {
            "echo" => Mode::Echo,
            "http" => Mode::Http,
            "resp-get" => Mode::RespGet,
            "resp-set" => Mode::RespSet,
            _ => fail("unknown --mode"),
        };
        let proto = Proto::new(
            mode,
            flags.get("size", 64),
            flags.get("keys", 10_000u32).clamp(1, 999_999),
            &flags.text("path", "/plaintext"),
            &flags.text("body", "Hello, World!"),
        );
        let conns: usize = flags.get("conns", 100);
        let config = Config {
            addr,
            conns,
            pipeline: flags.get("pipeline", 1usize).max(1),
            duration: Duration::from_secs_f64(flags.get("duration", 5.0)),
            warmup: Duration::from_secs_f64(flags.get("warmup", 1.0)),
            threads: flags.get("threads", 1usize).clamp(1, conns.max(1)),
            server_pid,
            server_cpu: flags.get("server-cpu", 0),
            client_cpu: flags.get("client-cpu", 1),
            count_syscalls: match flags.text("count-syscalls", "off").as_str() {
                "off" => None,
                "perf" => Some(syscalls::Tool::Perf),
                "strace" => Some(syscalls::Tool::Strace),
                _ => fail("--count-syscalls takes off, perf or strace"),
            },
        };
        if config.count_syscalls.is_some() && server_pid.is_none() {
            fail("--count-syscalls needs --server-pid");
        }
        if proto.size == 0 || conns == 0 {
            fail("--size and --conns must be positive");
        }
        load(&config, &proto).unwrap_or_else(|e| fail(&format!("{e}")))
    };
    result["label"] = json!(label);
    let errors = result["errors"].as_u64().unwrap_or(0);
    eprintln!("{label}: {}", summary(&result));
    println!("{result}");
    std::process::exit(if errors > 0 { 1 } else { 0 });
}

fn fail(msg: &str) -> ! {
    eprintln!("loadgen: {msg}\nusage: loadgen {USAGE}");
    std::process::exit(2)
}

fn summary(r: &Value) -> String {
    if r["mode"] == "idle" {
        return format!(
            "{} B/conn slope, steps {}",
            r["slope_bytes_per_conn"], r["steps"]
        );
    }
    format!(
        "{:.0} msgs/s, p99 {:.0} us, server user {:.2}s sys {:.2}s, server core {:.0}%, client core {:.0}%, errors {}",
        r["rate"].as_f64().unwrap_or(0.0),
        r["p99_us"].as_f64().unwrap_or(0.0),
        r["server_user_s"].as_f64().unwrap_or(0.0),
        r["server_sys_s"].as_f64().unwrap_or(0.0),
        r["server_core_busy_pct"].as_f64().unwrap_or(0.0),
        r["client_core_busy_pct"].as_f64().unwrap_or(0.0),
        r["errors"]
    ) + &syscalls::summary(r)
}

/// What one worker thread measured.
#[derive(Default)]
struct Tally {
    hist: Histogram,
    msgs: u64,
    errors: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_errors.len() < 5 {
            self.first_errors.push(e);
        }
    }
}

/// CPU counters read at the start and the end of the measured window.
struct Snapshot {
    server: Option<(f64, f64)>,
    server_core: procfs::CoreTicks,
    client_core: procfs::CoreTicks,
    client: (f64, f64),
}

fn snapshot(config: &Config) -> Snapshot {
    Snapshot {
        server: config.server_pid.and_then(|p| procfs::process_cpu(p).ok()),
        server_core: procfs::core_ticks(config.server_cpu).unwrap_or_default(),
        client_core: procfs::core_ticks(config.client_cpu).unwrap_or_default(),
        client: procfs::process_cpu(std::process::id()).unwrap_or_default(),
    }
}

fn load(config: &Config, proto: &Proto) -> io::Result<Value> {
    if matches!(proto.mode, Mode::RespGet | Mode::RespSet) {
        preload(config.addr, proto.keys)?;
    }
    // Connect one by one so that no listen backlog overflows (a dropped SYN
    // costs a 1 s retransmission and skews the start).
    let mut shares: Vec<Vec<(usize, TcpStream)>> =
        (0..config.threads).map(|_| Vec::new()).collect();
    for id in 0..config.conns {
        let s = StdStream::connect(config.addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        shares[id % config.threads].push((id, TcpStream::from_std(s)));
    }
    // perf attaches now, with its counter off, so that attaching costs the
    // window nothing.
    let mut counter = match (config.count_syscalls, config.server_pid) {
        (Some(tool), Some(pid)) => Some(syscalls::Counter::prepare(pid, tool)?),
        _ => None,
    };
    let begin = Instant::now();
    let start = begin + config.warmup;
    let end = start + config.duration;
    let tallies = thread::scope(|scope| {
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    worker(share, proto, config.pipeline, start, end).unwrap_or_else(|e| {
                        let mut t = Tally::default();
                        t.error(format!("poll: {e}"));
                        t
                    })
                })
            })
            .collect();
        thread::sleep(start.saturating_duration_since(Instant::now()));
        let counting = counter.as_mut().map(|c| c.start());
        let before = snapshot(config);
        thread::sleep(end.saturating_duration_since(Instant::now()));
        let after = snapshot(config);
        let count = match (counter.as_mut(), counting) {
            (Some(c), Some(Ok(()))) => Some(c.stop()),
            (_, Some(Err(e))) => Some(Err(e)),
            _ => None,
        };
        let tallies: Vec<Tally> = workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect();
        (tallies, before, after, count)
    });
    let (tallies, before, after, count) = tallies;
    let mut total = Tally::default();
    for t in tallies {
        total.hist.merge(&t.hist);
        total.msgs += t.msgs;
        total.errors += t.errors;
        total.first_errors.extend(t.first_errors);
    }
    let secs = config.duration.as_secs_f64();
    let us = |q: f64| total.hist.quantile(q) as f64 / 1000.0;
    let per_op = |seconds: f64| {
        if total.msgs > 0 {
            seconds * 1e6 / total.msgs as f64
        } else {
            0.0
        }
    };
    let (server_busy_pct, server_steal, server_busy_s) =
        after.server_core.since(before.server_core);
    let (client_busy_pct, client_steal, _) = after.client_core.since(before.client_core);
    let mut out = json!({
        "mode": format!("{:?}", proto.mode).to_lowercase(),
        "conns": config.conns,
        "size": proto.size,
        "pipeline": config.pipeline,
        "threads": config.threads,
        "duration_s": secs,
        "warmup_s": config.warmup.as_secs_f64(),
        "msgs": total.msgs,
        "rate": total.msgs as f64 / secs,
        "p50_us": us(0.50),
        "p90_us": us(0.90),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
        "max_us": total.hist.max() as f64 / 1000.0,
        "errors": total.errors,
        "error_samples": total.first_errors,
        "server_core_busy_pct": server_busy_pct,
        "server_core_us_per_op": per_op(server_busy_s),
        "client_core_busy_pct": client_busy_pct,
        "client_user_s": after.client.0 - before.client.0,
        "client_sys_s": after.client.1 - before.client.1,
        "steal_pct": server_steal.max(client_steal),
    });
    if proto.mode == Mode::Echo {
        out["mb_per_s"] = json!(total.msgs as f64 * proto.size as f64 / secs / 1e6);
    }
    if let (Some(b), Some(a)) = (before.server, after.server) {
        let (user, sys) = (a.0 - b.0, a.1 - b.1);
        out["server_user_s"] = json!(user);
        out["server_sys_s"] = json!(sys);
        out["server_cpu_us_per_op"] = json!(per_op(user + sys));
    }
    match count {
        Some(Ok(count)) => {
            out["server_syscalls"] = json!(count.calls);
            out["server_syscalls_per_op"] = json!(if total.msgs > 0 {
                count.calls as f64 / total.msgs as f64
            } else {
                f64::NAN
            });
            out["syscall_counter"] = json!(count.tool.name());
            if let Some(note) = count.note {
                out["syscall_counter_note"] = json!(note);
            }
        }
        // The load figures stand; the suite notes the missing count.
        Some(Err(e)) => out["syscall_count_error"] = json!(e.to_string()),
        None => {}
    }
    Ok(out)
}

/// Sets every key the RESP modes use, so that each GET has a known answer.
fn preload(addr: SocketAddr, keys: u32) -> io::Result<()> {
    let mut s = StdStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut batch = Vec::new();
    let mut reply = Vec::new();
    for first in (0..keys).step_by(1000) {
        let last = (first + 1000).min(keys);
        batch.clear();
        for key in first..last {
            proto::push_set(&mut batch, key);
        }
        s.write_all(&batch)?;
        reply.resize(5 * (last - first) as usize, 0);
        s.read_exact(&mut reply)?;
        if reply.chunks(5).any(|r| r != b"+OK\r\n") {
            return Err(io::Error::other(format!(
                "preload: SET answered {:?}",
                String::from_utf8_lossy(&reply[..reply.len().min(60)])
            )));
        }
    }
    Ok(())
}

/// Drives a share of the connections until `end`; counts what completes in
/// `[start, end)`.
fn worker(
    share: Vec<(usize, TcpStream)>,
    proto: &Proto,
    pipeline: usize,
    start: Instant,
    end: Instant,
) -> io::Result<Tally> {
    struct Conn {
        socket: TcpStream,
        stream: Stream,
        issued_at: std::collections::VecDeque<Instant>,
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut tally = Tally::default();
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(share.len());
    let now = Instant::now();
    for (slot, (id, mut socket)) in share.into_iter().enumerate() {
        poll.registry().register(
            &mut socket,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut conn = Conn {
            socket,
            stream: Stream::new(id, proto),
            issued_at: Default::default(),
        };
        for _ in 0..pipeline {
            conn.stream.issue(proto);
            conn.issued_at.push_back(now);
        }
        conns.push(Some(conn));
    }
    let mut open = conns.len();
    let mut buf = vec![0u8; proto::READ_SIZE];
    // The first round of writes happens on the first WRITABLE edge, which
    // every newly registered connected socket reports.
    while open > 0 {
        let now = Instant::now();
        if now >= end {
            break;
        }
        poll.poll(
            &mut events,
            Some((end - now).min(Duration::from_millis(50))),
        )?;
        for event in events.iter() {
            let slot = event.token().0;
            let Some(conn) = conns[slot].as_mut() else {
                continue;
            };
            let outcome: Result<(), String> = (|| {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    loop {
                        let n = match conn.socket.read(&mut buf) {
                            Ok(0) => return Err("server closed the connection".into()),
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(format!("read: {e}")),
                        };
                        let done = conn.stream.received(&buf[..n], proto)?;
                        let at = Instant::now();
                        for _ in 0..done {
                            let issued = conn.issued_at.pop_front().ok_or("reply to nothing")?;
                            if at >= start && at < end {
                                tally.msgs += 1;
                                tally.hist.record((at - issued).as_nanos() as u64);
                            }
                            conn.stream.issue(proto);
                            conn.issued_at.push_back(at);
                        }
                        // A short read drained the socket: the next bytes
                        // bring a new edge, so skip the read that would
                        // only say EAGAIN.
                        if n < buf.len() {
                            break;
                        }
                    }
                }
                loop {
                    let unsent = conn.stream.unsent(proto);
                    if unsent.is_empty() {
                        break;
                    }
                    match conn.socket.write(unsent) {
                        Ok(n) => conn.stream.wrote(n, proto),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(format!("write: {e}")),
                    }
                }
                Ok(())
            })();
            if let Err(e) = outcome {
                tally.error(e);
                conns[slot] = None;
                open -= 1;
            }
        }
    }
    Ok(tally)
}

/// Opens idle connections in steps and reads the server's memory at each.
fn idle(addr: SocketAddr, pid: u32, steps: &[usize]) -> io::Result<Value> {
    let settle = || thread::sleep(Duration::from_millis(500));
    settle();
    let base_kib = procfs::status_kib(pid, "VmRSS")?;
    let mut open: Vec<StdStream> = Vec::new();
    let mut rows = Vec::new();
    let mut errors = 0u64;
    for &target in steps {
        while open.len() < target {
            let mut s = StdStream::connect(addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            // One byte there and back: the server has accepted the
            // connection and served a read on it.
            let mut byte = [0u8];
            s.write_all(b"x")?;
            s.read_exact(&mut byte)?;
            if byte != *b"x" {
                errors += 1;
            }
            open.push(s);
        }
        settle();
        let rss_kib = procfs::status_kib(pid, "VmRSS")?;
        rows.push(json!({
            "conns": target,
            "rss_kib": rss_kib,
            "bytes_per_conn": (rss_kib as f64 - base_kib as f64) * 1024.0 / target.max(1) as f64,
        }));
    }
    let slope = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) if rows.len() > 1 => {
            let dk = b["rss_kib"].as_f64().unwrap_or(0.0) - a["rss_kib"].as_f64().unwrap_or(0.0);
            let dn = b["conns"].as_f64().unwrap_or(0.0) - a["conns"].as_f64().unwrap_or(0.0);
            dk * 1024.0 / dn
        }
        _ => rows[0]["bytes_per_conn"].as_f64().unwrap_or(0.0),
    };
    let last_kib = rows
        .last()
        .and_then(|r| r["rss_kib"].as_f64())
        .unwrap_or(0.0);
    let last_conns = *steps.last().unwrap_or(&0) as f64;
    Ok(json!({
        "mode": "idle",
        "base_rss_kib": base_kib,
        "steps": rows,
        "slope_bytes_per_conn": slope,
        // The last measured point plus the slope, out to a million.
        "rss_at_1m_bytes": last_kib * 1024.0 + slope * (1e6 - last_conns),
        "peak_rss_kib": procfs::status_kib(pid, "VmHWM")?,
        "errors": errors,
    }))
}
