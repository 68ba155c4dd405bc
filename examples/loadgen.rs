// cargo run --release --example loadgen -- --addr tcp://127.0.0.1:9000 --conns 100 --size 64 --pipeline 1 --duration 10 --warmup 0 --loops 1
// cargo run --release --features tls --example loadgen -- --addr tcp://127.0.0.1:9443 --tls-ca cert.pem [--tls-name localhost]
//! An echo load generator on netloom's [`Client`]: `--conns` connections
//! each keep `--pipeline` messages of `--size` bytes in flight against an
//! echo server, and every echoed byte is checked.
//!
//! Every message has its own content, derived from its connection number and
//! sequence number, so an echo that comes back corrupted, misordered, or
//! from another connection is counted as a corrupted echo. Latency is
//! measured per message, from the moment it is written to the moment its
//! last byte is back, into per-connection log-linear histograms (merged
//! when the connection closes, so the loops share nothing while they run).
//!
//! The load starts once every connection has opened (or failed); the first
//! `--warmup` seconds are not measured, the next `--duration` seconds are,
//! then the generator stops by itself. While it runs, a progress line goes
//! to stderr every second. At the end it prints messages/s, MB/s (echoed
//! payload, one way) and latency percentiles, and as the last line on stdout
//! a one-line JSON summary. The exit status is 1 if any connection failed
//! or any echo was corrupted (`errors`), or if no message completed at all.
//!
//! With `--tls-ca PEM` (feature `tls`) every connection speaks TLS,
//! trusting that certificate and verifying the server as `--tls-name`
//! (default `localhost`); the load starts after the handshakes.
//!
//! All the work runs on the client's `--loops` event loops; there are no
//! other threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netloom::{Action, Client, Conn, Engine, Error, Handler, Options};
#[path = "support/usage.rs"]
mod usage;
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

/// The command line.
#[derive(Clone, Debug)]
struct Settings {
    addr: String,
    conns: usize,
    size: usize,
    pipeline: usize,
    duration: Duration,
    warmup: Duration,
    loops: usize,
    /// The event loops' backend.
    backend: netloom::Backend,
    /// Trust this PEM and speak TLS.
    tls_ca: Option<String>,
    tls_name: String,
}

/// Phases of a run, in order; stored in [`LoadGen::phase`].
const CONNECTING: u8 = 0;
const WARMUP: u8 = 1;
const MEASURING: u8 = 2;
const DONE: u8 = 3;

/// One connection's count of completed echoes, alone on its cache line:
/// only its connection writes it, the progress line only reads it.
#[derive(Default)]
#[repr(align(64))]
struct Completed(AtomicU64);

/// Log-linear latency histogram in nanoseconds: values below 64 have a
/// bucket each, above that every power of two is split into 32 buckets, so
/// a percentile is off by at most 1/32 (~3%). It grows only as far as the
/// largest value recorded.
#[derive(Default, Clone, Debug)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    const SUB_BITS: u32 = 5;
    const SUB: u64 = 1 << Self::SUB_BITS;

    fn bucket(value: u64) -> usize {
        if value < Self::SUB {
            return value as usize;
        }
        let shift = 63 - value.leading_zeros() - Self::SUB_BITS;
        ((u64::from(shift) + 1) * Self::SUB + (value >> shift) - Self::SUB) as usize
    }

    /// The middle of bucket `index`'s range.
    fn midpoint(index: usize) -> u64 {
        let index = index as u64;
        if index < Self::SUB {
            return index;
        }
        let shift = index / Self::SUB - 1;
        let low = (Self::SUB + index % Self::SUB) << shift;
        low + (1 << shift) / 2
    }

    fn record(&mut self, nanos: u64) {
        let bucket = Self::bucket(nanos);
        if bucket >= self.counts.len() {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value below which a fraction `q` of the samples lie, in ns.
    fn percentile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::midpoint(index).min(self.max);
            }
        }
        self.max
    }
}

/// Writes message `seq` of connection `conn` into `out`: 8-byte words of a
/// hash of (connection, sequence, word index), so no two messages of a run
/// share content.
fn fill_message(conn: usize, seq: u64, out: &mut [u8]) {
    let key = mix((conn as u64) << 40 ^ seq);
    for (word, chunk) in out.chunks_mut(8).enumerate() {
        let bytes = mix(key.wrapping_add(word as u64)).to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// splitmix64's finaliser: a cheap, well-spread 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Per-connection state, owned by the connection's loop.
#[derive(Default)]
struct ConnState {
    id: usize,
    /// Messages written so far; the next one gets this sequence number.
    sent: u64,
    /// Messages fully echoed so far; the one arriving has this number.
    received: u64,
    /// Bytes of message `received` already checked.
    offset: usize,
    /// Whether message `received` has already mismatched.
    mismatched: bool,
    /// Message `received` as it must come back.
    expected: Vec<u8>,
    /// Write time of each message in flight, oldest first.
    sent_at: VecDeque<Instant>,
    /// Messages about to be written, batched into one write.
    outgoing: Vec<u8>,
    latency: Histogram,
    opened: bool,
    /// Why this side closed the connection, if it did so over an error.
    failure: Option<String>,
}

/// The shared side of the generator: settings, phase, counters. Loops touch
/// only their connections' own counters while the load runs.
struct LoadGen {
    settings: Settings,
    phase: AtomicU8,
    completed: Vec<Completed>,
    /// Connections whose connect finished, either way.
    settled: AtomicUsize,
    open: AtomicUsize,
    failed: AtomicU64,
    corrupted: AtomicU64,
    latency: Mutex<Histogram>,
    clock: Mutex<Clock>,
}

/// The phase boundaries, kept by `on_tick` (loop 0 only).
#[derive(Default)]
struct Clock {
    load_start: Option<Instant>,
    measure_start: Option<Instant>,
    measure_end: Option<Instant>,
    next_report: Option<Instant>,
    /// Completed echoes and time at the previous progress line.
    last_report: Option<(u64, Instant)>,
}

/// What a run measured.
struct Report {
    msgs: u64,
    seconds: f64,
    latency: Histogram,
    failed: u64,
    corrupted: u64,
}

impl LoadGen {
    fn new(settings: Settings) -> LoadGen {
        let completed = (0..settings.conns).map(|_| Completed::default()).collect();
        LoadGen {
            settings,
            phase: AtomicU8::new(CONNECTING),
            completed,
            settled: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            failed: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
            latency: Mutex::new(Histogram::default()),
            clock: Mutex::new(Clock::default()),
        }
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    fn fail(&self, id: usize, why: &str) {
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        // A dead server fails every connection: a few lines say enough.
        if failed <= 5 {
            eprintln!("loadgen: connection {id}: {why}");
        }
    }

    /// Appends `count` new messages to `st.outgoing`, stamped `now`.
    fn queue_messages(&self, st: &mut ConnState, count: usize, now: Instant) {
        let size = self.settings.size;
        for _ in 0..count {
            let start = st.outgoing.len();
            st.outgoing.resize(start + size, 0);
            fill_message(st.id, st.sent, &mut st.outgoing[start..]);
            st.sent += 1;
            st.sent_at.push_back(now);
        }
    }

    /// Checks `data` against the expected echo; returns how many messages it
    /// completed, or `Err` if the server sent more than it was sent.
    fn check_echo(
        &self,
        st: &mut ConnState,
        mut data: &[u8],
        now: Instant,
        measuring: bool,
    ) -> Result<usize, ()> {
        let size = self.settings.size;
        let mut completed = 0;
        while !data.is_empty() {
            if st.received == st.sent {
                return Err(());
            }
            if st.offset == 0 {
                fill_message(st.id, st.received, &mut st.expected);
            }
            let n = (size - st.offset).min(data.len());
            if data[..n] != st.expected[st.offset..st.offset + n] {
                st.mismatched = true;
            }
            st.offset += n;
            data = &data[n..];
            if st.offset == size {
                let sent_at = st.sent_at.pop_front().expect("a message is in flight");
                if measuring {
                    st.latency.record((now - sent_at).as_nanos() as u64);
                }
                if st.mismatched {
                    self.corrupted.fetch_add(1, Ordering::Relaxed);
                    st.mismatched = false;
                }
                st.received += 1;
                st.offset = 0;
                completed += 1;
            }
        }
        Ok(completed)
    }

    /// Moves to the next phase when its time has come; returns the delay to
    /// the next boundary.
    fn advance(&self, clock: &mut Clock, now: Instant) -> Option<Duration> {
        let phase = self.phase();
        if phase == CONNECTING {
            if self.settled.load(Ordering::Acquire) < self.settings.conns {
                // Poll often: the load starts as soon as everyone is in.
                return Some(Duration::from_millis(5));
            }
            clock.load_start = Some(now);
            clock.next_report = Some(now + Duration::from_secs(1));
            clock.last_report = Some((self.completed_total(), now));
            self.phase.store(WARMUP, Ordering::Relaxed);
        }
        let load_start = clock.load_start.expect("set when the load started");
        let warmup_end = load_start + self.settings.warmup;
        if self.phase() == WARMUP {
            if now < warmup_end {
                return Some(warmup_end - now);
            }
            clock.measure_start = Some(now);
            self.phase.store(MEASURING, Ordering::Relaxed);
        }
        let measure_end = warmup_end + self.settings.duration;
        if self.phase() == MEASURING && now < measure_end {
            return Some(measure_end - now);
        }
        if self.phase() == MEASURING {
            clock.measure_end = Some(now);
        }
        self.phase.store(DONE, Ordering::Relaxed);
        None
    }

    /// Echoes completed so far by every connection, in any phase.
    fn completed_total(&self) -> u64 {
        self.completed
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum()
    }

    fn progress(&self, clock: &mut Clock, now: Instant) {
        let total = self.completed_total();
        let (count_before, before) = clock.last_report.unwrap_or((0, now));
        let since = (now - before).as_secs_f64().max(1e-3);
        let rate = (total - count_before) as f64 / since;
        clock.last_report = Some((total, now));
        let phase = match self.phase() {
            CONNECTING => "connecting",
            WARMUP => "warmup",
            MEASURING => "measuring",
            _ => "done",
        };
        let elapsed = clock.load_start.map_or(0.0, |t| (now - t).as_secs_f64());
        eprintln!(
            "loadgen: {elapsed:5.1}s {phase:<10} {rate:>10.0} msgs/s {:>8.2} MB/s  conns {}/{}  errors {}",
            rate * self.settings.size as f64 / 1e6,
            self.open.load(Ordering::Relaxed),
            self.settings.conns,
            self.failed.load(Ordering::Relaxed) + self.corrupted.load(Ordering::Relaxed),
        );
    }

    /// Writes `count` new messages, unless the run is over.
    fn refill(
        &self,
        conn: &mut Conn<'_, ConnState>,
        st: &mut ConnState,
        count: usize,
        now: Instant,
    ) -> Action {
        if count == 0 || self.phase() == DONE {
            return Action::None;
        }
        st.outgoing.clear();
        self.queue_messages(st, count, now);
        match conn.write(&st.outgoing) {
            Ok(()) => Action::None,
            Err(e) => {
                st.failure = Some(format!("write failed: {e}"));
                Action::Close
            }
        }
    }

    fn report(&self) -> Report {
        let clock = self.clock.lock().unwrap();
        let latency = self.latency.lock().unwrap().clone();
        let seconds = match (clock.measure_start, clock.measure_end) {
            (Some(start), Some(end)) => (end - start).as_secs_f64(),
            _ => 0.0,
        };
        Report {
            msgs: latency.total,
            seconds,
            latency,
            failed: self.failed.load(Ordering::Relaxed),
            corrupted: self.corrupted.load(Ordering::Relaxed),
        }
    }
}

impl Handler for LoadGen {
    type Context = ConnState;

    fn on_open(&self, conn: &mut Conn<'_, ConnState>) -> Action {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.settled.fetch_add(1, Ordering::Release);
        let mut st = std::mem::take(conn.context_mut());
        st.opened = true;
        st.expected = vec![0; self.settings.size];
        // Load before every connection is in is not measured: the clock
        // starts once all have opened or failed.
        let action = self.refill(conn, &mut st, self.settings.pipeline, Instant::now());
        *conn.context_mut() = st;
        action
    }

    fn on_traffic(&self, conn: &mut Conn<'_, ConnState>) -> Action {
        // The state is moved out so the inbound bytes (borrowed from `conn`)
        // can be checked against it without a copy.
        let mut st = std::mem::take(conn.context_mut());
        let now = Instant::now();
        let phase = self.phase();
        let data = conn.next(usize::MAX);
        let action = match self.check_echo(&mut st, data, now, phase == MEASURING) {
            Ok(completed) => {
                let counter = &self.completed[st.id].0;
                counter.store(
                    counter.load(Ordering::Relaxed) + completed as u64,
                    Ordering::Relaxed,
                );
                self.refill(conn, &mut st, completed, now)
            }
            Err(()) => {
                self.corrupted.fetch_add(1, Ordering::Relaxed);
                st.failure = Some("the server sent more bytes than it was sent".into());
                Action::Close
            }
        };
        *conn.context_mut() = st;
        action
    }

    fn on_close(&self, conn: &mut Conn<'_, ConnState>, err: Option<&Error>) -> Action {
        let st = conn.context();
        if let Some(why) = &st.failure {
            self.fail(st.id, why);
        } else if self.phase() != DONE {
            match err {
                Some(e) => self.fail(st.id, &e.to_string()),
                None => self.fail(st.id, "closed by the server"),
            }
        }
        if st.opened {
            self.open.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.settled.fetch_add(1, Ordering::Release);
        }
        self.latency.lock().unwrap().merge(&st.latency);
        Action::None
    }

    fn on_tick(&self, _engine: &Engine) -> (Duration, Action) {
        let now = Instant::now();
        let mut clock = self.clock.lock().unwrap();
        let mut next = self.advance(&mut clock, now);
        if let Some(due) = clock.next_report {
            if now >= due {
                self.progress(&mut clock, now);
                clock.next_report = Some(due + Duration::from_secs(1));
            }
        }
        let everyone_gone = self.settled.load(Ordering::Acquire) == self.settings.conns
            && self.open.load(Ordering::Relaxed) == 0;
        if next.is_none() || everyone_gone {
            self.phase.store(DONE, Ordering::Relaxed);
            if clock.measure_start.is_some() && clock.measure_end.is_none() {
                // Every connection is gone before the end: measured until now.
                clock.measure_end = Some(now);
            }
            return (Duration::from_secs(1), Action::Shutdown);
        }
        if let Some(due) = clock.next_report {
            next = next.map(|d| d.min(due.saturating_duration_since(now)));
        }
        (next.unwrap_or(Duration::from_secs(1)), Action::None)
    }
}

fn main() {
    let settings = parse_args();
    raise_fd_limit(settings.conns);
    let loadgen = Arc::new(LoadGen::new(settings.clone()));
    let options = Options::default()
        .loops(settings.loops)
        .backend(settings.backend)
        .ticker(true);
    let client = Client::start(loadgen.clone(), options).unwrap_or_else(|e| {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    });
    let dial = dialer(&settings);
    for id in 0..settings.conns {
        let ctx = ConnState {
            id,
            ..ConnState::default()
        };
        if let Err(e) = dial(&client, ctx) {
            loadgen.fail(id, &e.to_string());
            loadgen.settled.fetch_add(1, Ordering::Release);
        }
    }
    if let Err(e) = client.wait() {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
    let report = loadgen.report();
    print_report(&settings, &report);
    if report.failed + report.corrupted > 0 || report.msgs == 0 {
        std::process::exit(1);
    }
}

/// How each connection is opened: plain, or TLS with `--tls-ca`.
type Dialer = Box<dyn Fn(&Client<ConnState>, ConnState) -> netloom::Result<()>>;

fn dialer(settings: &Settings) -> Dialer {
    let addr = settings.addr.clone();
    let Some(ca) = &settings.tls_ca else {
        return Box::new(move |client, ctx| client.dial(&addr, ctx));
    };
    #[cfg(not(any(feature = "tls-aws-lc-rs", feature = "tls-ring")))]
    {
        let _ = ca;
        usage(
            "--tls-ca needs the tls feature: cargo run --release --features tls --example loadgen",
        )
    }
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    {
        use netloom::tls::{TlsClientConfig, TlsConnector};
        let connector = TlsClientConfig::from_pem_file(ca)
            .and_then(TlsConnector::new)
            .unwrap_or_else(|e| usage(&format!("--tls-ca {ca}: {e}")));
        let name = settings.tls_name.clone();
        Box::new(move |client, ctx| client.dial_tls(&addr, &connector, &name, ctx))
    }
}

/// Raises the soft open-file limit toward the hard one when `conns`
/// connections (plus the loops' own descriptors) would not fit.
fn raise_fd_limit(conns: usize) {
    let wanted = conns as libc::rlim_t + 64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the plain struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= wanted
    {
        return;
    }
    limit.rlim_cur = wanted.min(limit.rlim_max);
    // SAFETY: setrlimit reads the plain struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 || limit.rlim_cur < wanted {
        eprintln!(
            "loadgen: only {} descriptors allowed; some of {conns} connections will fail",
            limit.rlim_cur
        );
    }
}

fn print_report(settings: &Settings, report: &Report) {
    let per_second = |n: f64| {
        if report.seconds > 0.0 {
            n / report.seconds
        } else {
            0.0
        }
    };
    let msgs_per_s = per_second(report.msgs as f64);
    let mb_per_s = per_second((report.msgs * settings.size as u64) as f64) / 1e6;
    let micros = |q: f64| report.latency.percentile(q) as f64 / 1e3;
    let (p50, p99, p999) = (micros(0.5), micros(0.99), micros(0.999));
    let max = report.latency.max as f64 / 1e3;
    let errors = report.failed + report.corrupted;
    println!(
        "loadgen: {} conns x {} B, pipeline {}, {} loop(s), {:.2} s measured after {:.2} s warmup",
        settings.conns,
        settings.size,
        settings.pipeline,
        settings.loops,
        report.seconds,
        settings.warmup.as_secs_f64(),
    );
    println!("  messages   {} ({msgs_per_s:.0} msgs/s)", report.msgs);
    println!("  throughput {mb_per_s:.2} MB/s (echoed payload, one way)");
    println!("  latency    p50 {p50:.1} us, p99 {p99:.1} us, p999 {p999:.1} us, max {max:.1} us");
    println!(
        "  errors     {errors} ({} failed connections, {} corrupted echoes)",
        report.failed, report.corrupted
    );
    if report.msgs == 0 {
        println!("  no message completed in the measured window");
    }
    println!(
        "{{\"msgs_per_s\":{msgs_per_s:.1},\"mb_per_s\":{mb_per_s:.3},\"p50_us\":{p50:.1},\
\"p99_us\":{p99:.1},\"p999_us\":{p999:.1},\"max_us\":{max:.1},\"msgs\":{},\"errors\":{errors},\
\"failed_conns\":{},\"corrupted_echoes\":{},\"conns\":{},\"size\":{},\"pipeline\":{},\
\"duration\":{:.3},\"warmup\":{:.3},\"loops\":{}}}",
        report.msgs,
        report.failed,
        report.corrupted,
        settings.conns,
        settings.size,
        settings.pipeline,
        report.seconds,
        settings.warmup.as_secs_f64(),
        settings.loops,
    );
}

fn parse_args() -> Settings {
    let mut settings = Settings {
        addr: "tcp://127.0.0.1:9000".to_string(),
        conns: 100,
        size: 64,
        pipeline: 1,
        duration: Duration::from_secs(10),
        warmup: Duration::ZERO,
        loops: 1,
        backend: netloom::Backend::Auto,
        tls_ca: None,
        tls_name: "localhost".to_string(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let count = |v: String| -> usize {
            match v.parse() {
                Ok(n) if n > 0 => n,
                _ => usage(&format!("{flag} takes a positive number")),
            }
        };
        let seconds = |v: String| -> Duration {
            v.parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .unwrap_or_else(|| usage(&format!("{flag} takes seconds")))
        };
        match flag.as_str() {
            "--addr" => settings.addr = value(),
            "--conns" => settings.conns = count(value()),
            "--size" => settings.size = count(value()),
            "--pipeline" => settings.pipeline = count(value()),
            "--duration" => settings.duration = seconds(value()),
            "--warmup" => settings.warmup = seconds(value()),
            "--loops" => settings.loops = count(value()),
            "--backend" => settings.backend = parse_backend(&value(), |p| usage(p)),
            "--tls-ca" => settings.tls_ca = Some(value()),
            "--tls-name" => settings.tls_name = value(),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    settings
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "loadgen",
        &format!(
            "usage: loadgen [--addr tcp://HOST:PORT] [--conns N] [--size BYTES] [--pipeline N] \
         [--duration SECONDS] [--warmup SECONDS] [--loops N] [--tls-ca PEM [--tls-name NAME]] \
         {BACKEND_USAGE}"
        ),
        problem,
    )
}
