// cargo run --release --example pool -- --addr tcp://127.0.0.1:9200 --loops 2 --workers 8 --queue 64
//! The worker-pool pattern: event loops decode requests, a [`WorkerPool`]
//! does the blocking or CPU-heavy part, and each job answers through its
//! connection's thread-safe [`ConnHandle`].
//!
//! The protocol is one request per line, one reply line per request, replies
//! in request order on each connection:
//!
//! | request | work (on a pool worker) | reply |
//! |---------|-------------------------|-------|
//! | `SLOW <ms> <text>` | sleeps `ms` milliseconds (at most 10,000) | `OK <text>` |
//! | `HASH <rounds> <text>` | `rounds` rounds of a 64-bit hash over `text` (at most 10^9) | `OK <16 hex digits> <text>` |
//! | `PANIC <text>` | panics (the pool contains it) | `ERR job panicked` |
//!
//! Anything else gets `ERR <why>`. When every worker is busy and the pool's
//! queue is full the request is refused at once with `ERR busy`: the loop
//! never waits for the pool.
//!
//! Order: each connection submits its jobs through its own [`SerialQueue`],
//! so its jobs run one at a time, in request order, while other
//! connections' jobs use the other workers. A reply the loop gives at once
//! (`ERR busy`, a malformed request) must not overtake the replies of jobs
//! still running for the same connection, so it rides behind the newest of
//! them: that job writes it right after its own reply.
//!
//! Try it:
//!
//! ```text
//! cargo run --release --example pool &
//! printf 'SLOW 300 first\nHASH 1000000 second\nPANIC third\nfourth\n' | nc -q1 127.0.0.1 9200
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use netloom::codec::LineCodec;
use netloom::pool::{PoolError, SerialQueue, WorkerPool};
use netloom::{
    Action, ConnHandle, Engine, Error, FrameConn, FrameContext, FrameHandler, Framed, Options,
};
#[path = "support/usage.rs"]
mod usage;
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

/// The longest `SLOW` request accepted.
const MAX_SLEEP_MS: u64 = 10_000;
/// The most `HASH` rounds accepted.
const MAX_ROUNDS: u64 = 1_000_000_000;
/// Longest request line.
const MAX_LINE: usize = 4096;
/// Immediate replies held behind a running job beyond which the connection
/// stops being read until that job has answered.
const MAX_HELD_REPLIES: usize = 64 * 1024;

/// Name prefix of the pool's threads.
const WORKER_NAME: &str = "pool-worker";

/// A connection of this server, as seen from a pool job.
type Handle = ConnHandle<FrameContext<LineCodec, Session>>;

/// What one connection keeps between requests.
#[derive(Default)]
struct Session {
    /// Runs this connection's jobs in request order.
    strand: Option<SerialQueue>,
    /// The reply slot of the newest job submitted on this connection.
    newest_job: Option<Arc<ReplySlot>>,
}

/// Where a job's reply meets the immediate replies that must follow it.
#[derive(Default)]
struct ReplySlot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// The job has written its reply; later replies go straight out.
    answered: bool,
    /// Reply lines of later requests, written right after the job's reply.
    held: Vec<u8>,
    /// Reading was paused because `held` grew too long.
    reading_paused: bool,
    /// The client has finished sending: close once this job has answered.
    close_when_answered: bool,
}

impl ReplySlot {
    // Nothing panics while the lock is held, so a poisoned lock is intact.
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A job's promise to answer: sends the reply, and if the job panics
/// before it could, answers `ERR job panicked` while unwinding so the
/// client is not left waiting.
struct Answer {
    slot: Arc<ReplySlot>,
    handle: Handle,
    sent: bool,
}

impl Answer {
    fn send(mut self, reply: &[u8]) {
        self.deliver(reply);
        self.sent = true;
    }

    /// Gives up answering: the connection is gone.
    fn abandon(mut self) {
        self.sent = true;
    }

    /// Writes `reply` and the replies held behind it in one write.
    fn deliver(&self, reply: &[u8]) {
        let mut state = self.slot.lock();
        let mut out = Vec::with_capacity(reply.len() + 1 + state.held.len());
        out.extend_from_slice(reply);
        out.push(b'\n');
        out.append(&mut state.held);
        state.answered = true;
        // Written under the lock, so a reply the loop sends after seeing
        // `answered` is queued behind this one.
        let written = self.handle.async_write(out);
        if state.reading_paused {
            let _ = self.handle.resume_reading();
        }
        if state.close_when_answered {
            // Behind the reply: the close flushes it first.
            let _ = self.handle.close();
        }
        drop(state);
        match written {
            Ok(()) | Err(Error::ConnClosed) | Err(Error::EngineStopped) => {}
            // The client does not read its replies: drop it.
            Err(_) => {
                let _ = self.handle.close();
            }
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if !self.sent {
            self.deliver(b"ERR job panicked");
        }
    }
}

/// A request decoded on the loop, to be carried out on a worker.
enum Request {
    Sleep { ms: u64, text: String },
    Hash { rounds: u64, text: String },
    Panic { text: String },
}

impl Request {
    fn parse(line: &[u8]) -> Result<Request, String> {
        let line = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_string())?;
        let mut words = line.splitn(3, ' ');
        let command = words.next().unwrap_or_default();
        let mut number = |max: u64| -> Result<u64, String> {
            let word = words.next().unwrap_or_default();
            match word.parse::<u64>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(format!(
                    "{command} takes a number up to {max}, not {word:?}"
                )),
            }
        };
        Ok(match command {
            "SLOW" => Request::Sleep {
                ms: number(MAX_SLEEP_MS)?,
                text: words.next().unwrap_or_default().to_string(),
            },
            "HASH" => Request::Hash {
                rounds: number(MAX_ROUNDS)?,
                text: words.next().unwrap_or_default().to_string(),
            },
            "PANIC" => Request::Panic {
                text: line["PANIC".len()..].trim_start().to_string(),
            },
            _ => return Err(format!("unknown command {command:?}")),
        })
    }

    /// Does the work; blocks the calling worker.
    fn execute(self) -> String {
        match self {
            Request::Sleep { ms, text } => {
                thread::sleep(Duration::from_millis(ms));
                format!("OK {text}")
            }
            Request::Hash { rounds, text } => {
                format!("OK {:016x} {text}", hash_rounds(text.as_bytes(), rounds))
            }
            Request::Panic { text } => panic!("PANIC request: {text}"),
        }
    }
}

/// FNV-1a over `text`, then `rounds` rounds of splitmix64's mixer: work
/// that cannot be skipped or done in parallel.
fn hash_rounds(text: &[u8], rounds: u64) -> u64 {
    let mut h = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    for _ in 0..rounds {
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

struct PoolServer {
    pool: WorkerPool,
}

impl PoolServer {
    /// Sends a reply decided on the loop, behind the replies of this
    /// connection's jobs that have not answered yet.
    fn reply_in_order(&self, conn: &mut FrameConn<'_, Self>, reply: &str) -> Action {
        let Some(slot) = conn.context().newest_job.clone() else {
            // No job ever ran here: nothing can be ahead of this reply.
            return match conn.send_frame(reply.as_bytes()) {
                Ok(()) => Action::None,
                Err(_) => Action::Close,
            };
        };
        let mut state = slot.lock();
        if !state.answered {
            state.held.extend_from_slice(reply.as_bytes());
            state.held.push(b'\n');
            if state.held.len() > MAX_HELD_REPLIES {
                // Resumed by the job when it answers (an older job's answer
                // may resume it first: then the next request pauses again).
                state.reading_paused = true;
                conn.pause_reading();
            }
            return Action::None;
        }
        drop(state);
        // The job's reply may still be on its way to this loop through the
        // inbox; a handle write is queued behind it, a direct write is not.
        match conn.handle().async_write(format!("{reply}\n").into_bytes()) {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }
}

impl FrameHandler for PoolServer {
    type Codec = LineCodec;
    type Context = Session;

    fn new_codec(&self) -> LineCodec {
        // An over-long line closes the connection as soon as it is
        // detected instead of being skipped up to its end.
        LineCodec::builder()
            .max_length(MAX_LINE)
            .fail_fast(true)
            .build()
    }

    fn on_open(&self, conn: &mut FrameConn<'_, Self>) -> Action {
        conn.context_mut().strand = Some(self.pool.serial());
        Action::None
    }

    fn on_frame(&self, conn: &mut FrameConn<'_, Self>, line: &[u8]) -> Action {
        let request = match Request::parse(line) {
            Ok(request) => request,
            Err(why) => return self.reply_in_order(conn, &format!("ERR {why}")),
        };
        let slot = Arc::new(ReplySlot::default());
        let handle = conn.handle();
        let job_slot = slot.clone();
        let job = move || {
            // Made inside the job: a job refused by the pool is dropped
            // without answering; the loop answers `ERR busy` for it.
            let answer = Answer {
                slot: job_slot,
                handle,
                sent: false,
            };
            if answer.handle.is_closed() {
                // Nobody to answer: skip the work.
                answer.abandon();
                return;
            }
            let reply = request.execute();
            answer.send(reply.as_bytes());
        };
        let strand = conn.context().strand.as_ref().expect("set in on_open");
        match strand.try_submit(job) {
            Ok(()) => {
                conn.context_mut().newest_job = Some(slot);
                Action::None
            }
            Err(PoolError::Full(_)) => self.reply_in_order(conn, "ERR busy"),
            Err(e) => {
                let reply = format!("ERR {e}");
                self.reply_in_order(conn, &reply)
            }
        }
    }

    /// The client has sent everything (`printf ... | nc -q1`): stay
    /// half-open until the newest job has answered (the jobs run in order,
    /// so every older one has too), then close.
    fn on_eof(&self, conn: &mut FrameConn<'_, Self>) -> Action {
        let Some(slot) = conn.context().newest_job.clone() else {
            return Action::Close;
        };
        let mut state = slot.lock();
        if state.answered {
            // A reply still on its way from a handle is flushed first.
            return Action::Close;
        }
        state.close_when_answered = true;
        Action::None
    }

    fn on_close(&self, conn: &mut FrameConn<'_, Self>, err: Option<&Error>) -> Action {
        if let Some(e) = err {
            eprintln!("pool: {} closed: {e}", conn.peer_addr());
        }
        Action::None
    }
}

fn main() {
    let mut addr = "tcp://127.0.0.1:9200".to_string();
    let mut options = Options::default().stop_on_signals(true);
    let mut workers = 8;
    let mut queue = 64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |v: String| -> usize {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag} takes a number")))
        };
        match flag.as_str() {
            "--addr" => addr = value(),
            "--loops" => options = options.loops(number(value())),
            "--workers" => {
                // The pool runs at least one worker: 0 would be a lie.
                workers = number(value());
                if workers == 0 {
                    usage("--workers must be at least 1");
                }
            }
            "--queue" => queue = number(value()),
            "--backend" => options = options.backend(parse_backend(&value(), |p| usage(p))),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    // A job's panic is contained and reported by the pool's panic handler;
    // the default hook's message and backtrace for it would only be noise.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let on_worker = thread::current()
            .name()
            .is_some_and(|name| name.starts_with(WORKER_NAME));
        if !on_worker {
            default_hook(info);
        }
    }));
    let pool = WorkerPool::builder()
        .max_workers(workers)
        .queue_capacity(queue)
        .name(WORKER_NAME)
        .panic_handler(|message| eprintln!("pool: a job panicked: {message}"))
        .build();
    let engine = Engine::builder()
        .bind(&addr)
        .options(options)
        .start(Framed(PoolServer { pool: pool.clone() }))
        .unwrap_or_else(|e| {
            eprintln!("pool: {e}");
            std::process::exit(1);
        });
    println!(
        "pool: listening on {} with {} loops, {workers} workers, queue {queue}",
        engine.local_addrs()[0],
        engine.loops()
    );
    let outcome = engine.wait();
    // Jobs still queued only answer connections that are gone. Give them a
    // moment, then exit without waiting for the rest (dropping the last pool
    // handle would wait for every one of them).
    pool.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = outcome {
        eprintln!("pool: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "pool",
        &format!("usage: pool [--addr tcp://HOST:PORT] [--loops N] [--workers N] [--queue N] {BACKEND_USAGE}"),
        problem,
    )
}
