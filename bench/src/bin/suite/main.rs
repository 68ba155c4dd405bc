//! suite: runs every (scenario, server) pair of the benchmark, several times,
//! and writes the results table and chart. Started by `bench/run.sh`, which
//! builds the binaries first; every setting is an environment variable (see
//! the header of run.sh).
//!
//! `suite report FILE.jsonl` rebuilds the table and chart from a raw file.

mod chart;
mod report;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use netloom_bench::procfs;
use serde_json::{json, Value};

/// Which server binary a scenario needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    /// The echo servers, holding idle connections (the floor has no part).
    Idle,
    Http,
    Resp,
}

struct Scenario {
    name: &'static str,
    kind: Kind,
    /// loadgen flags (besides address, duration and server pid).
    args: Vec<String>,
}

fn scenarios(idle_steps: &str) -> Vec<Scenario> {
    let load = |name, kind, args: &str| Scenario {
        name,
        kind,
        args: args.split_whitespace().map(String::from).collect(),
    };
    vec![
        load(
            "echo-64B-100c",
            Kind::Echo,
            "--mode echo --size 64 --conns 100",
        ),
        load(
            "echo-4KiB-100c",
            Kind::Echo,
            "--mode echo --size 4096 --conns 100",
        ),
        load(
            "echo-64B-1000c",
            Kind::Echo,
            "--mode echo --size 64 --conns 1000",
        ),
        load(
            "echo-4KiB-1000c",
            Kind::Echo,
            "--mode echo --size 4096 --conns 1000",
        ),
        load(
            "http-p16-256c",
            Kind::Http,
            "--mode http --pipeline 16 --conns 256",
        ),
        load(
            "resp-get-p16-50c",
            Kind::Resp,
            "--mode resp-get --pipeline 16 --conns 50",
        ),
        load(
            "resp-set-p16-50c",
            Kind::Resp,
            "--mode resp-set --pipeline 16 --conns 50",
        ),
        Scenario {
            name: "idle-conns",
            kind: Kind::Idle,
            args: vec![
                "--mode".into(),
                "idle".into(),
                "--steps".into(),
                idle_steps.into(),
            ],
        },
    ]
}

/// The servers compared when SERVERS is not set.
const DEFAULT_SERVERS: &str = "netloom netloom-uring netloom-async tokio go floor";

/// The settings, from the environment.
struct Settings {
    duration: f64,
    warmup: f64,
    runs: usize,
    servers: Vec<String>,
    scenarios: Vec<Scenario>,
    server_cpu: usize,
    client_cpu: usize,
    tokio_threads: usize,
    loadgen_threads: usize,
    /// Count each server's system calls over the window with this tool
    /// (`perf`, `strace`), or not (`off`).
    syscalls: String,
    bin: PathBuf,
    go_bin: Option<PathBuf>,
    out: PathBuf,
    report_name: String,
    command: String,
    readme: Option<PathBuf>,
    /// The examples present in the checkout (from run.sh); `None`: any built.
    netloom_examples: Option<Vec<String>>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn env_num<T: std::str::FromStr>(name: &str, default: &str) -> T {
    env_or(name, default).trim().parse().unwrap_or_else(|_| {
        eprintln!("suite: {name} must be a number");
        std::process::exit(2)
    })
}

fn settings() -> Settings {
    let quick = env_or("QUICK", "0") != "0";
    let (duration, warmup, runs, steps) = if quick {
        ("1", "0.5", "1", "200,1000")
    } else {
        ("5", "1", "3", "1000,9000")
    };
    let all = scenarios(&env_or("IDLE_STEPS", steps));
    let wanted = env_or("SCENARIOS", "all");
    let chosen: Vec<Scenario> = if wanted == "all" {
        all
    } else {
        let names: Vec<&str> = wanted.split_whitespace().collect();
        for n in &names {
            if !all
                .iter()
                .any(|s| s.name == *n || s.name.starts_with(&format!("{n}-")))
            {
                eprintln!(
                    "suite: unknown scenario {n}; known: {}",
                    all.iter().map(|s| s.name).collect::<Vec<_>>().join(" ")
                );
                std::process::exit(2);
            }
        }
        // A prefix such as `echo` or `resp` selects a family.
        all.into_iter()
            .filter(|s| {
                names
                    .iter()
                    .any(|n| s.name == *n || s.name.starts_with(&format!("{n}-")))
            })
            .collect()
    };
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.parent().expect("bin dir").to_path_buf();
    let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    Settings {
        duration: env_num("DURATION", duration),
        warmup: env_num("WARMUP", warmup),
        runs: env_num::<usize>("RUNS", runs).max(1),
        servers: env_or("SERVERS", DEFAULT_SERVERS)
            .split_whitespace()
            .map(String::from)
            .collect(),
        scenarios: chosen,
        server_cpu: env_num("SERVER_CPU", "0"),
        client_cpu: env_num("CLIENT_CPU", "1"),
        tokio_threads: env_num("TOKIO_THREADS", "0"),
        loadgen_threads: env_num("LOADGEN_THREADS", "1"),
        syscalls: match env_or("SYSCALLS", "0").as_str() {
            "0" | "off" => "off".into(),
            "1" | "perf" => "perf".into(),
            "strace" => "strace".into(),
            other => {
                eprintln!("suite: SYSCALLS must be 0, 1 (perf) or strace, not {other}");
                std::process::exit(2)
            }
        },
        bin,
        go_bin: std::env::var_os("GO_BIN")
            .map(PathBuf::from)
            .filter(|p| p.is_dir()),
        out: PathBuf::from(env_or("OUT", &bench_dir.join("results").to_string_lossy())),
        report_name: env_or("REPORT_NAME", if quick { "quick" } else { "latest" }),
        command: env_or("BENCH_COMMAND", "bench/run.sh"),
        netloom_examples: std::env::var("NETLOOM_EXAMPLES")
            .ok()
            .map(|v| v.split_whitespace().map(String::from).collect()),
        readme: std::env::var_os("BENCH_README")
            .map(PathBuf::from)
            .filter(|p| p.is_file()),
    }
}

/// How long both netloom HTTP servers keep a connection that completes no
/// request: the callback example's default, passed to both so that they arm
/// the same timers.
const HTTP_IDLE_TIMEOUT_S: u64 = 10;

/// The command line of `server` for `kind` on `port`, or why there is none.
fn server_command(
    s: &Settings,
    server: &str,
    kind: Kind,
    port: u16,
) -> Result<Vec<String>, String> {
    let (netloom, netloom_async, tokio, go) = match kind {
        Kind::Echo | Kind::Idle => ("echo", Some("echo_async"), "tokio-echo", "go-echo"),
        Kind::Http => ("http", Some("http_async"), "tokio-http", "go-http"),
        Kind::Resp => ("redis", None, "tokio-resp", "go-resp"),
    };
    let path = |p: PathBuf| -> Result<String, String> {
        if p.is_file() {
            Ok(p.to_string_lossy().into_owned())
        } else {
            Err(format!("{} is not built", p.display()))
        }
    };
    let addr = format!("127.0.0.1:{port}");
    // netloom's servers are its examples, on one loop.
    let example = |name: &str, extra: &[String]| -> Result<Vec<String>, String> {
        let binary = s
            .netloom_examples
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == name))
            .then(|| path(s.bin.join("examples").join(name)).ok())
            .flatten()
            .ok_or_else(|| format!("netloom's example `{name}` is not in this checkout yet"))?;
        let mut command = vec![
            binary,
            "--addr".into(),
            format!("tcp://{addr}"),
            "--loops".into(),
            "1".into(),
        ];
        command.extend_from_slice(extra);
        Ok(command)
    };
    // The same idle timeout for both HTTP servers, each in its own flag.
    let (callback_flags, async_flags) = if kind == Kind::Http {
        (
            vec!["--idle-timeout".into(), HTTP_IDLE_TIMEOUT_S.to_string()],
            vec![
                "--idle-timeout-ms".into(),
                (HTTP_IDLE_TIMEOUT_S * 1000).to_string(),
            ],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(match server {
        "netloom" => example(netloom, &callback_flags)?,
        // The same callback server on the io_uring backend (its flag wins
        // over the NETLOOM_BACKEND=epoll that run.sh sets).
        "netloom-uring" => {
            let flags: Vec<String> = callback_flags
                .iter()
                .cloned()
                .chain(["--backend".into(), "io-uring".into()])
                .collect();
            example(netloom, &flags)?
        }
        "netloom-async" => example(
            netloom_async.ok_or("the async front-end has no RESP server")?,
            &async_flags,
        )?,
        "tokio" => vec![
            path(s.bin.join(tokio))?,
            "--addr".into(),
            addr,
            "--threads".into(),
            s.tokio_threads.to_string(),
        ],
        // The epoll floor: echo under load only.
        "floor" => match kind {
            Kind::Echo => vec![path(s.bin.join("floor-echo"))?, "--addr".into(), addr],
            Kind::Idle => return Err("the floor is measured under load only".into()),
            Kind::Http | Kind::Resp => return Err("the floor is an echo server".into()),
        },
        "go" => {
            let dir = s
                .go_bin
                .as_ref()
                .ok_or("no Go toolchain (install golang-go to add the Go peers)")?;
            vec![
                "env".into(),
                "GOMAXPROCS=1".into(),
                path(dir.join(go))?,
                "-addr".into(),
                addr,
            ]
        }
        other => return Err(format!("unknown server {other}")),
    })
}

/// A port nothing listens on right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server process; dropping it stops it.
struct Running {
    child: Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    /// SIGTERM (netloom's examples stop gracefully on it), then SIGKILL if
    /// it has not exited within 5 s.
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: signals our own child by its PID; it has not been reaped
        // yet (we still own the `Child`), so the PID cannot be reused.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` pinned to the server core (taskset execs it, so the PID
/// is the server's) and waits until it accepts connections on `port`.
fn start_server(
    s: &Settings,
    command: &[String],
    port: u16,
    log: &Path,
) -> Result<Running, String> {
    let out = File::create(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new("taskset")
        .arg("-c")
        .arg(s.server_cpu.to_string())
        .args(command)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("taskset: {e}"))?;
    let mut server = Running { child };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("exited at start ({status}); see {}", log.display()));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        if Instant::now() > deadline {
            return Err(format!("not listening after 10 s; see {}", log.display()));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// How busy the busier of the two benchmark cores is over 300 ms, in %:
/// anything but the benchmark running there skews its numbers.
fn other_load(s: &Settings) -> f64 {
    let read = || {
        (
            procfs::core_ticks(s.server_cpu).unwrap_or_default(),
            procfs::core_ticks(s.client_cpu).unwrap_or_default(),
        )
    };
    let (a0, b0) = read();
    thread::sleep(Duration::from_millis(300));
    let (a1, b1) = read();
    a1.since(a0).0.max(b1.since(b0).0)
}

/// One (scenario, server, run): a fresh server, one loadgen run, a record.
fn measure(
    s: &Settings,
    sc: &Scenario,
    server: &str,
    run: usize,
    logs: &Path,
) -> Result<Value, String> {
    let pre_busy = other_load(s);
    if pre_busy > 10.0 {
        eprintln!(
            "suite: WARNING: a benchmark core was {pre_busy:.0}% busy just before this run: the machine is not quiet"
        );
    }
    let port = free_port().map_err(|e| e.to_string())?;
    let command = server_command(s, server, sc.kind, port)?;
    let stem = format!("{}-{server}-{run}", sc.name);
    let running = start_server(s, &command, port, &logs.join(format!("{stem}.server.log")))?;
    let pid = running.pid();
    let mut client = vec![
        "-c".to_string(),
        s.client_cpu.to_string(),
        s.bin.join("loadgen").to_string_lossy().into_owned(),
        "--addr".into(),
        format!("127.0.0.1:{port}"),
        "--server-pid".into(),
        pid.to_string(),
        "--server-cpu".into(),
        s.server_cpu.to_string(),
        "--client-cpu".into(),
        s.client_cpu.to_string(),
        "--label".into(),
        format!("{server}/{}/{run}", sc.name),
    ];
    client.extend(sc.args.iter().cloned());
    if sc.kind != Kind::Idle {
        client.extend([
            "--count-syscalls".into(),
            s.syscalls.clone(),
            "--duration".into(),
            s.duration.to_string(),
            "--warmup".into(),
            s.warmup.to_string(),
            "--threads".into(),
            s.loadgen_threads.to_string(),
        ]);
    }
    let output = Command::new("taskset")
        .args(&client)
        .stdin(Stdio::null())
        .output();
    let hwm = procfs::status_kib(pid, "VmHWM").ok();
    drop(running);
    let output = output.map_err(|e| format!("loadgen: {e}"))?;
    let _ = fs::write(logs.join(format!("{stem}.loadgen.log")), &output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut record: Value = serde_json::from_str(stdout.trim()).map_err(|_| {
        format!(
            "loadgen gave no result ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )
    })?;
    record["scenario"] = json!(sc.name);
    record["server"] = json!(server);
    record["run"] = json!(run);
    record["server_hwm_kib"] = json!(hwm);
    record["pre_run_busy_pct"] = json!(pre_busy);
    record["server_command"] = json!(command.join(" "));
    record["loadgen_command"] = json!(format!("taskset {}", client.join(" ")));
    Ok(record)
}

fn machine(s: &Settings) -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    json!({
        "record": "machine",
        "nproc": thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": model,
        "kernel": kernel.trim(),
        "mem_gib": mem_kib as f64 / 1024.0 / 1024.0,
        "date": env_or("BENCH_DATE", "unknown date"),
        "rustc": env_or("BENCH_RUSTC", ""),
        "commit": env_or("BENCH_COMMIT", ""),
        "go": env_or("BENCH_GO", ""),
        "command": s.command,
        "duration_s": s.duration,
        "warmup_s": s.warmup,
        "runs": s.runs,
        "server_cpu": s.server_cpu,
        "client_cpu": s.client_cpu,
        "tokio_threads": s.tokio_threads,
        "syscalls": s.syscalls,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("report") {
        let Some(file) = args.get(1) else {
            eprintln!("usage: suite report RESULTS.jsonl [OUT_DIR] [NAME] [README.md]");
            std::process::exit(2)
        };
        let out = args.get(2).map_or_else(
            || {
                Path::new(file)
                    .parent()
                    .unwrap_or(Path::new("."))
                    .to_path_buf()
            },
            PathBuf::from,
        );
        let name = args.get(3).map_or("latest", String::as_str);
        let readme = args.get(4).map(Path::new);
        if let Err(e) = write_report(Path::new(file), &out, name, readme) {
            eprintln!("suite: {e}");
            std::process::exit(1);
        }
        return;
    }
    let s = settings();
    netloom_bench::raise_fd_limit();
    let stamp = env_or("BENCH_STAMP", "run");
    let logs = s.out.join(format!("logs-{stamp}"));
    fs::create_dir_all(&logs).expect("create results dir");
    let raw = s.out.join(format!("runs-{stamp}.jsonl"));
    let mut sink = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&raw)
        .expect("open results file");
    let mut emit = |v: &Value| {
        writeln!(sink, "{v}").expect("write results");
    };
    emit(&machine(&s));
    let pairs = s.scenarios.len() * s.servers.len() * s.runs;
    eprintln!(
        "suite: {} scenarios x {} servers x {} runs, {}s (+{}s warm-up) each; server on cpu {}, load generator on cpu {}",
        s.scenarios.len(),
        s.servers.len(),
        s.runs,
        s.duration,
        s.warmup,
        s.server_cpu,
        s.client_cpu
    );
    let mut skipped = std::collections::BTreeSet::new();
    let mut done = 0;
    let mut failures = 0;
    for sc in &s.scenarios {
        for run in 0..s.runs {
            // Rotate the order each run so that no server always goes first
            // (the machine's speed drifts).
            let n = s.servers.len();
            for i in 0..n {
                let server = &s.servers[(i + run) % n];
                done += 1;
                // A server without a binary for this kind is skipped with a
                // note instead of failing the suite.
                if let Err(why) = server_command(&s, server, sc.kind, 0) {
                    if skipped.insert((server.clone(), why.clone())) {
                        eprintln!("suite: skipping {server} where it has no binary: {why}");
                    }
                    emit(
                        &json!({"record": "skipped", "scenario": sc.name, "server": server, "run": run, "why": why}),
                    );
                    continue;
                }
                match measure(&s, sc, server, run, &logs) {
                    Ok(record) => {
                        eprintln!(
                            "[{done}/{pairs}] {} {server} run {run}: {}",
                            sc.name,
                            brief(&record)
                        );
                        if record["errors"].as_u64().unwrap_or(0) > 0 {
                            failures += 1;
                        }
                        emit(&record);
                    }
                    Err(e) => {
                        failures += 1;
                        eprintln!(
                            "[{done}/{pairs}] {} {server} run {run}: FAILED: {e}",
                            sc.name
                        );
                        emit(
                            &json!({"record": "failed", "scenario": sc.name, "server": server, "run": run, "why": e}),
                        );
                    }
                }
            }
        }
    }
    // Close the raw file before it is copied and read back.
    drop(sink);
    let latest_raw = s.out.join(format!("{}.jsonl", s.report_name));
    fs::copy(&raw, &latest_raw).expect("copy raw results");
    // Only a full run under the default name refreshes the README.
    let readme = s.readme.as_deref().filter(|_| s.report_name == "latest");
    if let Err(e) = write_report(&latest_raw, &s.out, &s.report_name, readme) {
        eprintln!("suite: {e}");
        std::process::exit(1);
    }
    if failures > 0 {
        eprintln!(
            "suite: {failures} runs failed or had errors (see {})",
            raw.display()
        );
        std::process::exit(1);
    }
}

fn brief(r: &Value) -> String {
    if r["mode"] == "idle" {
        return format!(
            "{:.0} B/conn slope, {}",
            r["slope_bytes_per_conn"].as_f64().unwrap_or(0.0),
            r["steps"]
                .as_array()
                .map(|steps| steps
                    .iter()
                    .map(|x| format!("{} conns {} KiB", x["conns"], x["rss_kib"]))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
    }
    format!(
        "{:.0}/s p99 {:.2} ms, server user {:.2}s sys {:.2}s, peak RSS {} KiB, client core {:.0}%, errors {}",
        r["rate"].as_f64().unwrap_or(0.0),
        r["p99_us"].as_f64().unwrap_or(0.0) / 1000.0,
        r["server_user_s"].as_f64().unwrap_or(0.0),
        r["server_sys_s"].as_f64().unwrap_or(0.0),
        r["server_hwm_kib"],
        r["client_core_busy_pct"].as_f64().unwrap_or(0.0),
        r["errors"]
    ) + &netloom_bench::syscalls::summary(r)
}

/// Reads a raw results file and writes `NAME.md` and `NAME.svg` into `out`;
/// with `readme`, also the results section of that README.
fn write_report(raw: &Path, out: &Path, name: &str, readme: Option<&Path>) -> Result<(), String> {
    let text = fs::read_to_string(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    let records: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summary = report::Summary::new(&records);
    let md = out.join(format!("{name}.md"));
    let svg = out.join(format!("{name}.svg"));
    fs::write(&md, summary.markdown(&format!("{name}.svg"), 1))
        .map_err(|e| format!("{}: {e}", md.display()))?;
    chart::draw(&summary, &svg)?;
    eprintln!("suite: wrote {} and {}", md.display(), svg.display());
    if let Some(readme) = readme {
        update_readme(readme, &summary)?;
    }
    Ok(())
}

const README_START: &str = "<!-- bench:start";
const README_END: &str = "<!-- bench:end -->";

/// Replaces the README's section between the bench markers with the new
/// results, so that one command refreshes what the README shows.
fn update_readme(readme: &Path, summary: &report::Summary) -> Result<(), String> {
    let text = fs::read_to_string(readme).map_err(|e| format!("{}: {e}", readme.display()))?;
    let (Some(start), Some(end)) = (text.find(README_START), text.find(README_END)) else {
        eprintln!(
            "suite: {} has no bench markers; not updated",
            readme.display()
        );
        return Ok(());
    };
    let open_end = text[start..].find("-->").map_or(start, |i| start + i + 3);
    if end < open_end {
        return Err(format!("{}: bench markers out of order", readme.display()));
    }
    let section = summary.markdown("bench/results/latest.svg", 3);
    let updated = format!("{}\n{}{}", &text[..open_end], section, &text[end..]);
    fs::write(readme, updated).map_err(|e| format!("{}: {e}", readme.display()))?;
    eprintln!("suite: updated the results section of {}", readme.display());
    Ok(())
}
