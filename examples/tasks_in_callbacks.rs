// cargo run --release --example tasks_in_callbacks -- --addr tcp://127.0.0.1:9000 --idle-ms 30000
//! Callbacks and async tasks on the same loops: a line server whose
//! callbacks spawn tasks on their own loop for work that waits.
//!
//! | request | reply |
//! |---------|-------|
//! | `PING` | `PONG`, from the callback at once |
//! | `SLEEP <ms>` (at most 10000) | `WOKE <ms>` after that long, from a task; the loop serves everyone else meanwhile |
//! | `SLEEP` with anything else | `ERR SLEEP takes milliseconds from 0 to 10000` |
//! | anything else | `ERR unknown command` |
//!
//! Each connection also has a watchdog task that closes it after
//! `--idle-ms` without a request; `on_close` aborts the watchdog. Neither
//! task needs a thread, a lock or `Send`: they share the connection's
//! last-activity cell through an `Rc`, because they never leave the loop.
//!
//! A client that sends its requests and then shuts down its write side
//! (`nc -q1`, `printf ... | socat`) still gets every reply: `on_eof` keeps
//! the connection half-open while `SLEEP` tasks are pending, and the last
//! one to answer closes it.
//!
//! Try it:
//!
//! ```text
//! cargo run --release --example tasks_in_callbacks &
//! printf 'SLEEP 500\nPING\n' | nc -q1 127.0.0.1 9000    # PONG, then WOKE 500
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use netloom::rt::{self, JoinHandle};
use netloom::{Action, Conn, Engine, Error, Handler, Options};
#[path = "support/serve.rs"]
mod serve;
use serve::serve;
#[path = "support/usage.rs"]
mod usage;
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

/// Longest line accepted; a longer one closes the connection.
const MAX_LINE: usize = 1024;
/// Longest `SLEEP` accepted.
const MAX_SLEEP_MS: u64 = 10_000;

struct Server {
    idle: Duration,
}

/// Per connection: when it last sent a request, its watchdog, and its
/// replies still to come.
#[derive(Default)]
struct Session {
    last_request: Rc<Cell<Option<Instant>>>,
    watchdog: Option<JoinHandle<()>>,
    pending: Rc<Pending>,
}

/// The `SLEEP` replies a connection still owes, and whether the client
/// has finished sending (then the last reply closes the connection).
#[derive(Default)]
struct Pending {
    sleeps: Cell<usize>,
    eof: Cell<bool>,
}

impl Handler for Server {
    type Context = Session;

    fn on_open(&self, conn: &mut Conn<'_, Session>) -> Action {
        let last_request = conn.context().last_request.clone();
        last_request.set(Some(Instant::now()));
        let handle = conn.handle();
        let idle = self.idle;
        let watchdog = rt::spawn_local(async move {
            loop {
                let since = last_request.get().unwrap_or_else(Instant::now);
                if since.elapsed() >= idle {
                    let _ = handle.async_write(b"ERR idle\n".to_vec());
                    let _ = handle.close();
                    return;
                }
                rt::sleep_until(since + idle).await;
            }
        });
        conn.context_mut().watchdog = Some(watchdog);
        Action::None
    }

    fn on_traffic(&self, conn: &mut Conn<'_, Session>) -> Action {
        loop {
            let buffered = conn.peek(usize::MAX);
            let Some(end) = buffered.iter().position(|&b| b == b'\n') else {
                if buffered.len() > MAX_LINE {
                    let _ = conn.write(b"ERR line too long\n");
                    return Action::Close;
                }
                return Action::None;
            };
            let line = String::from_utf8_lossy(&buffered[..end]).trim().to_string();
            conn.discard(end + 1);
            conn.context().last_request.set(Some(Instant::now()));
            if let Err(e) = self.answer(conn, &line) {
                eprintln!("tasks_in_callbacks: {}: {e}", conn.peer_addr());
                return Action::Close;
            }
        }
    }

    fn on_eof(&self, conn: &mut Conn<'_, Session>) -> Action {
        let pending = &conn.context().pending;
        if pending.sleeps.get() == 0 {
            return Action::Close;
        }
        // Half-open until the last SLEEP task has answered.
        pending.eof.set(true);
        Action::None
    }

    fn on_close(&self, conn: &mut Conn<'_, Session>, _: Option<&Error>) -> Action {
        if let Some(watchdog) = conn.context_mut().watchdog.take() {
            watchdog.abort();
        }
        Action::None
    }
}

impl Server {
    fn answer(&self, conn: &mut Conn<'_, Session>, line: &str) -> netloom::Result<()> {
        let mut words = line.split_ascii_whitespace();
        match (words.next(), words.next().map(str::parse::<u64>)) {
            (Some("PING"), None) => conn.write(b"PONG\n"),
            (Some("SLEEP"), Some(Ok(ms))) if ms <= MAX_SLEEP_MS => {
                // The reply is written by a task on this loop once the sleep
                // is over; other connections are served meanwhile. Replies
                // to later requests may overtake it.
                let handle = conn.handle();
                let pending = conn.context().pending.clone();
                pending.sleeps.set(pending.sleeps.get() + 1);
                rt::spawn_local(async move {
                    rt::sleep(Duration::from_millis(ms)).await;
                    let _ = handle.async_write(format!("WOKE {ms}\n").into_bytes());
                    pending.sleeps.set(pending.sleeps.get() - 1);
                    if pending.sleeps.get() == 0 && pending.eof.get() {
                        // After the reply: the close flushes it first.
                        let _ = handle.close();
                    }
                });
                Ok(())
            }
            // Known command, bad argument: say so rather than "unknown".
            (Some("SLEEP"), _) => {
                let problem = format!("ERR SLEEP takes milliseconds from 0 to {MAX_SLEEP_MS}\n");
                conn.write(problem.as_bytes())
            }
            _ => conn.write(b"ERR unknown command\n"),
        }
    }
}

fn main() {
    let mut addr = "tcp://127.0.0.1:9000".to_string();
    let mut idle_ms = 30_000u64;
    let mut loops = 0;
    let mut backend = netloom::Backend::Auto;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => addr = value(),
            "--idle-ms" => idle_ms = value().parse().unwrap_or_else(|_| usage("bad --idle-ms")),
            "--loops" => loops = value().parse().unwrap_or_else(|_| usage("bad --loops")),
            "--backend" => backend = parse_backend(&value(), |p| usage(p)),
            "--help" | "-h" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let options = Options::default()
        .loops(loops)
        .backend(backend)
        .stop_on_signals(true);
    let server = Server {
        idle: Duration::from_millis(idle_ms),
    };
    let builder = Engine::builder().bind(&addr).options(options);
    serve(
        "tasks_in_callbacks",
        builder,
        server,
        None,
        |_, local| format!("listening on {local}"),
        |_| {},
    );
}

const USAGE: &str = "usage: tasks_in_callbacks [--addr URL (tcp://127.0.0.1:9000)] \
[--idle-ms N (30000)] [--loops N (one per core)]";

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "tasks_in_callbacks",
        &format!("{USAGE} {BACKEND_USAGE}"),
        problem,
    )
}
