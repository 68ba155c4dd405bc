//! Lines ended by `\n` or `\r\n`, after netty's `LineBasedFrameDecoder`.

use super::scan::{DelimitedDecoder, Finder};
use super::{Codec, CodecError, Decoded, Encoded};

/// Decodes lines ended by `\n` or `\r\n` and encodes frames as lines.
///
/// * The delimiter is stripped from decoded lines unless
///   [`LineCodecBuilder::strip_delimiter`] says otherwise.
/// * A line longer than [`LineCodecBuilder::max_length`] (delimiter not
///   counted; default 8 KiB) is discarded up to and including its delimiter
///   and reported as [`CodecError::FrameTooLong`]: after the discarding by
///   default, or as soon as the limit is crossed with
///   [`LineCodecBuilder::fail_fast`].
/// * Bytes already scanned are not scanned again when more data arrives.
///
/// # Examples
///
/// ```
/// use netloom::codec::{Codec, Decoded, LineCodec};
///
/// let mut codec = LineCodec::new();
/// assert_eq!(codec.decode(b"ab\r").unwrap(), Decoded::Incomplete);
/// assert_eq!(
///     codec.decode(b"ab\r\ncd").unwrap(),
///     Decoded::Frame { start: 0, end: 2, consumed: 4 }
/// );
/// ```
#[derive(Debug, Clone)]
pub struct LineCodec {
    decoder: DelimitedDecoder<LineFinder>,
    ending: LineEnding,
}

/// The line ending [`LineCodec`] appends when encoding.
///
/// # Examples
///
/// ```
/// use netloom::codec::LineEnding;
///
/// assert_eq!(LineEnding::CrLf.as_bytes(), b"\r\n");
/// assert_eq!(LineEnding::default(), LineEnding::Lf);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\n`
    #[default]
    Lf,
    /// `\r\n`
    CrLf,
}

impl LineEnding {
    /// The ending's bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(netloom::codec::LineEnding::Lf.as_bytes(), b"\n");
    /// ```
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Lf => b"\n",
            LineEnding::CrLf => b"\r\n",
        }
    }
}

/// Configures a [`LineCodec`].
///
/// # Examples
///
/// ```
/// use netloom::codec::{LineCodec, LineEnding};
///
/// let codec = LineCodec::builder()
///     .max_length(1024)
///     .strip_delimiter(false)
///     .fail_fast(true)
///     .encode_ending(LineEnding::CrLf)
///     .build();
/// # let _ = codec;
/// ```
#[derive(Debug, Clone)]
pub struct LineCodecBuilder {
    max_length: usize,
    strip_delimiter: bool,
    fail_fast: bool,
    ending: LineEnding,
}

impl Default for LineCodecBuilder {
    fn default() -> Self {
        Self {
            max_length: LineCodec::DEFAULT_MAX_LENGTH,
            strip_delimiter: true,
            fail_fast: false,
            ending: LineEnding::Lf,
        }
    }
}

impl LineCodecBuilder {
    /// Longest accepted line, delimiter not counted (default
    /// [`LineCodec::DEFAULT_MAX_LENGTH`]). A line of exactly this length is
    /// accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{decode_all, LineCodec};
    ///
    /// let mut codec = LineCodec::builder().max_length(2).build();
    /// assert!(decode_all(&mut codec, b"ab\n", |_| {}).is_ok());
    /// assert!(decode_all(&mut codec, b"abc\n", |_| {}).is_err());
    /// ```
    pub fn max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// Whether decoded lines leave out their `\n` or `\r\n` (default `true`).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{decode_all, LineCodec};
    ///
    /// let mut codec = LineCodec::builder().strip_delimiter(false).build();
    /// let mut line = Vec::new();
    /// decode_all(&mut codec, b"hi\r\n", |f| line = f.to_vec()).unwrap();
    /// assert_eq!(line, b"hi\r\n");
    /// ```
    pub fn strip_delimiter(mut self, strip: bool) -> Self {
        self.strip_delimiter = strip;
        self
    }

    /// Report an over-long line as soon as the limit is crossed (`true`),
    /// or only once it has been discarded up to its delimiter (`false`, the
    /// default).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, LineCodec};
    ///
    /// let mut codec = LineCodec::builder().max_length(2).fail_fast(true).build();
    /// assert!(codec.decode(b"abc").is_err());
    /// ```
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// The ending appended by [`Codec::encode`] (default `\n`).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, LineCodec, LineEnding};
    ///
    /// let mut codec = LineCodec::builder().encode_ending(LineEnding::CrLf).build();
    /// assert_eq!(codec.encode(b"x").unwrap().tail(), b"\r\n");
    /// ```
    pub fn encode_ending(mut self, ending: LineEnding) -> Self {
        self.ending = ending;
        self
    }

    /// Builds the codec.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = netloom::codec::LineCodec::builder().build();
    /// # let _ = codec;
    /// ```
    pub fn build(self) -> LineCodec {
        LineCodec {
            decoder: DelimitedDecoder::new(
                LineFinder,
                self.max_length,
                self.strip_delimiter,
                self.fail_fast,
            ),
            ending: self.ending,
        }
    }
}

impl LineCodec {
    /// Default longest line: 8 KiB.
    pub const DEFAULT_MAX_LENGTH: usize = 8 * 1024;

    /// A codec with the defaults: 8 KiB lines, delimiter stripped, errors
    /// after discarding, `\n` appended when encoding.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, LineCodec};
    ///
    /// let mut codec = LineCodec::new();
    /// assert!(codec.decode(b"no newline yet").is_ok());
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a codec.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = netloom::codec::LineCodec::builder().max_length(80).build();
    /// # let _ = codec;
    /// ```
    pub fn builder() -> LineCodecBuilder {
        LineCodecBuilder::default()
    }
}

impl Default for LineCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec for LineCodec {
    fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError> {
        self.decoder.decode(src)
    }

    /// Appends the configured line ending. The frame is not checked for
    /// embedded line breaks: a frame holding several lines is sent as is.
    fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
        Ok(Encoded::new(frame).with_tail(self.ending.as_bytes()))
    }
}

/// Finds `\n`, taking a `\r` right before it as part of the line ending.
#[derive(Debug, Clone, Copy)]
struct LineFinder;

impl Finder for LineFinder {
    fn find(&self, src: &[u8], from: usize) -> Option<(usize, usize)> {
        let newline = from + src[from..].iter().position(|&b| b == b'\n')?;
        // The `\r` may sit before `from`: it was scanned without a verdict.
        if newline > 0 && src[newline - 1] == b'\r' {
            Some((newline - 1, 2))
        } else {
            Some((newline, 1))
        }
    }

    fn undecided_tail(&self, src: &[u8]) -> usize {
        usize::from(src.last() == Some(&b'\r'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(codec: &mut LineCodec, src: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let mut out = Vec::new();
        let used = super::super::decode_all(codec, src, |f| out.push(f.to_vec())).unwrap();
        (out, used)
    }

    fn frame(start: usize, end: usize, consumed: usize) -> Decoded {
        Decoded::Frame {
            start,
            end,
            consumed,
        }
    }

    fn too_long(result: Result<Decoded, CodecError>) -> (u64, usize) {
        match result {
            Err(CodecError::FrameTooLong { len, max }) => (len, max),
            other => panic!("expected FrameTooLong, got {other:?}"),
        }
    }

    #[test]
    fn both_endings_are_stripped_by_default() {
        let (lines, used) = frames(&mut LineCodec::new(), b"a\nbb\r\nc\rd\n\nrest");
        assert_eq!(lines, [&b"a"[..], b"bb", b"c\rd", b""]);
        assert_eq!(used, 11);
    }

    #[test]
    fn keeping_the_delimiter_keeps_exactly_the_ending_seen() {
        let mut codec = LineCodec::builder().strip_delimiter(false).build();
        let (lines, _) = frames(&mut codec, b"a\nbb\r\n\n");
        assert_eq!(lines, [&b"a\n"[..], b"bb\r\n", b"\n"]);
    }

    #[test]
    fn empty_line_is_an_empty_frame() {
        let mut codec = LineCodec::new();
        assert_eq!(codec.decode(b"\n").unwrap(), frame(0, 0, 1));
        assert_eq!(codec.decode(b"\r\n").unwrap(), frame(0, 0, 2));
        assert_eq!(codec.decode(b"").unwrap(), Decoded::Incomplete);
    }

    #[test]
    fn crlf_split_across_calls() {
        let mut codec = LineCodec::new();
        assert_eq!(codec.decode(b"abc\r").unwrap(), Decoded::Incomplete);
        assert_eq!(codec.decode(b"abc\r\n").unwrap(), frame(0, 3, 5));
    }

    #[test]
    fn carriage_return_at_the_limit_does_not_count_until_decided() {
        // "ab\r" is 3 bytes but may be "ab" + "\r\n": not too long yet.
        let mut codec = LineCodec::builder().max_length(2).fail_fast(true).build();
        assert_eq!(codec.decode(b"ab\r").unwrap(), Decoded::Incomplete);
        assert_eq!(codec.decode(b"ab\r\n").unwrap(), frame(0, 2, 4));
        // ... but a `\r` followed by anything else is line content.
        assert_eq!(codec.decode(b"ab\r").unwrap(), Decoded::Incomplete);
        assert_eq!(too_long(codec.decode(b"ab\rx")), (4, 2));
    }

    #[test]
    fn max_length_exactly_reached_is_accepted() {
        let mut codec = LineCodec::builder().max_length(3).build();
        assert_eq!(codec.decode(b"abc").unwrap(), Decoded::Incomplete);
        assert_eq!(codec.decode(b"abc\n").unwrap(), frame(0, 3, 4));
        assert_eq!(codec.decode(b"abc\r\n").unwrap(), frame(0, 3, 5));
        // One more byte with its delimiter already here: skipped, then reported.
        assert_eq!(codec.decode(b"abcd\nx").unwrap(), Decoded::Skip(5));
        assert_eq!(too_long(codec.decode(b"x")), (4, 3));
        assert_eq!(codec.decode(b"x").unwrap(), Decoded::Incomplete);
    }

    #[test]
    fn discard_mode_spans_several_calls_then_reports() {
        let mut codec = LineCodec::builder().max_length(4).build();
        let mut pending = Vec::new();
        let mut steps = Vec::new();
        for chunk in [&b"012345"[..], b"6789", b"ab\r", b"\nok\n"] {
            pending.extend_from_slice(chunk);
            loop {
                match codec.decode(&pending) {
                    Ok(Decoded::Skip(n)) => {
                        steps.push(format!("skip {n}"));
                        pending.drain(..n);
                    }
                    Ok(Decoded::Frame {
                        start,
                        end,
                        consumed,
                    }) => {
                        steps.push(String::from_utf8(pending[start..end].to_vec()).unwrap());
                        pending.drain(..consumed);
                    }
                    Ok(Decoded::Incomplete) => break,
                    Err(e) => steps.push(e.to_string()),
                }
            }
        }
        assert_eq!(
            steps,
            [
                "skip 6",
                "skip 4",
                "skip 2",
                "skip 2",
                "frame of 12 bytes exceeds the maximum of 4 bytes",
                "ok"
            ]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn fail_fast_reports_once_then_discards_silently() {
        let mut codec = LineCodec::builder().max_length(4).fail_fast(true).build();
        assert_eq!(too_long(codec.decode(b"012345")), (6, 4));
        assert_eq!(codec.decode(b"012345").unwrap(), Decoded::Skip(6));
        assert_eq!(codec.decode(b"67").unwrap(), Decoded::Skip(2));
        assert_eq!(codec.decode(b"8\nok\n").unwrap(), Decoded::Skip(2));
        assert_eq!(codec.decode(b"ok\n").unwrap(), frame(0, 2, 3));
    }

    #[test]
    fn scanned_bytes_are_not_rescanned() {
        let mut codec = LineCodec::new();
        assert_eq!(codec.decode(b"abc").unwrap(), Decoded::Incomplete);
        // Were bytes before the resume point scanned again, this `\n` (which
        // the caller illegally rewrote) would be found.
        assert_eq!(codec.decode(b"a\ncd").unwrap(), Decoded::Incomplete);
        assert_eq!(codec.decode(b"a\ncd\n").unwrap(), frame(0, 4, 5));
    }

    #[test]
    fn a_shrinking_buffer_does_not_panic() {
        let mut codec = LineCodec::new();
        assert_eq!(codec.decode(b"abcdef").unwrap(), Decoded::Incomplete);
        assert_eq!(codec.decode(b"a\n").unwrap(), frame(0, 1, 2));
    }

    #[test]
    fn encode_appends_the_configured_ending() {
        let mut lf = LineCodec::new();
        let out = lf.encode(b"hi").unwrap();
        assert_eq!(
            (out.head(), out.body(), out.tail()),
            (&b""[..], &b"hi"[..], &b"\n"[..])
        );
        let mut crlf = LineCodec::builder().encode_ending(LineEnding::CrLf).build();
        let mut wire = Vec::new();
        crlf.encode(b"").unwrap().write_to(&mut wire);
        assert_eq!(wire, b"\r\n");
    }
}
