//! netloom: Go's netpoller and gnet's multi-reactor engine, in Rust, on one
//! shared epoll core.
//!
//! | layer | module | what it is |
//! |-------|--------|------------|
//! | poller | `sys` | epoll (Linux) or kqueue (macOS, FreeBSD) selector, its waker, socket syscalls |
//! | reactor | `reactor` | per-loop slab with generation-checked [`Token`]s, unique per engine (Go's `pollDesc`), timer heap, cross-thread inbox, load balancer, the loop group (stop flag, counts, threads) |
//! | sockets | `listen` | listen URLs, binding listeners and UDP sockets, socket options |
//! | event loop | `event_loop` | one thread: poll, dispatch, drain inbox, fire timers; carries out each connection's state machine |
//! | engine | [`Engine`], [`Handler`], [`Options`] | the callback front door: binding, start, stop |
//! | statistics | [`Stats`] | per-loop counters written by their loop only ([`Engine::stats`]), their Prometheus text exposition |
//! | transports | [`Addr`], [`Transport`] | TCP, Unix domain streams and UDP (`recvmmsg`/`sendmmsg`) on the same loops |
//! | client | [`Client`] | non-blocking outbound connects on the same loops |
//! | connection | [`Conn`], [`ConnHandle`] | the lifecycle as a pure state machine (`conn::state`), the callback view and the thread-safe handle |
//! | codecs | [`codec`] | line, delimiter, fixed-length and length-field framing; pure, no I/O |
//! | framed adapter | [`Framed`] | a codec in front of a [`FrameHandler`]: `on_frame` per frame |
//! | worker pool | [`pool`] | bounded threads for blocking work, per-connection ordering |
//! | async front-end | [`rt`] | a task per connection on the same poller, records, timers and inbox; Go's deadlines |
//! | TLS | `tls` (feature `tls`) | rustls's unbuffered API behind one session type; acceptor and connector configs |
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
//! Platforms: Linux (epoll; tested), macOS and FreeBSD (kqueue; build-checked
//! in CI). Any other target is a compile error. Options a platform lacks
//! (`pin_loops` on macOS, `bind_device` on FreeBSD, `tcp_defer_accept` off
//! Linux) are [`Error::InvalidOption`] at start-up, and abstract Unix names
//! (`unix://@name`) exist on Linux only.

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
mod listen;
mod options;
pub mod pool;
pub mod proxy_protocol;
mod reactor;
pub mod rt;
mod stats;
mod sys;
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
pub mod tls;
mod unwind;

pub use addr::{Addr, PeerCred, Transport, UnixAddr};
pub use client::Client;
pub use conn::{Action, Conn, ConnHandle, Writer};
pub use engine::Handler;
pub use engine::{run, Engine, EngineBuilder};
pub use error::{Error, Result, TlsError};
pub use framed::{FrameConn, FrameContext, FrameHandler, Framed};
pub use listen::ListenerOptions;
pub use options::{Backend, MulticastInterface, Options};
pub use reactor::balancer::LoadBalancer;
pub use reactor::token::Token;
pub use stats::{ErrorCounts, LoopStats, Stats};
