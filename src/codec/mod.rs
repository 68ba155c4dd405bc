//! Framing codecs: split an inbound byte stream into frames and encode
//! outbound frames for a single vectored write.
//!
//! Codecs here are pure data structures. They never touch a socket, so the
//! engine adapter (and tests) drive them with byte slices:
//!
//! * **Decoding.** The caller keeps the bytes it has not consumed yet, appends
//!   whatever arrives, and calls [`Codec::decode`] on the whole pending
//!   buffer. Every call looks at the *front* of the buffer and reports one
//!   [`Decoded`] step; the caller drops the bytes that step consumed and calls
//!   again until it gets [`Decoded::Incomplete`]. [`decode_all`] is that loop.
//! * **Encoding.** [`Codec::encode`] turns one frame into up to three pieces,
//!   an inline header, the caller's own body bytes (never copied) and a
//!   borrowed trailer, ready for one `writev` via [`Encoded::as_io_slices`].
//!
//! A codec instance belongs to one connection: it may remember how far it
//! already scanned, or how many bytes of an over-long frame it still has to
//! discard. No codec allocates in proportion to a length announced by the
//! peer.
//!
//! # Examples
//!
//! ```
//! use netloom::codec::{decode_all, Codec, LineCodec};
//!
//! let mut codec = LineCodec::new();
//! let mut pending = b"hello\r\nwor".to_vec();
//! let mut lines = Vec::new();
//! let used = decode_all(&mut codec, &pending, |line| lines.push(line.to_vec())).unwrap();
//! pending.drain(..used);
//! pending.extend_from_slice(b"ld\n");
//! let used = decode_all(&mut codec, &pending, |line| lines.push(line.to_vec())).unwrap();
//! pending.drain(..used);
//! assert_eq!(lines, [b"hello".to_vec(), b"world".to_vec()]);
//! assert!(pending.is_empty());
//!
//! let out = codec.encode(b"bye").unwrap();
//! assert_eq!(out.body(), b"bye");
//! assert_eq!(out.tail(), b"\n");
//! ```

use std::error::Error;
use std::io::IoSlice;

mod delimiter;
mod fixed;
mod length_field;
mod line;
mod scan;

pub use delimiter::{DelimiterCodec, DelimiterCodecBuilder};
pub use fixed::FixedLengthCodec;
pub use length_field::{
    ByteOrder, LengthFieldCodec, LengthFieldCodecBuilder, LengthFieldPrepender,
};
pub use line::{LineCodec, LineCodecBuilder, LineEnding};

/// What one [`Codec::decode`] call found at the front of the buffer it was
/// given.
///
/// Every variant that consumes bytes consumes at least one, so a loop that
/// keeps calling `decode` always makes progress.
///
/// # Examples
///
/// ```
/// use netloom::codec::{Codec, Decoded, FixedLengthCodec};
///
/// let mut codec = FixedLengthCodec::new(3).unwrap();
/// let src = b"abcde";
/// match codec.decode(src).unwrap() {
///     Decoded::Frame { start, end, consumed } => {
///         assert_eq!(&src[start..end], b"abc");
///         assert_eq!(consumed, 3);
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(codec.decode(&src[3..]).unwrap(), Decoded::Incomplete);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A complete frame: `&src[start..end]`. The caller then drops the first
    /// `consumed` bytes of `src` (headers and delimiters included).
    ///
    /// Always `start <= end <= consumed <= src.len()` and `consumed >= 1`.
    Frame {
        /// Offset of the first frame byte in `src` (non-zero when a header is
        /// stripped).
        start: usize,
        /// Offset one past the last frame byte in `src`.
        end: usize,
        /// How many bytes of `src` this frame used up.
        consumed: usize,
    },
    /// Bytes to throw away without producing a frame (for example the body of
    /// an over-long frame). Always `1 <= n <= src.len()`. The caller drops
    /// them and calls `decode` again, *even if no bytes remain*: an error
    /// deferred until the discarding is over is reported by that next call.
    Skip(usize),
    /// The front of `src` is not a complete frame yet: call again once more
    /// bytes have been appended.
    Incomplete,
}

/// Why a codec could not decode its input, encode a frame, or be built.
///
/// Decoding errors leave the codec in a consistent state: a caller that
/// wants to carry on (instead of closing the connection) may keep calling
/// [`Codec::decode`], which first skips the offending bytes and then resumes
/// at the next frame.
///
/// # Examples
///
/// ```
/// use netloom::codec::{Codec, CodecError, LengthFieldCodec};
///
/// let mut codec = LengthFieldCodec::u32_be(1024).unwrap();
/// // A peer claiming a 4 GiB frame is refused before anything is buffered.
/// let err = codec.decode(&[0xff, 0xff, 0xff, 0xff]).unwrap_err();
/// assert!(matches!(err, CodecError::FrameTooLong { max: 1024, .. }));
/// ```
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame is (or would become) longer than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLong {
        /// The frame length seen or announced (for a frame still being
        /// discarded, the bytes seen so far).
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A frame to encode does not have the length this codec requires.
    #[error("frame of {len} bytes, but this codec only encodes frames of {expected} bytes")]
    LengthMismatch {
        /// The length of the frame given.
        len: usize,
        /// The only length accepted.
        expected: usize,
    },
    /// The input violates the framing format (for example a negative length
    /// field), so the stream cannot be trusted any more.
    #[error("corrupt frame: {0}")]
    Corrupt(String),
    /// A codec configuration was rejected when it was built.
    #[error("invalid codec configuration: {0}")]
    InvalidConfig(String),
    /// Any other failure, for codecs written outside this module.
    #[error(transparent)]
    Other(Box<dyn Error + Send + Sync>),
}

/// Splits a byte stream into frames and encodes frames back into bytes.
///
/// An instance serves one connection and may keep state between calls. See
/// the [module documentation](self) for how the engine drives it.
///
/// # Examples
///
/// A codec that frames every single byte:
///
/// ```
/// use netloom::codec::{decode_all, Codec, CodecError, Decoded, Encoded};
///
/// struct Bytewise;
///
/// impl Codec for Bytewise {
///     fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError> {
///         Ok(if src.is_empty() {
///             Decoded::Incomplete
///         } else {
///             Decoded::Frame { start: 0, end: 1, consumed: 1 }
///         })
///     }
///
///     fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
///         Ok(Encoded::new(frame))
///     }
/// }
///
/// let mut frames = 0;
/// assert_eq!(decode_all(&mut Bytewise, b"abc", |_| frames += 1).unwrap(), 3);
/// assert_eq!(frames, 3);
/// ```
pub trait Codec {
    /// Decodes at most one frame from the front of `src`.
    ///
    /// `src` is everything received and not yet consumed; between calls the
    /// caller only drops consumed bytes from the front and appends new bytes
    /// at the back. Implementations must never allocate in proportion to a
    /// length the peer claims.
    fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError>;

    /// Encodes one frame as up to three pieces for a single `writev`: a small
    /// inline head (such as a length prefix), the frame itself (borrowed, not
    /// copied) and a tail (such as a delimiter).
    fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError>;
}

/// A boxed codec is a codec, so the codec can be chosen at run time
/// (`Box<dyn Codec + Send>`).
///
/// ```
/// use netloom::codec::{decode_all, Codec, FixedLengthCodec, LineCodec};
///
/// let mut codec: Box<dyn Codec + Send> = if true {
///     Box::new(LineCodec::new())
/// } else {
///     Box::new(FixedLengthCodec::new(4).unwrap())
/// };
/// assert_eq!(decode_all(&mut codec, b"a\nb\n", |_| {}).unwrap(), 4);
/// ```
impl<C: Codec + ?Sized> Codec for Box<C> {
    fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError> {
        (**self).decode(src)
    }

    fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
        (**self).encode(frame)
    }
}

/// One encoded frame: an inline head of at most [`Encoded::MAX_HEAD_LEN`]
/// bytes, then the borrowed body, then a borrowed tail.
///
/// Building one never touches the heap.
///
/// # Examples
///
/// ```
/// use netloom::codec::Encoded;
///
/// let out = Encoded::new(b"body").with_head(&[0, 4]).with_tail(b"\n");
/// assert_eq!(out.len(), 7);
/// let mut wire = Vec::new();
/// out.write_to(&mut wire);
/// assert_eq!(wire, b"\x00\x04body\n");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Encoded<'a> {
    head: [u8; Encoded::MAX_HEAD_LEN],
    head_len: u8,
    body: &'a [u8],
    tail: &'a [u8],
}

impl<'a> Encoded<'a> {
    /// The largest head an [`Encoded`] can carry inline.
    pub const MAX_HEAD_LEN: usize = 16;

    /// Wraps `body` with an empty head and tail.
    ///
    /// # Examples
    ///
    /// ```
    /// let out = netloom::codec::Encoded::new(b"x");
    /// assert_eq!((out.head(), out.body(), out.tail()), (&b""[..], &b"x"[..], &b""[..]));
    /// ```
    pub fn new(body: &'a [u8]) -> Self {
        Self {
            head: [0; Self::MAX_HEAD_LEN],
            head_len: 0,
            body,
            tail: &[],
        }
    }

    /// Replaces the head with a copy of `head`.
    ///
    /// # Panics
    ///
    /// If `head` is longer than [`Encoded::MAX_HEAD_LEN`].
    ///
    /// # Examples
    ///
    /// ```
    /// let out = netloom::codec::Encoded::new(b"x").with_head(&[1]);
    /// assert_eq!(out.head(), [1]);
    /// ```
    pub fn with_head(mut self, head: &[u8]) -> Self {
        assert!(
            head.len() <= Self::MAX_HEAD_LEN,
            "an encoded head holds at most {} bytes, got {}",
            Self::MAX_HEAD_LEN,
            head.len()
        );
        self.head[..head.len()].copy_from_slice(head);
        // Cannot truncate: checked against MAX_HEAD_LEN (16) just above.
        self.head_len = head.len() as u8;
        self
    }

    /// Replaces the tail with `tail`.
    ///
    /// # Examples
    ///
    /// ```
    /// let out = netloom::codec::Encoded::new(b"x").with_tail(b";");
    /// assert_eq!(out.tail(), b";");
    /// ```
    pub fn with_tail(mut self, tail: &'a [u8]) -> Self {
        self.tail = tail;
        self
    }

    /// The bytes written before the body.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::u32_be(1 << 20).unwrap();
    /// assert_eq!(codec.encode(b"hi").unwrap().head(), [0, 0, 0, 2]);
    /// ```
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    /// The frame itself, exactly as given to `encode`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(netloom::codec::Encoded::new(b"x").body(), b"x");
    /// ```
    pub fn body(&self) -> &[u8] {
        self.body
    }

    /// The bytes written after the body.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, LineCodec, LineEnding};
    ///
    /// let mut codec = LineCodec::builder().encode_ending(LineEnding::CrLf).build();
    /// assert_eq!(codec.encode(b"hi").unwrap().tail(), b"\r\n");
    /// ```
    pub fn tail(&self) -> &[u8] {
        self.tail
    }

    /// Total number of bytes on the wire: head, body and tail.
    ///
    /// # Examples
    ///
    /// ```
    /// let out = netloom::codec::Encoded::new(b"ab").with_head(&[2]);
    /// assert_eq!(out.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.head().len() + self.body.len() + self.tail.len()
    }

    /// Whether there is nothing at all to write.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(netloom::codec::Encoded::new(b"").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends head, body and tail to `dst`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wire = b"x".to_vec();
    /// netloom::codec::Encoded::new(b"y").with_tail(b"z").write_to(&mut wire);
    /// assert_eq!(wire, b"xyz");
    /// ```
    pub fn write_to(&self, dst: &mut Vec<u8>) {
        dst.reserve(self.len());
        dst.extend_from_slice(self.head());
        dst.extend_from_slice(self.body);
        dst.extend_from_slice(self.tail);
    }

    /// Head, body and tail as slices for one vectored write. Empty pieces are
    /// kept (as empty slices) so the array shape never changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// let out = netloom::codec::Encoded::new(b"body").with_head(b"<").with_tail(b">");
    /// let mut wire = Vec::new();
    /// let written = wire.write_vectored(&out.as_io_slices()).unwrap();
    /// assert_eq!((written, &wire[..]), (6, &b"<body>"[..]));
    /// ```
    pub fn as_io_slices(&self) -> [IoSlice<'_>; 3] {
        [
            IoSlice::new(self.head()),
            IoSlice::new(self.body),
            IoSlice::new(self.tail),
        ]
    }
}

/// Decodes every complete frame at the front of `src`, calling `f(frame)` for
/// each in order, and returns how many bytes were consumed (frames, headers,
/// delimiters and skipped bytes alike).
///
/// The caller drops that many bytes and keeps the rest for when more data
/// arrives. On error the frames already passed to `f` stay delivered, but
/// the consumed count is lost: this is meant for connections that close on
/// a framing error. Drive [`Codec::decode`] directly to recover instead.
///
/// A codec that breaks the [`Decoded`] contract (consumes nothing, or more
/// than it was given) yields [`CodecError::Other`] rather than a panic or an
/// endless loop.
///
/// # Examples
///
/// ```
/// use netloom::codec::{decode_all, DelimiterCodec};
///
/// let mut codec = DelimiterCodec::builder().delimiter(b";").build().unwrap();
/// let mut frames = Vec::new();
/// let used = decode_all(&mut codec, b"a;bb;cc", |f| frames.push(f.to_vec())).unwrap();
/// assert_eq!(used, 5);
/// assert_eq!(frames, [b"a".to_vec(), b"bb".to_vec()]);
/// ```
pub fn decode_all(
    codec: &mut impl Codec,
    src: &[u8],
    mut f: impl FnMut(&[u8]),
) -> Result<usize, CodecError> {
    let mut pos = 0;
    loop {
        let rest = &src[pos..];
        match decode_step(codec, rest)? {
            Decoded::Frame {
                start,
                end,
                consumed,
            } => {
                f(&rest[start..end]);
                pos += consumed;
            }
            Decoded::Skip(n) => pos += n,
            Decoded::Incomplete => return Ok(pos),
        }
    }
}

/// One [`Codec::decode`] step, checked against the [`Decoded`] contract, so
/// a caller may slice and advance by it without further checks: a codec
/// that breaks the contract (a step outside `src`, or one that would not
/// progress) yields an error instead of a panic or an endless loop.
pub(crate) fn decode_step(codec: &mut impl Codec, src: &[u8]) -> Result<Decoded, CodecError> {
    let step = codec.decode(src)?;
    let valid = match step {
        Decoded::Frame {
            start,
            end,
            consumed,
        } => start <= end && end <= consumed && consumed <= src.len() && consumed > 0,
        Decoded::Skip(n) => n > 0 && n <= src.len(),
        Decoded::Incomplete => true,
    };
    if valid {
        Ok(step)
    } else {
        Err(broken_contract())
    }
}

fn broken_contract() -> CodecError {
    CodecError::Other("codec returned a Decoded step outside the bytes it was given".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A codec that lies about what it consumed.
    struct Liar(Decoded);

    impl Codec for Liar {
        fn decode(&mut self, _src: &[u8]) -> Result<Decoded, CodecError> {
            Ok(self.0)
        }

        fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
            Ok(Encoded::new(frame))
        }
    }

    #[test]
    fn decode_all_rejects_steps_that_would_loop_or_overrun() {
        for lie in [
            Decoded::Skip(0),
            Decoded::Skip(4),
            Decoded::Frame {
                start: 0,
                end: 0,
                consumed: 0,
            },
            Decoded::Frame {
                start: 2,
                end: 1,
                consumed: 3,
            },
            Decoded::Frame {
                start: 0,
                end: 3,
                consumed: 2,
            },
            Decoded::Frame {
                start: 0,
                end: 4,
                consumed: 4,
            },
        ] {
            let err = decode_all(&mut Liar(lie), b"abc", |_| {}).unwrap_err();
            assert!(matches!(err, CodecError::Other(_)), "{lie:?}");
        }
    }

    #[test]
    fn encoded_pieces_concatenate_in_order() {
        let head = [9u8; Encoded::MAX_HEAD_LEN];
        let out = Encoded::new(b"body").with_head(&head).with_tail(b"!");
        assert_eq!(out.len(), 16 + 4 + 1);
        let mut wire = Vec::new();
        out.write_to(&mut wire);
        let joined: Vec<u8> = out.as_io_slices().iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(wire, joined);
        assert_eq!(&wire[..16], &head);
        assert_eq!(&wire[16..], b"body!");
    }

    #[test]
    #[should_panic(expected = "at most 16 bytes")]
    fn oversized_head_panics() {
        let _ = Encoded::new(b"").with_head(&[0; 17]);
    }
}
