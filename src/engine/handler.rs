//! The callback interface of the engine.

use std::time::Duration;

use crate::{Action, Conn, Engine, Error};

/// The event handler of an engine: gnet's `EventHandler`, with a typed
/// per-connection context.
///
/// One handler value serves every loop, so it is `Send + Sync`; per-connection
/// state belongs in [`Handler::Context`], which never leaves its loop.
///
/// # Threads and re-entrancy
/// - `on_open`, `on_traffic`, `on_eof` and `on_close` run on the loop that owns the
///   connection, one at a time per loop: a connection's callbacks never run
///   concurrently with each other.
/// - `on_tick` runs on loop 0, between that loop's other callbacks (never
///   concurrently with them).
/// - `on_boot` runs on the thread that starts the engine, before any loop runs;
///   `on_shutdown` runs once, on the last loop thread to exit, after every
///   connection was closed.
/// - Inside a callback, use the [`Conn`] you were given; from other threads use
///   a [`ConnHandle`](crate::ConnHandle). Blocking in a callback stalls every
///   connection of that loop: hand blocking work to a worker pool.
/// - A panic in `on_open`, `on_traffic` or `on_close` closes that connection
///   only (its `on_close` sees [`Error::CallbackPanic`]); the loop keeps serving.
///   This needs the default `panic = "unwind"`.
/// - UDP: each loop's UDP socket is the `Conn` of an `on_traffic` call per
///   datagram (see [`Conn`]'s UDP section); it gets no `on_open` or
///   `on_close`, and neither an action nor a panic closes it.
///
/// # Examples
/// ```no_run
/// use netloom::{Action, Conn, Handler};
///
/// struct Echo;
/// impl Handler for Echo {
///     type Context = ();
///     fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
///         let data = conn.next(usize::MAX).to_vec();
///         match conn.write(&data) {
///             Ok(()) => Action::None,
///             Err(_) => Action::Close,
///         }
///     }
/// }
/// netloom::run(Echo, "tcp://127.0.0.1:9000", netloom::Options::default()).unwrap();
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Per-connection state, created with `Default` before `on_open`.
    type Context: Default + 'static;

    /// Called once, before the loops start. The engine's addresses are bound.
    fn on_boot(&self, engine: &Engine) -> Action {
        let _ = engine;
        Action::None
    }

    /// A connection was accepted. Bytes written here are the greeting: they
    /// go out before anything else. On a TLS address
    /// (`EngineBuilder::bind_tls`, `Client::dial_tls`) it runs once the
    /// handshake has finished, and `Conn::tls` tells what it negotiated.
    fn on_open(&self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::None
    }

    /// Bytes arrived (or the connection was woken with [`Conn::wake`]).
    ///
    /// The connection's inbound bytes are everything received and not yet
    /// consumed. Bytes left unconsumed when this returns are kept, and
    /// `on_traffic` is called again **only** when more bytes arrive or the
    /// connection is woken. So consume every complete message before
    /// returning (a codec's decode loop does), or call [`Conn::wake`].
    fn on_traffic(&self, conn: &mut Conn<'_, Self::Context>) -> Action;

    /// The peer finished sending (its FIN was read; every byte before it
    /// went to `on_traffic`). What the connection does next is the
    /// handler's choice:
    ///
    /// - [`Action::Close`] (the default): close once what was written is
    ///   flushed. Right for request/response protocols whose replies are
    ///   all written by the time their requests are read (echo).
    /// - [`Action::None`]: stay half-open and keep writing, from callbacks
    ///   and [`ConnHandle`](crate::ConnHandle)s alike, while the peer still
    ///   reads (Go's and tokio's default, netty's `ALLOW_HALF_CLOSURE`): for
    ///   replies still being made by a worker pool, a task or the other
    ///   side of a proxy. Close it later with [`Conn::close`], a handle's
    ///   `close`, or [`Conn::shutdown_write`] (both directions done closes
    ///   it). A half-open connection from which nothing reaches the kernel
    ///   for a whole `Options::half_open_timeout` is closed with
    ///   [`Error::HalfOpenTimeout`], so a peer that half-closes and stops
    ///   reading cannot pin it.
    ///
    /// Runs on the connection's loop; `on_traffic` is not called again.
    fn on_eof(&self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::Close
    }

    /// The connection closed: `err` is `None` for an orderly close (either
    /// side) and the cause otherwise. Writes are refused from here on.
    /// A TLS connection whose handshake failed gets this without `on_open`
    /// (as a failed dial does); one whose peer sent FIN without
    /// `close_notify` gets [`Error::TlsTruncated`] after `on_eof`.
    fn on_close(&self, conn: &mut Conn<'_, Self::Context>, err: Option<&Error>) -> Action {
        let _ = (conn, err);
        Action::None
    }

    /// The ticker fired (enable it with `Options::ticker`). Returns the delay
    /// until the next tick and an action (only `Shutdown` means anything here).
    fn on_tick(&self, engine: &Engine) -> (Duration, Action) {
        let _ = engine;
        (Duration::from_secs(1), Action::None)
    }

    /// The engine stopped: every loop exited and every connection was closed.
    fn on_shutdown(&self, engine: &Engine) {
        let _ = engine;
    }
}

/// A shared handler: keep an `Arc` to read the handler's state from outside
/// (statistics, registries) while the engine runs it.
///
/// ```no_run
/// # use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// # use netloom::{Action, Conn, Handler};
/// #[derive(Default)]
/// struct Stats { opened: AtomicUsize }
/// impl Handler for Stats {
///     type Context = ();
///     fn on_open(&self, _: &mut Conn<'_, ()>) -> Action {
///         self.opened.fetch_add(1, Ordering::Relaxed);
///         Action::None
///     }
///     fn on_traffic(&self, _: &mut Conn<'_, ()>) -> Action { Action::None }
/// }
/// let stats = Arc::new(Stats::default());
/// let engine = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(stats.clone())?;
/// println!("{} opened", stats.opened.load(Ordering::Relaxed));
/// # Ok::<(), netloom::Error>(())
/// ```
impl<H: Handler> Handler for std::sync::Arc<H> {
    type Context = H::Context;

    fn on_boot(&self, engine: &Engine) -> Action {
        (**self).on_boot(engine)
    }
    fn on_open(&self, conn: &mut Conn<'_, Self::Context>) -> Action {
        (**self).on_open(conn)
    }
    fn on_traffic(&self, conn: &mut Conn<'_, Self::Context>) -> Action {
        (**self).on_traffic(conn)
    }
    fn on_eof(&self, conn: &mut Conn<'_, Self::Context>) -> Action {
        (**self).on_eof(conn)
    }
    fn on_close(&self, conn: &mut Conn<'_, Self::Context>, err: Option<&Error>) -> Action {
        (**self).on_close(conn, err)
    }
    fn on_tick(&self, engine: &Engine) -> (Duration, Action) {
        (**self).on_tick(engine)
    }
    fn on_shutdown(&self, engine: &Engine) {
        (**self).on_shutdown(engine)
    }
}
