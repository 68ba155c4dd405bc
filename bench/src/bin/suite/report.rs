//! Medians and ratios of the raw records, and the markdown table.

use std::fmt::Write;

use serde_json::Value;

/// Medians of one (scenario, server) over its runs.
pub struct Row {
    pub scenario: String,
    pub server: String,
    pub rate: f64,
    pub p99_us: f64,
    pub hwm_kib: f64,
    pub user_pct: f64,
    pub sys_pct: f64,
    pub cpu_us_per_op: f64,
    pub client_core_pct: f64,
    /// The server's system calls per message (NaN: not counted).
    pub syscalls_per_op: f64,
}

/// One server ÷ another, medians of the ratios within each run.
pub struct Ratio {
    pub scenario: String,
    /// The server divided.
    pub ours: String,
    /// The server it is divided by.
    pub peer: String,
    pub rate: f64,
    pub cpu: f64,
    pub p99: f64,
    pub hwm: f64,
    pub syscalls: f64,
    /// Bytes per idle connection at the last step (idle scenario only).
    pub idle_bytes: f64,
}

/// The callback engine's server; every other server is compared with it.
const CALLBACK: &str = "netloom";
/// The async front-end's server (`netloom::rt`).
const ASYNC: &str = "netloom-async";
/// The epoll floor (`floor-echo`): not a peer, the least a server can do.
const FLOOR: &str = "floor";
/// The servers compared with the floor.
const OVER_FLOOR: [&str; 2] = [CALLBACK, "netloom-uring"];

/// Bytes per connection at the last step of an idle-connections record.
fn idle_bytes(r: &Value) -> f64 {
    r["steps"]
        .as_array()
        .and_then(|steps| steps.last())
        .map_or(f64::NAN, |last| num(last, "bytes_per_conn"))
}

/// `ours` ÷ `peer` for each measure: the median over the runs both completed
/// without errors of the ratio within the run (the two servers ran minutes
/// apart at most, so a drift of the machine's speed cancels out). `None`
/// when no run pairs up.
fn ratio(
    scenario: &str,
    (ours_name, ours): (&str, &[&Value]),
    (peer, theirs): (&str, &[&Value]),
) -> Option<Ratio> {
    let pairs: Vec<(&Value, &Value)> = ours
        .iter()
        .filter_map(|a| {
            theirs
                .iter()
                .find(|b| b["run"] == a["run"])
                .map(|b| (*a, *b))
        })
        .filter(|(a, b)| a["errors"] == 0 && b["errors"] == 0)
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let of = |metric: &dyn Fn(&Value) -> f64| {
        median(
            pairs
                .iter()
                .map(|(a, b)| metric(a) / metric(b))
                .filter(|x| x.is_finite())
                .collect(),
        )
    };
    Some(Ratio {
        scenario: scenario.into(),
        ours: ours_name.into(),
        peer: peer.into(),
        rate: of(&|r| num(r, "rate")),
        cpu: of(&|r| num(r, "server_cpu_us_per_op")),
        p99: of(&|r| num(r, "p99_us")),
        hwm: of(&|r| num(r, "server_hwm_kib")),
        syscalls: of(&|r| num(r, "server_syscalls_per_op")),
        idle_bytes: of(&idle_bytes),
    })
}

/// Medians of the idle-connection runs of one server.
pub struct Idle {
    pub server: String,
    pub base_kib: f64,
    /// (connections, RSS KiB, bytes per connection over the base)
    pub steps: Vec<(u64, f64, f64)>,
    pub slope: f64,
    pub at_1m_bytes: f64,
}

pub struct Summary {
    pub machine: Value,
    pub scenarios: Vec<String>,
    pub servers: Vec<String>,
    pub rows: Vec<Row>,
    /// netloom (callback) ÷ each peer outside netloom, load scenarios.
    pub ratios: Vec<Ratio>,
    /// netloom and netloom-uring ÷ the floor, echo load scenarios.
    pub floor_ratios: Vec<Ratio>,
    /// netloom-async ÷ netloom (callback) and ÷ tokio, every scenario.
    pub async_ratios: Vec<Ratio>,
    pub idle: Vec<Idle>,
    pub notes: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// A readable name for a scenario (`echo-64B-100c` -> `echo 64 B × 100 conns`).
pub fn title(scenario: &str) -> String {
    match scenario {
        "echo-64B-100c" => "echo 64 B × 100 conns".into(),
        "echo-4KiB-100c" => "echo 4 KiB × 100 conns".into(),
        "echo-64B-1000c" => "echo 64 B × 1,000 conns".into(),
        "echo-4KiB-1000c" => "echo 4 KiB × 1,000 conns".into(),
        "http-p16-256c" => "HTTP plaintext, pipeline 16 × 256 conns".into(),
        "resp-get-p16-50c" => "RESP GET, pipeline 16 × 50 conns".into(),
        "resp-set-p16-50c" => "RESP SET, pipeline 16 × 50 conns".into(),
        "idle-conns" => "idle connections".into(),
        other => other.into(),
    }
}

impl Summary {
    pub fn new(records: &[Value]) -> Summary {
        let machine = records
            .iter()
            .find(|r| r["record"] == "machine")
            .cloned()
            .unwrap_or(Value::Null);
        let results: Vec<&Value> = records
            .iter()
            .filter(|r| r["scenario"].is_string() && r["record"].is_null())
            .collect();
        let mut scenarios: Vec<String> = Vec::new();
        let mut servers: Vec<String> = vec![CALLBACK.into()];
        for r in records.iter().filter(|r| r["scenario"].is_string()) {
            let (sc, sv) = (
                r["scenario"].as_str().unwrap_or(""),
                r["server"].as_str().unwrap_or(""),
            );
            if !scenarios.iter().any(|s| s == sc) {
                scenarios.push(sc.into());
            }
            if !servers.iter().any(|s| s == sv) {
                servers.push(sv.into());
            }
        }
        let mut notes = Vec::new();
        let mut seen_skips = Vec::new();
        for r in records {
            let who = format!(
                "{} / {}",
                r["scenario"].as_str().unwrap_or(""),
                r["server"].as_str().unwrap_or("")
            );
            match r["record"].as_str() {
                Some("skipped") => {
                    let why = format!(
                        "{}: {}",
                        r["server"].as_str().unwrap_or(""),
                        r["why"].as_str().unwrap_or("")
                    );
                    if !seen_skips.contains(&why) {
                        notes.push(format!("Skipped {why}."));
                        seen_skips.push(why);
                    }
                }
                Some("failed") => notes.push(format!(
                    "{who} run {} failed: {}",
                    r["run"],
                    r["why"].as_str().unwrap_or("")
                )),
                _ if r["errors"].as_u64().unwrap_or(0) > 0 => notes.push(format!(
                    "{who} run {}: {} verification errors, e.g. {}",
                    r["run"], r["errors"], r["error_samples"]
                )),
                _ => {}
            }
            if let Some(e) = r["syscall_count_error"].as_str() {
                notes.push(format!(
                    "{who} run {}: system calls not counted: {e}",
                    r["run"]
                ));
            }
        }
        let noisy: Vec<f64> = results
            .iter()
            .filter_map(|r| r["pre_run_busy_pct"].as_f64())
            .filter(|b| *b > 10.0)
            .collect();
        if let Some(why) = records
            .iter()
            .find_map(|r| r["syscall_counter_note"].as_str())
        {
            notes.push(format!(
                "strace counted the system calls ({why}): it stops the server at every call, so the \
                 server batches differently; syscalls/msg is rough and the other figures of those runs \
                 are far slower than without it."
            ));
        }
        if !noisy.is_empty() {
            notes.push(format!(
                "{} of {} runs started while a benchmark core was over 10% busy with other work (up to {:.0}%): \
                 those numbers are noisy; run again on a quiet machine.",
                noisy.len(),
                results.len(),
                noisy.iter().copied().fold(0.0, f64::max)
            ));
        }
        if machine["runs"].as_u64().unwrap_or(0) < 3
            || machine["duration_s"].as_f64().unwrap_or(0.0) < 3.0
        {
            notes.push("A short run (fewer than 3 runs or under 3 s each): a smoke test, not for comparison.".into());
        }
        let of = |sc: &str, sv: &str| -> Vec<&Value> {
            results
                .iter()
                .copied()
                .filter(|r| r["scenario"] == sc && r["server"] == sv)
                .collect()
        };
        let mut rows = Vec::new();
        let mut ratios = Vec::new();
        let mut floor_ratios = Vec::new();
        let mut async_ratios = Vec::new();
        let mut idle = Vec::new();
        for sc in &scenarios {
            for sv in &servers {
                let rs = of(sc, sv);
                if rs.is_empty() {
                    continue;
                }
                let med = |f: &dyn Fn(&Value) -> f64| {
                    median(rs.iter().map(|r| f(r)).filter(|x| x.is_finite()).collect())
                };
                if rs[0]["mode"] == "idle" {
                    let steps = rs[0]["steps"].as_array().map_or(0, Vec::len);
                    idle.push(Idle {
                        server: sv.clone(),
                        base_kib: med(&|r| num(r, "base_rss_kib")),
                        steps: (0..steps)
                            .map(|i| {
                                (
                                    rs[0]["steps"][i]["conns"].as_u64().unwrap_or(0),
                                    med(&|r| num(&r["steps"][i], "rss_kib")),
                                    med(&|r| num(&r["steps"][i], "bytes_per_conn")),
                                )
                            })
                            .collect(),
                        slope: med(&|r| num(r, "slope_bytes_per_conn")),
                        at_1m_bytes: med(&|r| num(r, "rss_at_1m_bytes")),
                    });
                    continue;
                }
                rows.push(Row {
                    scenario: sc.clone(),
                    server: sv.clone(),
                    rate: med(&|r| num(r, "rate")),
                    p99_us: med(&|r| num(r, "p99_us")),
                    hwm_kib: med(&|r| num(r, "server_hwm_kib")),
                    user_pct: med(&|r| num(r, "server_user_s") * 100.0 / num(r, "duration_s")),
                    sys_pct: med(&|r| num(r, "server_sys_s") * 100.0 / num(r, "duration_s")),
                    cpu_us_per_op: med(&|r| num(r, "server_cpu_us_per_op")),
                    client_core_pct: med(&|r| num(r, "client_core_busy_pct")),
                    syscalls_per_op: med(&|r| num(r, "server_syscalls_per_op")),
                });
            }
            let pair =
                |ours: &str, peer: &str| ratio(sc, (ours, &of(sc, ours)), (peer, &of(sc, peer)));
            let idle_scenario = results
                .iter()
                .any(|r| r["scenario"] == sc.as_str() && r["mode"] == "idle");
            if !idle_scenario {
                for peer in servers
                    .iter()
                    .filter(|s| ![CALLBACK, ASYNC, FLOOR].contains(&s.as_str()))
                {
                    ratios.extend(pair(CALLBACK, peer));
                }
                for ours in OVER_FLOOR {
                    floor_ratios.extend(pair(ours, FLOOR));
                }
            }
            for peer in [CALLBACK, "tokio"] {
                async_ratios.extend(pair(ASYNC, peer));
            }
        }
        Summary {
            machine,
            scenarios: scenarios
                .into_iter()
                .filter(|s| s != "idle-conns")
                .collect(),
            servers: servers
                .into_iter()
                .filter(|s| results.iter().any(|r| r["server"] == s.as_str()))
                .collect(),
            rows,
            ratios,
            floor_ratios,
            async_ratios,
            idle,
            notes,
        }
    }

    /// The results as markdown: a whole page (`level` 1, with a title), or a
    /// section to embed under a heading (`level` 3 gives `###` subsections).
    pub fn markdown(&self, chart: &str, level: usize) -> String {
        let m = &self.machine;
        let mut o = String::new();
        if level == 1 {
            let _ = writeln!(o, "# netloom benchmark results\n");
        }
        let h = "#".repeat(level.max(2));
        let _ = writeln!(
            o,
            "Machine: {} cores ({}), {:.0} GiB, Linux {}; {}; netloom {}; {}{}.  ",
            m["nproc"],
            m["cpu"].as_str().unwrap_or("?"),
            m["mem_gib"].as_f64().unwrap_or(0.0),
            m["kernel"].as_str().unwrap_or("?"),
            m["date"].as_str().unwrap_or("?"),
            m["commit"].as_str().unwrap_or("?"),
            m["rustc"].as_str().unwrap_or(""),
            match m["go"].as_str() {
                Some(go) if !go.is_empty() => format!(", {go}"),
                _ => String::new(),
            }
        );
        let _ = writeln!(
            o,
            "Command: `{}` ({} s measured after {} s of warm-up per run, {} runs, medians). \
             Each server runs alone, pinned to cpu {} with 1 loop / 1 worker (tokio: {}; Go: GOMAXPROCS=1); \
             the load generator (`bench/src/bin/loadgen`, verifying every reply) is pinned to cpu {}. \
             Servers alternate within each run.\n",
            m["command"].as_str().unwrap_or("bench/run.sh"),
            m["duration_s"],
            m["warmup_s"],
            m["runs"],
            m["server_cpu"],
            if m["tokio_threads"] == 0 {
                "current-thread runtime".to_string()
            } else {
                format!("multi-thread runtime, {} workers", m["tokio_threads"])
            },
            m["client_cpu"],
        );
        let _ = writeln!(o, "![netloom vs peers]({chart})\n");
        let _ = writeln!(o, "{h} Load\n");
        let counted = table_with_syscalls(
            &mut o,
            &[
                "scenario",
                "server",
                "msgs/s",
                "p99",
                "peak RSS",
                "CPU user",
                "CPU sys",
                "CPU µs/msg",
                "client core",
            ],
            &self.rows,
            |r| {
                vec![
                    title(&r.scenario),
                    r.server.clone(),
                    thousands(r.rate),
                    latency(r.p99_us),
                    mib(r.hwm_kib),
                    format!("{:.0}%", r.user_pct),
                    format!("{:.0}%", r.sys_pct),
                    format!("{:.2}", r.cpu_us_per_op),
                    format!("{:.0}%", r.client_core_pct),
                ]
            },
            |r| (r.syscalls_per_op, fixed(r.syscalls_per_op)),
        );
        let _ = writeln!(
            o,
            "\nmsgs/s: echo messages or requests answered per second. p99: per message, from when the load \
             generator issued it to when its reply was complete. Peak RSS: the server's `VmHWM`. CPU user / sys: \
             the server process's time over the measured window (`/proc/PID/stat`), in % of one core; \
             CPU µs/msg is their sum per message. Client core: how busy the load generator's core was; near \
             100% the client is the bottleneck and CPU µs/msg is the figure that compares the servers.{}\n",
            if counted {
                format!(
                    " syscalls/msg: the server's system calls over the measured window (all its threads; \
                     `{}`) per message.",
                    match self.machine["syscalls"].as_str() {
                        Some("strace") => "strace -c -f",
                        _ => "perf stat -e raw_syscalls:sys_enter",
                    }
                )
            } else {
                String::new()
            }
        );
        if !self.ratios.is_empty() {
            let _ = writeln!(o, "{h} netloom ÷ peer\n");
            let _ = writeln!(
                o,
                "Medians of the per-run ratios (> 1 means netloom has more of it).\n"
            );
            table(
                &mut o,
                &[
                    "scenario",
                    "peer",
                    "msgs/s",
                    "CPU µs/msg",
                    "p99",
                    "peak RSS",
                ],
                self.ratios.iter().map(|r| {
                    vec![
                        title(&r.scenario),
                        r.peer.clone(),
                        times(r.rate),
                        times(r.cpu),
                        times(r.p99),
                        times(r.hwm),
                    ]
                }),
            );
            let _ = writeln!(o);
        }
        if !self.floor_ratios.is_empty() {
            let _ = writeln!(o, "{h} netloom ÷ floor\n");
            let _ = writeln!(
                o,
                "The floor (`bench/src/bin/floor-echo.rs`) is a one-thread mio echo server that only reads \
                 into one buffer and writes the bytes back: about the least an echo server on one epoll \
                 thread can spend. netloom's and netloom-uring's figures ÷ the floor's, medians of the \
                 per-run ratios: netloom's CPU µs/msg over 1 is what the engine costs above the bare \
                 system calls; netloom-uring below 1 is what io_uring saves on calls the floor must make.\n"
            );
            table_with_syscalls(
                &mut o,
                &[
                    "scenario",
                    "server",
                    "CPU µs/msg",
                    "msgs/s",
                    "p99",
                    "peak RSS",
                ],
                &self.floor_ratios,
                |r| {
                    vec![
                        title(&r.scenario),
                        r.ours.clone(),
                        times(r.cpu),
                        times(r.rate),
                        times(r.p99),
                        times(r.hwm),
                    ]
                },
                |r| (r.syscalls, times(r.syscalls)),
            );
            let _ = writeln!(o);
        }
        if !self.async_ratios.is_empty() {
            let _ = writeln!(o, "{h} Async front-end\n");
            let _ = writeln!(
                o,
                "netloom-async (`examples/echo_async`, `examples/http_async`: `netloom::rt`, one task per \
                 connection) ÷ netloom's callback servers and ÷ tokio: medians of the per-run ratios (> 1 \
                 means netloom-async has more of it); idle bytes/conn is at the last idle step. \
                 Goals (issue #7): CPU µs/msg ≤ 1.10× the callback echo and < 1.00× tokio.\n"
            );
            table(
                &mut o,
                &[
                    "scenario",
                    "÷",
                    "CPU µs/msg",
                    "msgs/s",
                    "p99",
                    "peak RSS",
                    "idle bytes/conn",
                ],
                self.async_ratios.iter().map(|r| {
                    let peer = if r.peer == CALLBACK {
                        "netloom (callback)".into()
                    } else {
                        r.peer.clone()
                    };
                    vec![
                        title(&r.scenario),
                        peer,
                        times(r.cpu),
                        times(r.rate),
                        times(r.p99),
                        times(r.hwm),
                        times(r.idle_bytes),
                    ]
                }),
            );
            let _ = writeln!(o);
        }
        if !self.idle.is_empty() {
            let steps: Vec<u64> = self.idle[0].steps.iter().map(|s| s.0).collect();
            let _ = writeln!(o, "{h} Memory per idle connection\n");
            let _ = write!(o, "| server | RSS, no connections |");
            for n in &steps {
                let _ = write!(
                    o,
                    " RSS @ {} | bytes/conn @ {} |",
                    thousands(*n as f64),
                    thousands(*n as f64)
                );
            }
            let _ = writeln!(o, " slope, bytes/conn | RSS @ 1,000,000 (extrapolated) |");
            let _ = writeln!(o, "|---|--:|{}--:|--:|", "--:|--:|".repeat(steps.len()));
            for i in &self.idle {
                let _ = write!(o, "| {} | {} |", i.server, mib(i.base_kib));
                for s in &i.steps {
                    let _ = write!(o, " {} | {} |", mib(s.1), thousands(s.2));
                }
                let _ = writeln!(
                    o,
                    " {} | {:.2} GiB |",
                    thousands(i.slope),
                    i.at_1m_bytes / (1u64 << 30) as f64
                );
            }
            let _ = writeln!(
                o,
                "\nEach connection sends one byte and reads it back, then stays idle; RSS is read 0.5 s after the \
                 last one opened. bytes/conn = (RSS − RSS with no connections) ÷ connections; the slope is \
                 between the two steps, and the 1,000,000 figure is RSS at the last step plus the slope for \
                 the rest, on paper (the open-file limit here is 20,000).\n"
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(o, "{h} Notes\n");
            for n in &self.notes {
                let _ = writeln!(o, "- {n}");
            }
            let _ = writeln!(o);
        }
        o
    }
}

/// A markdown table: the first two columns name the row (left-aligned),
/// the others hold figures (right-aligned).
fn table(o: &mut String, head: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let _ = writeln!(o, "| {} |", head.join(" | "));
    let _ = writeln!(o, "|---|---|{}", "--:|".repeat(head.len() - 2));
    for row in rows {
        let _ = writeln!(o, "| {} |", row.join(" | "));
    }
}

/// A table of `items` with a last column `syscalls/msg` when some item has
/// that figure (they do only when the suite counted system calls): `cells`
/// gives the other columns, `syscalls` the figure and its text. Returns
/// whether the column is there.
fn table_with_syscalls<T>(
    o: &mut String,
    head: &[&str],
    items: &[T],
    cells: impl Fn(&T) -> Vec<String>,
    syscalls: impl Fn(&T) -> (f64, String),
) -> bool {
    let counted = items.iter().any(|i| syscalls(i).0.is_finite());
    let mut head = head.to_vec();
    if counted {
        head.push("syscalls/msg");
    }
    table(
        o,
        &head,
        items.iter().map(|i| {
            let mut row = cells(i);
            if counted {
                row.push(syscalls(i).1);
            }
            row
        }),
    );
    counted
}

/// `1234567.8` -> `1,234,568`.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A figure with two decimals, `–` when missing.
pub fn fixed(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "–".into()
    }
}

/// A ratio, `1.23×`.
pub fn times(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}×")
    } else {
        "–".into()
    }
}

/// A latency in µs, as µs or ms.
pub fn latency(us: f64) -> String {
    if !us.is_finite() {
        "–".into()
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

/// KiB as MiB.
pub fn mib(kib: f64) -> String {
    if !kib.is_finite() {
        "–".into()
    } else {
        format!("{:.1} MiB", kib / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(server: &str, run: u64, rate: f64, cpu: f64) -> Value {
        json!({"scenario": "echo-64B-100c", "server": server, "run": run, "mode": "echo",
               "rate": rate, "p99_us": 100.0, "server_hwm_kib": 2048, "server_user_s": 1.0,
               "server_sys_s": 2.0, "duration_s": 5.0, "server_cpu_us_per_op": cpu,
               "client_core_busy_pct": 99.0, "errors": 0})
    }

    #[test]
    fn medians_and_ratios_within_runs() {
        let records = vec![
            json!({"record": "machine", "runs": 3, "duration_s": 5.0}),
            load("netloom", 0, 100.0, 6.0),
            load("tokio", 0, 50.0, 8.0),
            load("tokio", 1, 200.0, 8.0),
            load("netloom", 1, 300.0, 6.0),
            load("netloom", 2, 200.0, 5.0),
            load("tokio", 2, 100.0, 10.0),
            json!({"record": "skipped", "scenario": "echo-64B-100c", "server": "go", "why": "no Go"}),
        ];
        let s = Summary::new(&records);
        assert_eq!(s.servers, ["netloom", "tokio"]);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].rate, 200.0);
        assert_eq!(s.rows[0].user_pct, 20.0);
        assert_eq!(s.ratios.len(), 1);
        // Per-run rate ratios 2.0, 1.5, 2.0: median 2.0; CPU 0.75, 0.75, 0.5.
        assert_eq!(s.ratios[0].rate, 2.0);
        assert_eq!(s.ratios[0].cpu, 0.75);
        assert!(s.notes.iter().any(|n| n.contains("no Go")));
        let md = s.markdown("x.svg", 1);
        assert!(
            md.contains("| echo 64 B × 100 conns | netloom | 200 |"),
            "{md}"
        );
        assert!(md.contains("| 2.00× | 0.75× |"), "{md}");
    }

    fn idle(server: &str, run: u64, bytes_per_conn: f64) -> Value {
        json!({"scenario": "idle-conns", "server": server, "run": run, "mode": "idle",
               "base_rss_kib": 1024, "server_hwm_kib": 4096, "errors": 0,
               "steps": [{"conns": 200, "rss_kib": 1200, "bytes_per_conn": 900.0},
                         {"conns": 1000, "rss_kib": 1300, "bytes_per_conn": bytes_per_conn}]})
    }

    #[test]
    fn async_front_end_against_callback_and_tokio() {
        let records = vec![
            json!({"record": "machine", "runs": 2, "duration_s": 5.0}),
            load("netloom", 0, 100.0, 6.0),
            load("netloom-async", 0, 90.0, 6.6),
            load("tokio", 0, 80.0, 8.0),
            load("netloom-async", 1, 100.0, 6.0),
            load("tokio", 1, 100.0, 6.0),
            load("netloom", 1, 100.0, 6.0),
            idle("netloom", 0, 250.0),
            idle("netloom-async", 0, 500.0),
            idle("tokio", 0, 5000.0),
            json!({"record": "skipped", "scenario": "resp-get-p16-50c", "server": "netloom-async",
                   "why": "the async front-end has no RESP server"}),
        ];
        let s = Summary::new(&records);
        assert_eq!(s.servers, ["netloom", "netloom-async", "tokio"]);
        // The callback table compares with peers outside netloom only.
        assert_eq!(s.ratios.len(), 1);
        assert_eq!(s.ratios[0].peer, "tokio");
        let peers: Vec<(&str, &str)> = s
            .async_ratios
            .iter()
            .map(|r| (r.scenario.as_str(), r.peer.as_str()))
            .collect();
        assert_eq!(
            peers,
            [
                ("echo-64B-100c", "netloom"),
                ("echo-64B-100c", "tokio"),
                ("idle-conns", "netloom"),
                ("idle-conns", "tokio"),
            ]
        );
        // CPU per run 1.1 and 1.0 against the callback: median 1.05.
        assert!((s.async_ratios[0].cpu - 1.05).abs() < 1e-9);
        assert!(s.async_ratios[2].cpu.is_nan());
        assert_eq!(s.async_ratios[2].idle_bytes, 2.0);
        assert_eq!(s.async_ratios[3].idle_bytes, 0.1);
        let md = s.markdown("x.svg", 1);
        assert!(md.contains("## Async front-end"), "{md}");
        assert!(
            md.contains("| echo 64 B × 100 conns | netloom (callback) | 1.05× | 0.95× |"),
            "{md}"
        );
        assert!(
            md.contains("| idle connections | tokio | – | – | – | 1.00× | 0.10× |"),
            "{md}"
        );
        assert!(s.notes.iter().any(|n| n.contains("no RESP server")));
    }

    #[test]
    fn floor_ratios_and_system_calls() {
        let counted = |server: &str, run: u64, cpu: f64, syscalls: f64| {
            let mut r = load(server, run, 100.0, cpu);
            r["server_syscalls_per_op"] = json!(syscalls);
            r
        };
        let records = vec![
            json!({"record": "machine", "runs": 1, "duration_s": 5.0, "syscalls": "perf"}),
            counted("netloom", 0, 6.0, 3.0),
            counted("netloom-uring", 0, 4.5, 0.5),
            counted("floor", 0, 3.0, 2.0),
            counted("tokio", 0, 9.0, 4.0),
            json!({"record": "skipped", "scenario": "resp-get-p16-50c", "server": "floor",
                   "why": "the floor is an echo server"}),
        ];
        let s = Summary::new(&records);
        // netloom ÷ tokio and ÷ netloom-uring; the floor has its own table.
        let peers: Vec<&str> = s.ratios.iter().map(|r| r.peer.as_str()).collect();
        assert_eq!(peers, ["netloom-uring", "tokio"]);
        let over: Vec<(&str, &str, f64, f64)> = s
            .floor_ratios
            .iter()
            .map(|r| (r.ours.as_str(), r.peer.as_str(), r.cpu, r.syscalls))
            .collect();
        assert_eq!(
            over,
            [
                ("netloom", "floor", 2.0, 1.5),
                ("netloom-uring", "floor", 1.5, 0.25)
            ]
        );
        let md = s.markdown("x.svg", 1);
        assert!(md.contains("| client core | syscalls/msg |"), "{md}");
        assert!(md.contains("| 99% | 3.00 |"), "{md}");
        assert!(md.contains("## netloom ÷ floor"), "{md}");
        assert!(
            md.contains(
                "| echo 64 B × 100 conns | netloom-uring | 1.50× | 1.00× | 1.00× | 1.00× | 0.25× |"
            ),
            "{md}"
        );
        assert!(s.notes.iter().any(|n| n.contains("an echo server")));
        // Without counts, no syscalls column.
        let plain = Summary::new(&[load("netloom", 0, 1.0, 1.0), load("floor", 0, 1.0, 1.0)]);
        assert!(!plain.markdown("x.svg", 1).contains("syscalls/msg"));
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(latency(450.0), "450 µs");
        assert_eq!(latency(12_345.0), "12.3 ms");
        assert_eq!(mib(2048.0), "2.0 MiB");
    }
}
