//! The netloom side of the RESP server: the handler that runs every complete
//! command of a read and answers them with one write, and the ticker that
//! expires keys.

use std::cell::RefCell;
use std::ops::Range;
use std::time::Duration;

use netloom::{Action, Conn, Engine, Handler, Options};

use crate::commands::{execute, Args, Flow};
use crate::resp::{self, parse_command, Parsed, MAX_BULK_LEN};
use crate::store::Store;

/// Most replies a connection may have waiting to be sent; past it the
/// connection is closed (Redis's `client-output-buffer-limit`), so a client
/// that pipelines reads of big values without reading the replies cannot
/// make the server hold them all.
pub const MAX_PENDING_OUTPUT: usize = 256 * 1024 * 1024;
/// How often the ticker removes expired keys (Redis's default `hz` is 10).
const EXPIRY_PERIOD: Duration = Duration::from_millis(100);
/// Deadlines looked at per shard per tick: bounds the time one tick takes.
const EXPIRY_BUDGET: usize = 256;
/// A loop's reply buffer is given back to the allocator when a batch grew it
/// past this, so one burst does not pin its memory.
const KEPT_OUTBOUND_CAPACITY: usize = 256 * 1024;

thread_local! {
    /// Each loop's scratch: the replies of one batch and the argument ranges
    /// of the command being run.
    static SCRATCH: RefCell<(Vec<u8>, Vec<Range<usize>>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A RESP2 server over a [`Store`] shared by all loops.
pub struct RedisServer {
    store: Store,
}

impl RedisServer {
    /// A server with an empty store sized for `loops` event loops.
    pub fn new(loops: usize) -> Self {
        RedisServer {
            store: Store::for_loops(loops),
        }
    }

    /// The engine options this server needs: the ticker for active expiry,
    /// and room for one whole command of the largest bulk size.
    pub fn options(loops: usize) -> Options {
        Options::default()
            .loops(loops)
            .ticker(true)
            .max_inbound(MAX_BULK_LEN + 1024 * 1024)
    }
}

impl Handler for RedisServer {
    type Context = ();

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

    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        SCRATCH.with_borrow_mut(|(out, ranges)| {
            out.clear();
            let input = conn.peek(usize::MAX);
            // One clock read per batch: the commands of a batch run at the
            // same instant.
            let now = self.store.now();
            let pending = conn.outbound_len();
            let mut consumed = 0;
            let mut close = false;
            while consumed < input.len() {
                let rest = &input[consumed..];
                match parse_command(rest, ranges) {
                    Ok(Parsed::Partial) => break,
                    Ok(Parsed::Command { len }) => {
                        consumed += len;
                        let args = Args::new(rest, ranges);
                        if args.is_empty() {
                            continue;
                        }
                        if execute(&self.store, &args, now, out) == Flow::Close {
                            close = true;
                            break;
                        }
                        if pending + out.len() > MAX_PENDING_OUTPUT {
                            log::warn!(
                                "redis: {} has over {MAX_PENDING_OUTPUT} bytes of replies waiting; closing",
                                conn.peer_addr()
                            );
                            out.clear();
                            close = true;
                            break;
                        }
                    }
                    Err(e) => {
                        resp::error(out, &format!("ERR {e}"));
                        close = true;
                        break;
                    }
                }
            }
            conn.discard(consumed);
            let written = out.is_empty() || conn.write(out).is_ok();
            if out.capacity() > KEPT_OUTBOUND_CAPACITY {
                *out = Vec::new();
            }
            if !written || close {
                // After a protocol error the rest of the input cannot be
                // framed: answer, then close, as Redis does.
                conn.discard(usize::MAX);
                return Action::Close;
            }
            Action::None
        })
    }
}
