//! netloom: Go's netpoller and gnet's multi-reactor engine, in Rust, on one
//! shared epoll core.
//!
//! | layer | module | what it is |
//! |-------|--------|------------|
//! | poller | `sys` | epoll selector, eventfd waker, socket syscalls (Linux) |
//! | descriptor table | [`Token`] | per-loop slab with generation-checked tokens, unique per engine (Go's `pollDesc`) |
//! | timers | `timer` | per-loop min-heap shared by ticker, idle timeouts, close limits |
//! | inbox | `inbox` | lock-free cross-thread queues with an urgent lane, plus the waker |
//! | event loop | `event_loop` | one thread: poll, dispatch, drain inbox, fire timers |
//! | engine | [`Engine`] | listeners, load balancing, socket options, lifecycle |
//! | transports | [`Addr`], [`Transport`] | TCP, Unix domain streams and UDP (`recvmmsg`/`sendmmsg`) on the same loops |
//! | client | [`Client`] | non-blocking outbound connects on the same loops |
//! | connection | [`Conn`], [`ConnHandle`] | callback view and thread-safe handle |
//! | codecs | [`codec`] | line, delimiter, fixed-length and length-field framing; pure, no I/O |
//! | framed adapter | [`Framed`] | a codec in front of a [`FrameHandler`]: `on_frame` per frame |
//! | worker pool | [`pool`] | bounded threads for blocking work, per-connection ordering |
//! | async front-end | [`rt`] | a task per connection on the same poller, records, timers and inbox; Go's deadlines |
//!
//! Start with [`run`] or [`Engine::builder`] and a [`Handler`].
//!
//! ```no_run
//! use netloom::{Action, Conn, Handler, Options};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Context = ();
//!     fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
//!         let data = conn.next(usize::MAX).to_vec();
//!         if conn.write(&data).is_err() {
//!             return Action::Close;
//!         }
//!         Action::None
//!     }
//! }
//!
//! netloom::run(Echo, "tcp://127.0.0.1:9000", Options::default())?;
//! # Ok::<(), netloom::Error>(())
//! ```
//!
//! Platform: Linux (epoll). The poller contract in `src/sys/mod.rs` is what a
//! kqueue backend has to meet.

mod addr;
mod buffer;
mod client;
pub mod codec;
mod conn;
mod datagram;
mod engine;
mod error;
mod event_loop;
mod framed;
mod handler;
mod inbox;
pub mod pool;
pub mod rt;
mod sys;
mod timer;
mod token;
mod unwind;

pub use addr::{Addr, PeerCred, Transport, UnixAddr};
pub use client::Client;
pub use conn::{Conn, ConnHandle, Writer};
pub use engine::{run, Engine, EngineBuilder, LoadBalancer, MulticastInterface, Options};
pub use error::{Error, Result};
pub use framed::{FrameConn, FrameContext, FrameHandler, Framed};
pub use handler::{Action, Handler};
pub use token::Token;
