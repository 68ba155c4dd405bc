//! The netloom side of the RESP server: the handler that runs every complete
//! command of a read and answers them in order, the bounds on what clients
//! make it hold, and the ticker that expires keys.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netloom::{Action, Conn, Engine, Error, Handler, Options};

use crate::commands::{execute, Args, Flow};
use crate::resp::{self, CommandParser, Parsed, MAX_BULK_LEN};
use crate::store::Store;

/// Most reply bytes a connection may have waiting to be sent (Redis's
/// `client-output-buffer-limit`), so a client that pipelines reads of big
/// values without reading the replies cannot make the server hold them all.
/// A command whose reply would pass it is answered with an error instead
/// (the connection stays; earlier and later replies are unaffected).
pub const MAX_PENDING_OUTPUT: usize = 256 * 1024 * 1024;
/// Default bound on the bytes of unfinished commands all connections
/// together make the server hold (each one alone may hold up to one command
/// of the largest bulk size).
pub const DEFAULT_MAX_PENDING_INPUT: usize = 128 * 1024 * 1024;
/// Replies are handed to the connection whenever a batch has built this
/// many, so a long pipeline does not build all of them in the scratch buffer
/// first.
const FLUSH_AT: usize = 1024 * 1024;
/// A loop's reply buffer is given back to the allocator when a batch grew it
/// past this, so one burst does not pin its memory.
const KEPT_OUTBOUND_CAPACITY: usize = 256 * 1024;
/// How often the ticker removes expired keys (Redis's default `hz` is 10).
const EXPIRY_PERIOD: Duration = Duration::from_millis(100);
/// Deadlines looked at per shard per tick: bounds the time one tick takes.
const EXPIRY_BUDGET: usize = 256;

thread_local! {
    /// Each loop's reply scratch: the replies of one batch, handed to the
    /// connection with one write (per [`FLUSH_AT`] bytes).
    static REPLIES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A RESP2 server over a [`Store`] shared by all loops.
pub struct RedisServer {
    store: Store,
    /// Bytes of unfinished commands held for all connections.
    pending_input: AtomicUsize,
    max_pending_input: usize,
}

/// Per-connection state.
#[derive(Debug, Default)]
pub struct RedisConn {
    /// The command being received, parsed as far as it has arrived.
    parser: CommandParser,
    /// What this connection counts in [`RedisServer::pending_input`].
    held: usize,
}

/// Why a batch of commands stopped.
enum Stop {
    /// The input ends with an unfinished command (or nothing).
    Partial,
    /// The replies reached [`FLUSH_AT`]: hand them over, then go on.
    Flush,
    /// `QUIT`, or input that is not RESP: answer, then close.
    Close,
}

impl RedisServer {
    /// A server with an empty store sized for `loops` event loops, holding
    /// at most [`DEFAULT_MAX_PENDING_INPUT`] bytes of unfinished commands.
    pub fn new(loops: usize) -> Self {
        RedisServer {
            store: Store::for_loops(loops),
            pending_input: AtomicUsize::new(0),
            max_pending_input: DEFAULT_MAX_PENDING_INPUT,
        }
    }

    /// Holds at most `bytes` of unfinished commands for all connections
    /// together. Past it, a connection whose unfinished command grows gets
    /// `-ERR` and is closed, which releases what it held.
    pub fn max_pending_input(mut self, bytes: usize) -> Self {
        self.max_pending_input = bytes;
        self
    }

    /// The engine options this server needs: the ticker for active expiry,
    /// and room for one whole command of the largest bulk size.
    pub fn options(loops: usize) -> Options {
        Options::default()
            .loops(loops)
            .ticker(true)
            .max_inbound(MAX_BULK_LEN + 1024 * 1024)
    }

    /// Runs the complete commands at the front of `input`, from `*consumed`
    /// on, appending their replies to `out`; `room` is how many reply bytes
    /// the connection may still queue.
    fn run_commands(
        &self,
        parser: &mut CommandParser,
        input: &[u8],
        consumed: &mut usize,
        room: usize,
        out: &mut Vec<u8>,
    ) -> Stop {
        // One clock read per batch: the commands of a batch run at the same
        // instant.
        let now = self.store.now();
        while *consumed < input.len() {
            let rest = &input[*consumed..];
            let len = match parser.parse(rest) {
                Ok(Parsed::Partial) => return Stop::Partial,
                Ok(Parsed::Command { len }) => len,
                Err(e) => {
                    // After a protocol error the rest of the input cannot be
                    // framed: answer, then close, as Redis does.
                    resp::error(out, &format!("ERR {e}"));
                    return Stop::Close;
                }
            };
            *consumed += len;
            let args = Args::new(rest, parser.args());
            if args.is_empty() {
                continue;
            }
            let before = out.len();
            let flow = execute(&self.store, &args, now, out);
            if out.len() > room {
                out.truncate(before);
                resp::error(
                    out,
                    &format!(
                        "ERR reply would pass the {} MiB of replies a client may leave unread",
                        MAX_PENDING_OUTPUT >> 20
                    ),
                );
            }
            if flow == Flow::Close {
                return Stop::Close;
            }
            if out.len() >= FLUSH_AT {
                return Stop::Flush;
            }
        }
        Stop::Partial
    }

    /// Takes what `conn` holds of unfinished commands out of the server's
    /// total: it is closing, and its input is discarded.
    fn release_input(&self, conn: &mut Conn<'_, RedisConn>) {
        conn.discard(usize::MAX);
        let held = std::mem::take(&mut conn.context_mut().held);
        self.pending_input.fetch_sub(held, Ordering::Relaxed);
    }

    /// Counts what `conn` now holds of unfinished commands in the server's
    /// total; false if it grew while the total is over the bound.
    fn account_input(&self, conn: &mut Conn<'_, RedisConn>) -> bool {
        let held = conn.inbound_len() + conn.context().parser.held_bytes();
        let before = std::mem::replace(&mut conn.context_mut().held, held);
        if held <= before {
            self.pending_input
                .fetch_sub(before - held, Ordering::Relaxed);
            return true;
        }
        let total = self
            .pending_input
            .fetch_add(held - before, Ordering::Relaxed)
            + held
            - before;
        total <= self.max_pending_input
    }
}

impl Handler for RedisServer {
    type Context = RedisConn;

    /// Active expiry, on loop 0; reads of expired keys remove them anyway.
    fn on_tick(&self, _: &Engine) -> (Duration, Action) {
        let more_due = self.store.expire_due(self.store.now(), EXPIRY_BUDGET);
        // Come back soon while a backlog of expired keys remains.
        let next = if more_due {
            Duration::from_millis(1)
        } else {
            EXPIRY_PERIOD
        };
        (next, Action::None)
    }

    fn on_traffic(&self, conn: &mut Conn<'_, RedisConn>) -> Action {
        // The parser moves out while `peek` borrows the connection.
        let mut parser = std::mem::take(&mut conn.context_mut().parser);
        let mut consumed = 0;
        let mut close = false;
        let written = REPLIES.with_borrow_mut(|out| {
            loop {
                out.clear();
                let room = MAX_PENDING_OUTPUT.saturating_sub(conn.outbound_len());
                let input = conn.peek(usize::MAX);
                let stop = self.run_commands(&mut parser, input, &mut consumed, room, out);
                if !out.is_empty() && conn.write(out).is_err() {
                    return false;
                }
                match stop {
                    Stop::Flush => continue,
                    Stop::Partial => break,
                    Stop::Close => {
                        close = true;
                        break;
                    }
                }
            }
            if out.capacity() > KEPT_OUTBOUND_CAPACITY {
                *out = Vec::new();
            }
            true
        });
        conn.discard(consumed);
        parser.release_spare();
        conn.context_mut().parser = parser;
        if !written || close {
            self.release_input(conn);
            return Action::Close;
        }
        if !self.account_input(conn) {
            log::warn!(
                "redis: unfinished commands pass {} bytes; closing {}",
                self.max_pending_input,
                conn.peer_addr()
            );
            let _ = conn.write(b"-ERR server input buffer full: too many unfinished commands\r\n");
            // Released now, not when the close completes (after the reply is
            // flushed and the client has stopped sending): others may go on.
            self.release_input(conn);
            return Action::Close;
        }
        Action::None
    }

    fn on_close(&self, conn: &mut Conn<'_, RedisConn>, _: Option<&Error>) -> Action {
        self.release_input(conn);
        Action::None
    }
}
