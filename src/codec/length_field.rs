//! Frames announced by a length field, after netty's
//! `LengthFieldBasedFrameDecoder` and `LengthFieldPrepender`.

use super::{Codec, CodecError, Decoded, Encoded};

/// Byte order of a length field.
///
/// # Examples
///
/// ```
/// assert_eq!(netloom::codec::ByteOrder::default(), netloom::codec::ByteOrder::BigEndian);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByteOrder {
    /// Most significant byte first (network order).
    #[default]
    BigEndian,
    /// Least significant byte first.
    LittleEndian,
}

/// Length field sizes supported by netty's decoder and encoder.
const FIELD_SIZES: [usize; 5] = [1, 2, 3, 4, 8];

fn check_field_size(size: usize) -> Result<(), CodecError> {
    if FIELD_SIZES.contains(&size) {
        Ok(())
    } else {
        Err(CodecError::InvalidConfig(format!(
            "length field size {size} is not 1, 2, 3, 4 or 8"
        )))
    }
}

/// Largest value a field of `size` bytes may carry. An 8-byte field is
/// signed, as in netty, so its top bit must stay clear.
fn field_max(size: usize) -> u64 {
    if size == 8 {
        i64::MAX as u64
    } else {
        (1u64 << (8 * size)) - 1
    }
}

/// Reads an unsigned integer of `field.len()` (1 to 8) bytes.
fn read_field(field: &[u8], order: ByteOrder) -> u64 {
    let accumulate = |acc: u64, &byte: &u8| (acc << 8) | u64::from(byte);
    match order {
        ByteOrder::BigEndian => field.iter().fold(0, accumulate),
        ByteOrder::LittleEndian => field.iter().rev().fold(0, accumulate),
    }
}

/// Writes the prefix encoding a frame's length: netty's
/// `LengthFieldPrepender`. It writes the length field only; a layout with
/// other header fields puts them in the frame it encodes.
///
/// The value written is the frame's length plus
/// [`length_adjustment`](Self::length_adjustment), plus the field's own size
/// if [`length_includes_length_field`](Self::length_includes_length_field).
///
/// # Examples
///
/// ```
/// use netloom::codec::{ByteOrder, LengthFieldPrepender};
///
/// let prepender = LengthFieldPrepender::new(2)
///     .unwrap()
///     .byte_order(ByteOrder::LittleEndian)
///     .length_includes_length_field(true);
/// let out = prepender.encode(b"abc").unwrap();
/// assert_eq!(out.head(), [5, 0]);
/// assert_eq!(out.body(), b"abc");
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldPrepender {
    size: usize,
    byte_order: ByteOrder,
    length_adjustment: i64,
    includes_length_field: bool,
}

impl LengthFieldPrepender {
    /// A big-endian prefix of `size` bytes (1, 2, 3, 4 or 8) holding the
    /// frame's length.
    ///
    /// # Errors
    ///
    /// [`CodecError::InvalidConfig`] for any other size.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::LengthFieldPrepender;
    ///
    /// assert!(LengthFieldPrepender::new(3).is_ok());
    /// assert!(LengthFieldPrepender::new(5).is_err());
    /// ```
    pub fn new(size: usize) -> Result<Self, CodecError> {
        check_field_size(size)?;
        Ok(Self {
            size,
            byte_order: ByteOrder::BigEndian,
            length_adjustment: 0,
            includes_length_field: false,
        })
    }

    /// Sets the byte order of the field (default big-endian).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{ByteOrder, LengthFieldPrepender};
    ///
    /// let p = LengthFieldPrepender::new(4).unwrap().byte_order(ByteOrder::LittleEndian);
    /// assert_eq!(p.encode(b"x").unwrap().head(), [1, 0, 0, 0]);
    /// ```
    pub fn byte_order(mut self, byte_order: ByteOrder) -> Self {
        self.byte_order = byte_order;
        self
    }

    /// Adds `adjustment` (possibly negative) to the length written.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = netloom::codec::LengthFieldPrepender::new(1).unwrap().length_adjustment(-1);
    /// assert_eq!(p.encode(b"ab").unwrap().head(), [1]);
    /// ```
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.length_adjustment = adjustment;
        self
    }

    /// Whether the length written counts the length field itself (default
    /// `false`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = netloom::codec::LengthFieldPrepender::new(2).unwrap().length_includes_length_field(true);
    /// assert_eq!(p.encode(b"").unwrap().head(), [0, 2]);
    /// ```
    pub fn length_includes_length_field(mut self, includes: bool) -> Self {
        self.includes_length_field = includes;
        self
    }

    /// Prefixes `frame` with its length field.
    ///
    /// # Errors
    ///
    /// [`CodecError::FrameTooLong`] if the length does not fit the field
    /// (`max` is then the longest frame that would), and
    /// [`CodecError::Corrupt`] if a negative adjustment makes it negative.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{CodecError, LengthFieldPrepender};
    ///
    /// let p = LengthFieldPrepender::new(1).unwrap();
    /// assert_eq!(p.encode(&[7; 255]).unwrap().head(), [255]);
    /// assert!(matches!(p.encode(&[7; 256]), Err(CodecError::FrameTooLong { len: 256, max: 255 })));
    /// ```
    pub fn encode<'a>(&self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
        // i128 holds every sum of a usize, an i64 and a field size exactly.
        let overhead = i128::from(self.length_adjustment)
            + if self.includes_length_field {
                self.size as i128
            } else {
                0
            };
        let length = frame.len() as i128 + overhead;
        if length < 0 {
            return Err(CodecError::Corrupt(format!(
                "length {length} of a {}-byte frame is negative",
                frame.len()
            )));
        }
        let limit = field_max(self.size);
        let Some(value) = u64::try_from(length).ok().filter(|&v| v <= limit) else {
            let longest = (i128::from(limit) - overhead).clamp(0, usize::MAX as i128);
            return Err(CodecError::FrameTooLong {
                len: frame.len() as u64,
                // Cannot truncate: clamped to usize just above.
                max: longest as usize,
            });
        };
        let bytes = match self.byte_order {
            ByteOrder::BigEndian => value.to_be_bytes(),
            ByteOrder::LittleEndian => value.to_le_bytes(),
        };
        let field = match self.byte_order {
            ByteOrder::BigEndian => &bytes[8 - self.size..],
            ByteOrder::LittleEndian => &bytes[..self.size],
        };
        Ok(Encoded::new(frame).with_head(field))
    }
}

/// Decodes frames whose length is announced by a field in their header, with
/// every option of netty's `LengthFieldBasedFrameDecoder`, and encodes frames
/// with a [`LengthFieldPrepender`].
///
/// For each frame the decoder reads the unsigned field of
/// `length_field_size` bytes at `length_field_offset`, then takes
/// `field value + length_adjustment + length_field_offset + length_field_size`
/// as the length of the whole frame, header included. That length:
///
/// * must not exceed `max_frame_length`; an over-long frame is skipped with
///   [`Decoded::Skip`] (never buffered) and reported as
///   [`CodecError::FrameTooLong`], at once with `fail_fast` (the default)
///   or once it has been skipped;
/// * must cover the length field itself and the `initial_bytes_to_strip`,
///   else the input is [`CodecError::Corrupt`]; so is an 8-byte field with
///   its sign bit set. Decoding on after a corrupt header skips it (or the
///   frame it announced) and reads the next bytes as a new header, as netty
///   does.
///
/// A decoded frame leaves out its first `initial_bytes_to_strip` bytes.
///
/// # Examples
///
/// ```
/// use netloom::codec::{decode_all, Codec, LengthFieldCodec};
///
/// // 2-byte length counting the whole frame, after a 1-byte type; keep all.
/// let mut codec = LengthFieldCodec::builder()
///     .length_field_offset(1)
///     .length_field_size(2)
///     .length_adjustment(-3)
///     .build()
///     .unwrap();
/// let mut frames = Vec::new();
/// decode_all(&mut codec, b"T\x00\x05hiT\x00\x03", |f| frames.push(f.to_vec())).unwrap();
/// assert_eq!(frames, [b"T\x00\x05hi".to_vec(), b"T\x00\x03".to_vec()]);
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldCodec {
    byte_order: ByteOrder,
    max_frame_length: usize,
    length_field_offset: usize,
    length_field_size: usize,
    length_adjustment: i64,
    initial_bytes_to_strip: usize,
    fail_fast: bool,
    prepender: LengthFieldPrepender,
    /// Bytes of a rejected frame still to skip before the next header.
    discard_remaining: u64,
    /// Length of an over-long frame, reported once it has been skipped.
    deferred_too_long: Option<u64>,
}

/// Configures a [`LengthFieldCodec`]; the names are those of netty's
/// `LengthFieldBasedFrameDecoder`.
///
/// # Examples
///
/// ```
/// use netloom::codec::{ByteOrder, LengthFieldCodec, LengthFieldPrepender};
///
/// let codec = LengthFieldCodec::builder()
///     .byte_order(ByteOrder::LittleEndian)
///     .max_frame_length(64 * 1024)
///     .length_field_offset(0)
///     .length_field_size(2)
///     .length_adjustment(-2)
///     .initial_bytes_to_strip(2)
///     .fail_fast(false)
///     .prepender(
///         LengthFieldPrepender::new(2)
///             .unwrap()
///             .byte_order(ByteOrder::LittleEndian)
///             .length_includes_length_field(true),
///     )
///     .build()
///     .unwrap();
/// # let _ = codec;
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldCodecBuilder {
    byte_order: ByteOrder,
    max_frame_length: usize,
    length_field_offset: usize,
    length_field_size: usize,
    length_adjustment: i64,
    initial_bytes_to_strip: usize,
    fail_fast: bool,
    prepender: Option<LengthFieldPrepender>,
}

impl Default for LengthFieldCodecBuilder {
    fn default() -> Self {
        Self {
            byte_order: ByteOrder::BigEndian,
            max_frame_length: LengthFieldCodec::DEFAULT_MAX_FRAME_LENGTH,
            length_field_offset: 0,
            length_field_size: 4,
            length_adjustment: 0,
            initial_bytes_to_strip: 0,
            fail_fast: true,
            prepender: None,
        }
    }
}

impl LengthFieldCodecBuilder {
    /// Byte order of the length field (default big-endian).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{ByteOrder, Codec, Decoded, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::builder()
    ///     .length_field_size(2)
    ///     .byte_order(ByteOrder::LittleEndian)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(codec.decode(b"\x01\x00x").unwrap(), Decoded::Frame { start: 0, end: 3, consumed: 3 });
    /// ```
    pub fn byte_order(mut self, byte_order: ByteOrder) -> Self {
        self.byte_order = byte_order;
        self
    }

    /// Longest frame accepted, header included (default
    /// [`LengthFieldCodec::DEFAULT_MAX_FRAME_LENGTH`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::builder().length_field_size(1).max_frame_length(3).build().unwrap();
    /// assert!(codec.decode(b"\x02ab").is_ok());
    /// assert!(codec.decode(b"\x03abc").is_err());
    /// ```
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max_frame_length = max;
        self
    }

    /// Offset of the length field from the start of the frame (default 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, Decoded, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::builder().length_field_offset(1).length_field_size(1).build().unwrap();
    /// assert_eq!(codec.decode(b"T\x01x").unwrap(), Decoded::Frame { start: 0, end: 3, consumed: 3 });
    /// ```
    pub fn length_field_offset(mut self, offset: usize) -> Self {
        self.length_field_offset = offset;
        self
    }

    /// Size of the length field in bytes: 1, 2, 3, 4 (the default) or 8.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::LengthFieldCodec;
    ///
    /// assert!(LengthFieldCodec::builder().length_field_size(3).build().is_ok());
    /// assert!(LengthFieldCodec::builder().length_field_size(6).build().is_err());
    /// ```
    pub fn length_field_size(mut self, size: usize) -> Self {
        self.length_field_size = size;
        self
    }

    /// Added to the field's value to get the length of what follows the
    /// field (default 0). Negative when the field counts the header too.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, Decoded, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::builder().length_field_size(1).length_adjustment(-1).build().unwrap();
    /// assert_eq!(codec.decode(b"\x02x").unwrap(), Decoded::Frame { start: 0, end: 2, consumed: 2 });
    /// ```
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.length_adjustment = adjustment;
        self
    }

    /// How many bytes to leave out at the front of each decoded frame
    /// (default 0: the header is kept).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, Decoded, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::builder().length_field_size(1).initial_bytes_to_strip(1).build().unwrap();
    /// assert_eq!(codec.decode(b"\x01x").unwrap(), Decoded::Frame { start: 1, end: 2, consumed: 2 });
    /// ```
    pub fn initial_bytes_to_strip(mut self, strip: usize) -> Self {
        self.initial_bytes_to_strip = strip;
        self
    }

    /// Report an over-long frame as soon as its header is read (`true`, the
    /// default) or once the whole frame has been skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, Decoded, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::builder()
    ///     .length_field_size(1)
    ///     .max_frame_length(2)
    ///     .fail_fast(false)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(codec.decode(b"\x09ab").unwrap(), Decoded::Skip(3));
    /// ```
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// The encoder used by [`Codec::encode`]. By default it writes a field of
    /// the decoder's size and byte order at the very start of the frame, with
    /// the opposite length adjustment, so that what it writes decodes to a
    /// frame of header and body; that only matches the decoder when
    /// `length_field_offset` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, LengthFieldCodec, LengthFieldPrepender};
    ///
    /// let mut codec = LengthFieldCodec::builder()
    ///     .prepender(LengthFieldPrepender::new(1).unwrap())
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(codec.encode(b"ab").unwrap().head(), [2]);
    /// ```
    pub fn prepender(mut self, prepender: LengthFieldPrepender) -> Self {
        self.prepender = Some(prepender);
        self
    }

    /// Checks the configuration and builds the codec.
    ///
    /// # Errors
    ///
    /// [`CodecError::InvalidConfig`] if the field size is not 1, 2, 3, 4 or
    /// 8, if `max_frame_length` is 0 or smaller than the length field's end
    /// (`length_field_offset + length_field_size`), or if the default
    /// prepender cannot negate `length_adjustment`.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{CodecError, LengthFieldCodec};
    ///
    /// let err = LengthFieldCodec::builder().length_field_offset(10).max_frame_length(12).build();
    /// assert!(matches!(err, Err(CodecError::InvalidConfig(_))));
    /// ```
    pub fn build(self) -> Result<LengthFieldCodec, CodecError> {
        check_field_size(self.length_field_size)?;
        if self.max_frame_length == 0 {
            return Err(CodecError::InvalidConfig(
                "max frame length must be positive".into(),
            ));
        }
        let field_end = self.length_field_offset.checked_add(self.length_field_size);
        if !matches!(field_end, Some(end) if end <= self.max_frame_length) {
            return Err(CodecError::InvalidConfig(format!(
                "max frame length {} is shorter than length field offset {} + size {}",
                self.max_frame_length, self.length_field_offset, self.length_field_size
            )));
        }
        let prepender = match self.prepender {
            Some(prepender) => prepender,
            None => {
                let negated = self.length_adjustment.checked_neg().ok_or_else(|| {
                    CodecError::InvalidConfig(
                        "length adjustment i64::MIN has no matching prepender".into(),
                    )
                })?;
                LengthFieldPrepender::new(self.length_field_size)?
                    .byte_order(self.byte_order)
                    .length_adjustment(negated)
            }
        };
        Ok(LengthFieldCodec {
            byte_order: self.byte_order,
            max_frame_length: self.max_frame_length,
            length_field_offset: self.length_field_offset,
            length_field_size: self.length_field_size,
            length_adjustment: self.length_adjustment,
            initial_bytes_to_strip: self.initial_bytes_to_strip,
            fail_fast: self.fail_fast,
            prepender,
            discard_remaining: 0,
            deferred_too_long: None,
        })
    }
}

impl LengthFieldCodec {
    /// Default longest frame: 1 MiB, header included.
    pub const DEFAULT_MAX_FRAME_LENGTH: usize = 1 << 20;

    /// Starts configuring a codec: big-endian 4-byte field at offset 0
    /// counting what follows it, nothing stripped, 1 MiB frames, fail fast.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = netloom::codec::LengthFieldCodec::builder().build().unwrap();
    /// # let _ = codec;
    /// ```
    pub fn builder() -> LengthFieldCodecBuilder {
        LengthFieldCodecBuilder::default()
    }

    /// The common case: a 4-byte big-endian length of the payload before
    /// each payload. Decoding strips the header, encoding prepends it, so a
    /// well-formed stream echoes byte for byte. `max_frame_length` counts
    /// the 4 header bytes too.
    ///
    /// # Errors
    ///
    /// [`CodecError::InvalidConfig`] if `max_frame_length` is below 4.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{decode_all, Codec, LengthFieldCodec};
    ///
    /// let mut codec = LengthFieldCodec::u32_be(1 << 20).unwrap();
    /// let mut wire = Vec::new();
    /// codec.encode(b"ping").unwrap().write_to(&mut wire);
    /// assert_eq!(wire, b"\0\0\0\x04ping");
    /// let mut payloads = Vec::new();
    /// decode_all(&mut codec, &wire, |p| payloads.push(p.to_vec())).unwrap();
    /// assert_eq!(payloads, [b"ping".to_vec()]);
    /// ```
    pub fn u32_be(max_frame_length: usize) -> Result<Self, CodecError> {
        Self::builder()
            .max_frame_length(max_frame_length)
            .initial_bytes_to_strip(4)
            .build()
    }

    fn too_long(&self, len: u64) -> CodecError {
        CodecError::FrameTooLong {
            len,
            max: self.max_frame_length,
        }
    }

    /// Skips what is left of a rejected frame.
    fn skip(&mut self, available: usize) -> Decoded {
        if available == 0 {
            return Decoded::Incomplete;
        }
        let n = self.discard_remaining.min(available as u64);
        self.discard_remaining -= n;
        // Cannot truncate: at most `available`.
        Decoded::Skip(n as usize)
    }
}

impl Default for LengthFieldCodec {
    /// [`LengthFieldCodec::u32_be`] with 1 MiB frames.
    fn default() -> Self {
        Self::u32_be(Self::DEFAULT_MAX_FRAME_LENGTH).expect("the default configuration is valid")
    }
}

impl Codec for LengthFieldCodec {
    fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError> {
        if self.discard_remaining > 0 {
            return Ok(self.skip(src.len()));
        }
        if let Some(len) = self.deferred_too_long.take() {
            return Err(self.too_long(len));
        }
        let field_end = self.length_field_offset + self.length_field_size;
        let Some(field) = src.get(self.length_field_offset..field_end) else {
            return Ok(Decoded::Incomplete);
        };
        let value = read_field(field, self.byte_order);
        if value > field_max(self.length_field_size) {
            // Only an 8-byte field can get here: netty reads it as signed.
            self.discard_remaining = field_end as u64;
            return Err(CodecError::Corrupt(format!(
                "negative length field: {}",
                value as i64
            )));
        }
        // i128 holds the sum of a u64, an i64 and a usize exactly.
        let frame_length =
            i128::from(value) + i128::from(self.length_adjustment) + field_end as i128;
        if frame_length < field_end as i128 {
            self.discard_remaining = field_end as u64;
            return Err(CodecError::Corrupt(format!(
                "adjusted frame length {frame_length} is less than the {field_end} bytes up to \
                 the end of the length field"
            )));
        }
        if frame_length > self.max_frame_length as i128 {
            let len = u64::try_from(frame_length).unwrap_or(u64::MAX);
            // Skip the whole announced frame, counted from its first byte.
            self.discard_remaining = len;
            if self.fail_fast {
                return Err(self.too_long(len));
            }
            self.deferred_too_long = Some(len);
            return Ok(self.skip(src.len()));
        }
        // Cannot truncate: at most max_frame_length.
        let frame_length = frame_length as usize;
        if self.initial_bytes_to_strip > frame_length {
            self.discard_remaining = frame_length as u64;
            return Err(CodecError::Corrupt(format!(
                "adjusted frame length {frame_length} is less than the {} bytes to strip",
                self.initial_bytes_to_strip
            )));
        }
        if src.len() < frame_length {
            return Ok(Decoded::Incomplete);
        }
        Ok(Decoded::Frame {
            start: self.initial_bytes_to_strip,
            end: frame_length,
            consumed: frame_length,
        })
    }

    /// Prepends the length field with the configured
    /// [`LengthFieldPrepender`].
    fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
        self.prepender.encode(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &[u8] = b"HELLO, WORLD";

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Decodes `src` whole, then again fed one byte at a time, and checks
    /// both give exactly `expected` with nothing left over.
    fn assert_decodes(builder: LengthFieldCodecBuilder, src: &[u8], expected: &[u8]) {
        let mut whole = builder.clone().build().unwrap();
        let mut frames = Vec::new();
        let used = super::super::decode_all(&mut whole, src, |f| frames.push(f.to_vec())).unwrap();
        assert_eq!((used, frames), (src.len(), vec![expected.to_vec()]));

        let mut bytewise = builder.build().unwrap();
        let mut pending = Vec::new();
        let mut frames = Vec::new();
        for &byte in src {
            pending.push(byte);
            let used =
                super::super::decode_all(&mut bytewise, &pending, |f| frames.push(f.to_vec()))
                    .unwrap();
            pending.drain(..used);
        }
        assert!(pending.is_empty());
        assert_eq!(frames, vec![expected.to_vec()]);
    }

    fn builder(
        offset: usize,
        size: usize,
        adjustment: i64,
        strip: usize,
    ) -> LengthFieldCodecBuilder {
        LengthFieldCodec::builder()
            .length_field_offset(offset)
            .length_field_size(size)
            .length_adjustment(adjustment)
            .initial_bytes_to_strip(strip)
    }

    // The seven examples of netty's LengthFieldBasedFrameDecoder javadoc.

    #[test]
    fn netty_2_byte_length_at_offset_0_header_kept() {
        let src = cat(&[b"\x00\x0C", HELLO]);
        assert_decodes(builder(0, 2, 0, 0), &src, &src);
    }

    #[test]
    fn netty_2_byte_length_at_offset_0_header_stripped() {
        let src = cat(&[b"\x00\x0C", HELLO]);
        assert_decodes(builder(0, 2, 0, 2), &src, HELLO);
    }

    #[test]
    fn netty_2_byte_length_counting_the_whole_message() {
        let src = cat(&[b"\x00\x0E", HELLO]);
        assert_decodes(builder(0, 2, -2, 0), &src, &src);
    }

    #[test]
    fn netty_3_byte_length_at_the_end_of_a_5_byte_header() {
        let src = cat(&[b"\xCA\xFE", b"\x00\x00\x0C", HELLO]);
        assert_decodes(builder(2, 3, 0, 0), &src, &src);
    }

    #[test]
    fn netty_3_byte_length_at_the_start_of_a_5_byte_header() {
        let src = cat(&[b"\x00\x00\x0C", b"\xCA\xFE", HELLO]);
        assert_decodes(builder(0, 3, 2, 0), &src, &src);
    }

    #[test]
    fn netty_2_byte_length_mid_header_first_fields_stripped() {
        let src = cat(&[b"\xCA", b"\x00\x0C", b"\xFE", HELLO]);
        assert_decodes(builder(1, 2, 1, 3), &src, &cat(&[b"\xFE", HELLO]));
    }

    #[test]
    fn netty_2_byte_whole_message_length_mid_header_first_fields_stripped() {
        let src = cat(&[b"\xCA", b"\x00\x10", b"\xFE", HELLO]);
        assert_decodes(builder(1, 2, -3, 3), &src, &cat(&[b"\xFE", HELLO]));
    }

    #[test]
    fn every_field_size_in_both_byte_orders() {
        for size in FIELD_SIZES {
            for order in [ByteOrder::BigEndian, ByteOrder::LittleEndian] {
                let mut field = vec![0u8; size];
                match order {
                    ByteOrder::BigEndian => field[size - 1] = 3,
                    ByteOrder::LittleEndian => field[0] = 3,
                }
                let src = cat(&[&field, b"abc"]);
                assert_decodes(builder(0, size, 0, size).byte_order(order), &src, b"abc");
            }
        }
    }

    #[test]
    fn read_field_handles_3_bytes_in_both_orders() {
        assert_eq!(read_field(&[1, 2, 3], ByteOrder::BigEndian), 0x010203);
        assert_eq!(read_field(&[1, 2, 3], ByteOrder::LittleEndian), 0x030201);
    }

    #[test]
    fn empty_payload_is_an_empty_frame() {
        let mut codec = LengthFieldCodec::u32_be(16).unwrap();
        assert_eq!(
            codec.decode(&[0, 0, 0, 0, 9]).unwrap(),
            Decoded::Frame {
                start: 4,
                end: 4,
                consumed: 4
            }
        );
    }

    #[test]
    fn max_frame_length_exactly_reached_is_accepted() {
        let mut codec = LengthFieldCodec::u32_be(10).unwrap();
        let src = cat(&[&[0, 0, 0, 6], b"abcdef"]);
        assert_eq!(
            codec.decode(&src).unwrap(),
            Decoded::Frame {
                start: 4,
                end: 10,
                consumed: 10
            }
        );
        assert!(matches!(
            codec.decode(&[0, 0, 0, 7]),
            Err(CodecError::FrameTooLong { len: 11, max: 10 })
        ));
    }

    #[test]
    fn four_gib_claim_is_refused_without_buffering() {
        let mut codec = LengthFieldCodec::default();
        let err = codec.decode(&[0xff, 0xff, 0xff, 0xff, 1, 2]).unwrap_err();
        assert!(matches!(
            err,
            CodecError::FrameTooLong {
                len: 0x1_0000_0003,
                max: 1_048_576
            }
        ));
        // Carrying on skips the announced frame piece by piece.
        assert_eq!(
            codec.decode(&[0xff, 0xff, 0xff, 0xff, 1, 2]).unwrap(),
            Decoded::Skip(6)
        );
        assert_eq!(codec.discard_remaining, 0x1_0000_0003 - 6);
    }

    #[test]
    fn fail_slow_skips_the_whole_frame_across_calls_then_reports() {
        // netty's testFailSlowTooLongFrameRecovery, with the frame dribbling in.
        let mut codec = builder(0, 4, 0, 4)
            .max_frame_length(5)
            .fail_fast(false)
            .build()
            .unwrap();
        for _ in 0..2 {
            assert_eq!(codec.decode(&[0, 0, 0]).unwrap(), Decoded::Incomplete);
            assert_eq!(codec.decode(&[0, 0, 0, 2]).unwrap(), Decoded::Skip(4));
            assert_eq!(codec.decode(&[]).unwrap(), Decoded::Incomplete);
            assert_eq!(codec.decode(&[0]).unwrap(), Decoded::Skip(1));
            assert_eq!(codec.decode(&[0, 0, 0, 0, 1]).unwrap(), Decoded::Skip(1));
            assert!(matches!(
                codec.decode(&[0, 0, 0, 1]),
                Err(CodecError::FrameTooLong { len: 6, max: 5 })
            ));
            assert_eq!(
                codec.decode(&[0, 0, 0, 1, b'A']).unwrap(),
                Decoded::Frame {
                    start: 4,
                    end: 5,
                    consumed: 5
                }
            );
        }
    }

    #[test]
    fn fail_fast_reports_at_the_header_then_skips_silently() {
        // netty's testFailFastTooLongFrameRecovery.
        let mut codec = builder(0, 4, 0, 4).max_frame_length(5).build().unwrap();
        for _ in 0..2 {
            assert!(matches!(
                codec.decode(&[0, 0, 0, 2]),
                Err(CodecError::FrameTooLong { len: 6, max: 5 })
            ));
            assert_eq!(codec.decode(&[0, 0, 0, 2]).unwrap(), Decoded::Skip(4));
            assert_eq!(
                codec.decode(&[0, 0, 0, 0, 0, 1, b'A']).unwrap(),
                Decoded::Skip(2)
            );
            assert_eq!(
                codec.decode(&[0, 0, 0, 1, b'A']).unwrap(),
                Decoded::Frame {
                    start: 4,
                    end: 5,
                    consumed: 5
                }
            );
        }
    }

    #[test]
    fn whole_over_long_frame_in_buffer_is_skipped_in_one_step() {
        let mut codec = builder(0, 1, 0, 1)
            .max_frame_length(3)
            .fail_fast(false)
            .build()
            .unwrap();
        assert_eq!(codec.decode(b"\x03abc\x01z").unwrap(), Decoded::Skip(4));
        assert!(matches!(
            codec.decode(b"\x01z"),
            Err(CodecError::FrameTooLong { len: 4, max: 3 })
        ));
        assert_eq!(
            codec.decode(b"\x01z").unwrap(),
            Decoded::Frame {
                start: 1,
                end: 2,
                consumed: 2
            }
        );
    }

    #[test]
    fn negative_8_byte_length_is_corrupt_and_its_header_skipped() {
        let mut codec = builder(0, 8, 0, 8).build().unwrap();
        let mut src = vec![0x80, 0, 0, 0, 0, 0, 0, 0];
        src.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b'x']);
        assert!(matches!(codec.decode(&src), Err(CodecError::Corrupt(_))));
        assert_eq!(codec.decode(&src).unwrap(), Decoded::Skip(8));
        assert_eq!(
            codec.decode(&src[8..]).unwrap(),
            Decoded::Frame {
                start: 8,
                end: 9,
                consumed: 9
            }
        );
        // The largest positive 8-byte length is merely too long.
        let mut codec = builder(0, 8, 0, 8).build().unwrap();
        assert!(matches!(
            codec.decode(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(CodecError::FrameTooLong {
                len: 0x8000_0000_0000_0007,
                ..
            })
        ));
    }

    #[test]
    fn length_shorter_than_the_header_is_corrupt() {
        let mut codec = builder(1, 2, -4, 0).build().unwrap();
        // 3 - 4 + 3 = 2 < 3 bytes up to the end of the field.
        assert!(matches!(
            codec.decode(b"T\x00\x03"),
            Err(CodecError::Corrupt(_))
        ));
        assert_eq!(codec.decode(b"T\x00\x03").unwrap(), Decoded::Skip(3));
        // 4 - 4 + 3 = 3: a frame of exactly the header is fine.
        assert_eq!(
            codec.decode(b"T\x00\x04").unwrap(),
            Decoded::Frame {
                start: 0,
                end: 3,
                consumed: 3
            }
        );
    }

    #[test]
    fn stripping_more_than_the_frame_is_corrupt_and_skips_the_frame() {
        let mut codec = builder(0, 1, 0, 3).build().unwrap();
        assert!(matches!(codec.decode(b"\x01"), Err(CodecError::Corrupt(_))));
        assert_eq!(codec.decode(b"\x01ab").unwrap(), Decoded::Skip(2));
        assert_eq!(
            codec.decode(b"\x02abc").unwrap(),
            Decoded::Frame {
                start: 3,
                end: 3,
                consumed: 3
            }
        );
    }

    #[test]
    fn configuration_is_validated() {
        let invalid =
            |b: LengthFieldCodecBuilder| matches!(b.build(), Err(CodecError::InvalidConfig(_)));
        for size in [0, 5, 6, 7, 9, 16] {
            assert!(invalid(builder(0, size, 0, 0)), "size {size}");
        }
        assert!(invalid(LengthFieldCodec::builder().max_frame_length(0)));
        assert!(invalid(builder(3, 2, 0, 0).max_frame_length(4)));
        assert!(!invalid(builder(2, 2, 0, 0).max_frame_length(4)));
        assert!(invalid(
            builder(usize::MAX, 2, 0, 0).max_frame_length(usize::MAX)
        ));
        assert!(invalid(builder(0, 4, i64::MIN, 0)));
        assert!(LengthFieldCodec::u32_be(3).is_err());
        assert!(LengthFieldPrepender::new(0).is_err());
    }

    #[test]
    fn prepender_writes_every_size_in_both_orders() {
        let p = |size| LengthFieldPrepender::new(size).unwrap();
        assert_eq!(p(1).encode(b"ab").unwrap().head(), [2]);
        assert_eq!(p(2).encode(b"ab").unwrap().head(), [0, 2]);
        assert_eq!(p(3).encode(b"ab").unwrap().head(), [0, 0, 2]);
        assert_eq!(p(4).encode(b"ab").unwrap().head(), [0, 0, 0, 2]);
        assert_eq!(p(8).encode(b"ab").unwrap().head(), [0, 0, 0, 0, 0, 0, 0, 2]);
        let le = p(3).byte_order(ByteOrder::LittleEndian);
        assert_eq!(le.encode(&[0; 0x0102]).unwrap().head(), [2, 1, 0]);
    }

    #[test]
    fn prepender_adjustments_and_limits() {
        let p = LengthFieldPrepender::new(1)
            .unwrap()
            .length_includes_length_field(true);
        assert_eq!(p.encode(&[0; 254]).unwrap().head(), [255]);
        assert!(matches!(
            p.encode(&[0; 255]),
            Err(CodecError::FrameTooLong { len: 255, max: 254 })
        ));
        let p = LengthFieldPrepender::new(2).unwrap().length_adjustment(-3);
        assert!(matches!(p.encode(b"ab"), Err(CodecError::Corrupt(_))));
        assert_eq!(p.encode(b"abc").unwrap().head(), [0, 0]);
        let p = LengthFieldPrepender::new(2)
            .unwrap()
            .length_adjustment(1 << 20);
        assert!(matches!(
            p.encode(b""),
            Err(CodecError::FrameTooLong { len: 0, max: 0 })
        ));
    }

    #[test]
    fn default_prepender_output_decodes_to_header_and_body() {
        for adjustment in [-6, -2, 0, 3] {
            let mut codec = builder(0, 2, adjustment, 2).build().unwrap();
            let mut wire = Vec::new();
            codec.encode(b"payload").unwrap().write_to(&mut wire);
            let mut frames = Vec::new();
            super::super::decode_all(&mut codec, &wire, |f| frames.push(f.to_vec())).unwrap();
            assert_eq!(frames, [b"payload".to_vec()], "adjustment {adjustment}");
        }
    }

    #[test]
    fn u32_be_echoes_a_stream_byte_for_byte() {
        let mut codec = LengthFieldCodec::u32_be(64).unwrap();
        let mut wire = Vec::new();
        for payload in [&b""[..], b"a", &[7; 60]] {
            codec.encode(payload).unwrap().write_to(&mut wire);
        }
        let mut payloads = Vec::new();
        let used =
            super::super::decode_all(&mut codec, &wire, |p| payloads.push(p.to_vec())).unwrap();
        assert_eq!(used, wire.len());
        let mut echoed = Vec::new();
        for payload in &payloads {
            codec.encode(payload).unwrap().write_to(&mut echoed);
        }
        assert_eq!(echoed, wire);
    }
}
