//! The framed adapter: a [`Codec`] in front of a handler, so the handler sees
//! whole frames (`on_frame`) instead of a byte stream.
//!
//! [`Framed`] turns a [`FrameHandler`] into a [`Handler`]. On every wake-up it
//! decodes **every** complete frame in the connection's inbound bytes and
//! calls `on_frame` for each, in order, before returning: nothing waits for
//! the next packet. Frames are handed out zero-copy, as slices of the loop's
//! read buffer (or of the connection's leftover buffer when a frame spans
//! reads). Replies go through [`Conn::send_frame`], which encodes with the
//! connection's own codec and writes head, body and tail with one `writev`.
//!
//! A decode error ([`CodecError`]: an over-long or corrupt frame) stops the
//! delivery, flushes what was already written, closes the connection and
//! passes [`Error::Codec`] to `on_close`.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::codec::{decode_step, Codec, Decoded};
use crate::conn::Conn;
use crate::{Action, Engine, Error, Handler, Result};

/// A handler for framed connections; wrap it in [`Framed`] to run it.
///
/// Every callback runs on the connection's loop thread, exactly as the
/// [`Handler`] callback of the same name.
///
/// # Examples
///
/// A line echo server (`nc 127.0.0.1 9000`, type lines):
///
/// ```no_run
/// use netloom::codec::LineCodec;
/// use netloom::{Action, FrameConn, FrameHandler, Framed, Options};
///
/// struct LineEcho;
///
/// impl FrameHandler for LineEcho {
///     type Codec = LineCodec;
///     type Context = ();
///
///     fn new_codec(&self) -> LineCodec {
///         LineCodec::new()
///     }
///
///     fn on_frame(&self, conn: &mut FrameConn<'_, Self>, line: &[u8]) -> Action {
///         match conn.send_frame(line) {
///             Ok(()) => Action::None,
///             Err(_) => Action::Close,
///         }
///     }
/// }
///
/// netloom::run(Framed(LineEcho), "tcp://127.0.0.1:9000", Options::default())?;
/// # Ok::<(), netloom::Error>(())
/// ```
pub trait FrameHandler: Send + Sync + 'static {
    /// The codec; each connection gets its own from [`FrameHandler::new_codec`].
    type Codec: Codec + 'static;
    /// Per-connection state, created with `Default` before `on_open`.
    type Context: Default + 'static;

    /// A fresh codec for a new connection.
    fn new_codec(&self) -> Self::Codec;

    /// One complete frame, as the codec cut it (delimiters or headers
    /// stripped if the codec is set to). `frame` is only valid during the
    /// call; copy what must outlive it. The connection's own inbound bytes
    /// belong to the codec meanwhile: [`Conn::inbound_len`] reads 0.
    fn on_frame(&self, conn: &mut FrameConn<'_, Self>, frame: &[u8]) -> Action;

    /// As [`Handler::on_boot`].
    fn on_boot(&self, engine: &Engine) -> Action {
        let _ = engine;
        Action::None
    }

    /// As [`Handler::on_open`]; the codec already exists.
    fn on_open(&self, conn: &mut FrameConn<'_, Self>) -> Action {
        let _ = conn;
        Action::None
    }

    /// As [`Handler::on_eof`]: the peer finished sending (every complete
    /// frame before its FIN was delivered). The default closes once the
    /// replies are flushed; return [`Action::None`] to keep writing.
    fn on_eof(&self, conn: &mut FrameConn<'_, Self>) -> Action {
        let _ = conn;
        Action::Close
    }

    /// As [`Handler::on_close`]; a decode failure arrives as [`Error::Codec`].
    fn on_close(&self, conn: &mut FrameConn<'_, Self>, err: Option<&Error>) -> Action {
        let _ = (conn, err);
        Action::None
    }

    /// As [`Handler::on_tick`].
    fn on_tick(&self, engine: &Engine) -> (Duration, Action) {
        let _ = engine;
        (Duration::from_secs(1), Action::None)
    }

    /// As [`Handler::on_shutdown`].
    fn on_shutdown(&self, engine: &Engine) {
        let _ = engine;
    }
}

/// The connection a [`FrameHandler`] sees: a [`Conn`] whose context is a
/// [`FrameContext`].
pub type FrameConn<'a, H> =
    Conn<'a, FrameContext<<H as FrameHandler>::Codec, <H as FrameHandler>::Context>>;

/// Runs a [`FrameHandler`] as a [`Handler`]: on every wake-up it decodes
/// every complete frame in the inbound bytes and calls `on_frame` for each,
/// in order, zero-copy. A decode error stops the delivery, flushes what was
/// already written, closes the connection and passes [`Error::Codec`] to
/// `on_close`.
///
/// ```no_run
/// # use netloom::{codec::LineCodec, Action, FrameConn, FrameHandler, Framed};
/// # struct Lines;
/// # impl FrameHandler for Lines {
/// #     type Codec = LineCodec;
/// #     type Context = ();
/// #     fn new_codec(&self) -> LineCodec { LineCodec::new() }
/// #     fn on_frame(&self, _: &mut FrameConn<'_, Self>, _: &[u8]) -> Action { Action::None }
/// # }
/// let engine = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(Framed(Lines))?;
/// # Ok::<(), netloom::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Framed<H>(pub H);

/// A framed connection's context: the user's [`FrameHandler::Context`]
/// (reached through `Deref`) and the connection's codec.
///
/// ```
/// # use netloom::codec::LineCodec;
/// let mut ctx: netloom::FrameContext<LineCodec, u32> = Default::default();
/// *ctx += 1; // the user's context, through DerefMut
/// assert_eq!(*ctx, 1);
/// assert!(ctx.codec().is_none()); // set when the connection opens
/// ```
#[derive(Debug)]
pub struct FrameContext<C, X> {
    codec: Option<C>,
    user: X,
}

impl<C, X: Default> Default for FrameContext<C, X> {
    fn default() -> Self {
        FrameContext {
            codec: None,
            user: X::default(),
        }
    }
}

impl<C, X> FrameContext<C, X> {
    /// The connection's codec (`None` only before `on_open`).
    ///
    /// ```
    /// # let ctx: netloom::FrameContext<netloom::codec::LineCodec, ()> = Default::default();
    /// let codec = ctx.codec();
    /// ```
    pub fn codec(&self) -> Option<&C> {
        self.codec.as_ref()
    }

    /// The connection's codec, mutable (to reconfigure it mid-stream).
    ///
    /// ```
    /// # let mut ctx: netloom::FrameContext<netloom::codec::LineCodec, ()> = Default::default();
    /// let codec = ctx.codec_mut();
    /// ```
    pub fn codec_mut(&mut self) -> Option<&mut C> {
        self.codec.as_mut()
    }
}

impl<C, X> Deref for FrameContext<C, X> {
    type Target = X;
    fn deref(&self) -> &X {
        &self.user
    }
}

impl<C, X> DerefMut for FrameContext<C, X> {
    fn deref_mut(&mut self) -> &mut X {
        &mut self.user
    }
}

impl<C: Codec, X> Conn<'_, FrameContext<C, X>> {
    /// Encodes `frame` with this connection's codec and writes it with one
    /// `writev` (header, the frame itself uncopied, trailer).
    ///
    /// # Errors
    /// [`Error::Codec`] if the codec refuses the frame (for example a wrong
    /// length for a fixed-length codec); otherwise as [`Conn::write`].
    ///
    /// ```
    /// # fn f(conn: &mut netloom::Conn<'_, netloom::FrameContext<netloom::codec::LineCodec, ()>>)
    /// # -> netloom::Result<()> {
    /// conn.send_frame(b"hello")?; // "hello\n" with the default line codec
    /// # Ok(()) }
    /// ```
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<()> {
        let (ctx, mut out) = self.context_and_writer();
        let codec = ctx.codec.as_mut().ok_or(Error::ConnClosed)?;
        let encoded = codec.encode(frame)?;
        out.writev(&[encoded.head(), encoded.body(), encoded.tail()])
    }

    /// Decodes every complete frame in the inbound bytes and hands each to
    /// `on_frame`, until the bytes run out, the connection starts closing or
    /// `on_frame` returns an action other than [`Action::None`].
    fn deliver_frames(&mut self, mut on_frame: impl FnMut(&mut Self, &[u8]) -> Action) -> Action {
        // The bytes are taken out of the connection while frames borrow them,
        // so `on_frame` may use `self` freely; the rest goes back afterwards.
        let mut leftover = (self.rec.kept_inbound_mut())
            .map(std::mem::take)
            .unwrap_or_default();
        let fresh = std::mem::take(&mut self.fresh);
        let src = if leftover.is_empty() {
            fresh
        } else {
            leftover.bytes()
        };
        let mut used = 0;
        let mut action = Action::None;
        while action == Action::None && !self.is_closing() {
            let Some(codec) = self.context_mut().codec.as_mut() else {
                break;
            };
            let rest = &src[used..];
            match decode_step(codec, rest) {
                Ok(Decoded::Frame {
                    start,
                    end,
                    consumed,
                }) => {
                    used += consumed;
                    action = on_frame(self, &rest[start..end]);
                }
                Ok(Decoded::Skip(n)) => used += n,
                Ok(Decoded::Incomplete) => break,
                Err(e) => {
                    self.close_with_error(Error::Codec(e));
                    break;
                }
            }
        }
        if leftover.is_empty() {
            self.fresh = &fresh[used..];
        } else {
            leftover.take(used);
        }
        if let Some(kept) = self.rec.kept_inbound_mut() {
            *kept = leftover;
        }
        action
    }
}

impl<H: FrameHandler> Handler for Framed<H> {
    type Context = FrameContext<H::Codec, H::Context>;

    fn on_boot(&self, engine: &Engine) -> Action {
        self.0.on_boot(engine)
    }

    fn on_open(&self, conn: &mut FrameConn<'_, H>) -> Action {
        conn.context_mut().codec = Some(self.0.new_codec());
        self.0.on_open(conn)
    }

    fn on_traffic(&self, conn: &mut FrameConn<'_, H>) -> Action {
        conn.deliver_frames(|conn, frame| self.0.on_frame(conn, frame))
    }

    fn on_eof(&self, conn: &mut FrameConn<'_, H>) -> Action {
        self.0.on_eof(conn)
    }

    fn on_close(&self, conn: &mut FrameConn<'_, H>, err: Option<&Error>) -> Action {
        self.0.on_close(conn, err)
    }

    fn on_tick(&self, engine: &Engine) -> (Duration, Action) {
        self.0.on_tick(engine)
    }

    fn on_shutdown(&self, engine: &Engine) {
        self.0.on_shutdown(engine)
    }
}

/// A shared frame handler: keep an `Arc` to read its state from outside.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use netloom::{codec::LineCodec, Action, FrameConn, FrameHandler, Framed};
/// # struct Lines;
/// # impl FrameHandler for Lines {
/// #     type Codec = LineCodec;
/// #     type Context = ();
/// #     fn new_codec(&self) -> LineCodec { LineCodec::new() }
/// #     fn on_frame(&self, _: &mut FrameConn<'_, Self>, _: &[u8]) -> Action { Action::None }
/// # }
/// let lines = Arc::new(Lines);
/// let engine = netloom::Engine::builder().bind("tcp://127.0.0.1:0").start(Framed(lines.clone()))?;
/// # Ok::<(), netloom::Error>(())
/// ```
impl<H: FrameHandler> FrameHandler for std::sync::Arc<H> {
    type Codec = H::Codec;
    type Context = H::Context;

    fn new_codec(&self) -> Self::Codec {
        (**self).new_codec()
    }
    fn on_frame(&self, conn: &mut FrameConn<'_, Self>, frame: &[u8]) -> Action {
        (**self).on_frame(conn, frame)
    }
    fn on_boot(&self, engine: &Engine) -> Action {
        (**self).on_boot(engine)
    }
    fn on_open(&self, conn: &mut FrameConn<'_, Self>) -> Action {
        (**self).on_open(conn)
    }
    fn on_eof(&self, conn: &mut FrameConn<'_, Self>) -> Action {
        (**self).on_eof(conn)
    }
    fn on_close(&self, conn: &mut FrameConn<'_, Self>, err: Option<&Error>) -> Action {
        (**self).on_close(conn, err)
    }
    fn on_tick(&self, engine: &Engine) -> (Duration, Action) {
        (**self).on_tick(engine)
    }
    fn on_shutdown(&self, engine: &Engine) {
        (**self).on_shutdown(engine)
    }
}
