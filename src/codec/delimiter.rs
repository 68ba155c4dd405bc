//! Frames ended by one of several delimiters, after netty's
//! `DelimiterBasedFrameDecoder`.

use super::scan::{DelimitedDecoder, Finder};
use super::{Codec, CodecError, Decoded, Encoded};

/// Decodes frames ended by any of a set of delimiters; encodes frames by
/// appending the first delimiter.
///
/// * When several delimiters occur, the one giving the shortest frame wins;
///   of two starting at the same byte, the longer delimiter wins.
/// * The delimiter is stripped from decoded frames unless
///   [`DelimiterCodecBuilder::strip_delimiter`] says otherwise.
/// * A frame longer than [`DelimiterCodecBuilder::max_length`] (delimiter
///   not counted; default 8 KiB) is discarded up to and including its
///   delimiter and reported as [`CodecError::FrameTooLong`]: as soon as the
///   limit is crossed (the default, [`DelimiterCodecBuilder::fail_fast`]) or
///   once discarded.
///
/// # Examples
///
/// ```
/// use netloom::codec::{decode_all, Codec, DelimiterCodec};
///
/// let mut codec = DelimiterCodec::builder().delimiter(b"\0").delimiter(b"||").build().unwrap();
/// let mut frames = Vec::new();
/// decode_all(&mut codec, b"a||b\0c", |f| frames.push(f.to_vec())).unwrap();
/// assert_eq!(frames, [b"a".to_vec(), b"b".to_vec()]);
/// assert_eq!(codec.encode(b"z").unwrap().tail(), b"\0");
/// ```
#[derive(Debug, Clone)]
pub struct DelimiterCodec {
    decoder: DelimitedDecoder<DelimiterFinder>,
}

/// Configures a [`DelimiterCodec`]; at least one delimiter is required.
///
/// # Examples
///
/// ```
/// use netloom::codec::DelimiterCodec;
///
/// let codec = DelimiterCodec::builder()
///     .delimiter(b"\r\n\r\n")
///     .max_length(64 * 1024)
///     .strip_delimiter(false)
///     .fail_fast(false)
///     .build()
///     .unwrap();
/// # let _ = codec;
/// ```
#[derive(Debug, Clone)]
pub struct DelimiterCodecBuilder {
    delimiters: Vec<Box<[u8]>>,
    max_length: usize,
    strip_delimiter: bool,
    fail_fast: bool,
}

impl DelimiterCodecBuilder {
    /// Adds a delimiter. The first one added is also the one `encode`
    /// appends.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = netloom::codec::DelimiterCodec::builder().delimiter(b";").build();
    /// assert!(codec.is_ok());
    /// ```
    pub fn delimiter(mut self, delimiter: impl AsRef<[u8]>) -> Self {
        self.delimiters.push(delimiter.as_ref().into());
        self
    }

    /// Longest accepted frame, delimiter not counted (default
    /// [`DelimiterCodec::DEFAULT_MAX_LENGTH`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{decode_all, DelimiterCodec};
    ///
    /// let mut codec = DelimiterCodec::builder().delimiter(b";").max_length(1).build().unwrap();
    /// assert!(decode_all(&mut codec, b"ab;", |_| {}).is_err());
    /// ```
    pub fn max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// Whether decoded frames leave out their delimiter (default `true`).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{decode_all, DelimiterCodec};
    ///
    /// let mut codec = DelimiterCodec::builder().delimiter(b";").strip_delimiter(false).build().unwrap();
    /// let mut frame = Vec::new();
    /// decode_all(&mut codec, b"a;", |f| frame = f.to_vec()).unwrap();
    /// assert_eq!(frame, b"a;");
    /// ```
    pub fn strip_delimiter(mut self, strip: bool) -> Self {
        self.strip_delimiter = strip;
        self
    }

    /// Report an over-long frame as soon as the limit is crossed (`true`,
    /// the default) or only once it has been discarded up to its delimiter.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{Codec, Decoded, DelimiterCodec};
    ///
    /// let mut codec = DelimiterCodec::builder()
    ///     .delimiter(b";")
    ///     .max_length(1)
    ///     .fail_fast(false)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(codec.decode(b"abc").unwrap(), Decoded::Skip(3));
    /// ```
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Builds the codec.
    ///
    /// # Errors
    ///
    /// [`CodecError::InvalidConfig`] without delimiters or with an empty one.
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::{CodecError, DelimiterCodec};
    ///
    /// let err = DelimiterCodec::builder().delimiter(b"").build().unwrap_err();
    /// assert!(matches!(err, CodecError::InvalidConfig(_)));
    /// ```
    pub fn build(self) -> Result<DelimiterCodec, CodecError> {
        if self.delimiters.is_empty() {
            return Err(CodecError::InvalidConfig(
                "a delimiter codec needs at least one delimiter".into(),
            ));
        }
        if self.delimiters.iter().any(|d| d.is_empty()) {
            return Err(CodecError::InvalidConfig(
                "a delimiter cannot be empty".into(),
            ));
        }
        let longest = self.delimiters.iter().map(|d| d.len()).max().unwrap_or(1);
        let finder = DelimiterFinder {
            delimiters: self.delimiters,
            longest,
        };
        Ok(DelimiterCodec {
            decoder: DelimitedDecoder::new(
                finder,
                self.max_length,
                self.strip_delimiter,
                self.fail_fast,
            ),
        })
    }
}

impl DelimiterCodec {
    /// Default longest frame: 8 KiB.
    pub const DEFAULT_MAX_LENGTH: usize = 8 * 1024;

    /// Starts configuring a codec (8 KiB frames, delimiter stripped, fail
    /// fast, no delimiter yet).
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = netloom::codec::DelimiterCodec::builder().delimiter(b"\0").build().unwrap();
    /// # let _ = codec;
    /// ```
    pub fn builder() -> DelimiterCodecBuilder {
        DelimiterCodecBuilder {
            delimiters: Vec::new(),
            max_length: Self::DEFAULT_MAX_LENGTH,
            strip_delimiter: true,
            fail_fast: true,
        }
    }
}

impl Codec for DelimiterCodec {
    fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError> {
        self.decoder.decode(src)
    }

    /// Appends the first delimiter. The frame is not checked for embedded
    /// delimiters.
    fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
        Ok(Encoded::new(frame).with_tail(&self.decoder.finder.delimiters[0]))
    }
}

#[derive(Debug, Clone)]
struct DelimiterFinder {
    /// Never empty, and no delimiter is empty (checked by the builder).
    delimiters: Vec<Box<[u8]>>,
    longest: usize,
}

impl Finder for DelimiterFinder {
    fn find(&self, src: &[u8], from: usize) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for delimiter in &self.delimiters {
            // Only a match starting no later than the best one can beat it.
            let search_end = match best {
                Some((start, _)) => src.len().min(start + delimiter.len()),
                None => src.len(),
            };
            let Some(pos) = src
                .get(from..search_end)
                .and_then(|hay| find_subslice(hay, delimiter))
            else {
                continue;
            };
            let start = from + pos;
            let wins = match best {
                None => true,
                Some((best_start, best_len)) => {
                    start < best_start || (start == best_start && delimiter.len() > best_len)
                }
            };
            if wins {
                best = Some((start, delimiter.len()));
            }
        }
        best
    }

    fn undecided_tail(&self, src: &[u8]) -> usize {
        let longest_candidate = (self.longest - 1).min(src.len());
        (1..=longest_candidate)
            .rev()
            .find(|&k| {
                let suffix = &src[src.len() - k..];
                self.delimiters
                    .iter()
                    .any(|d| d.len() > k && d.starts_with(suffix))
            })
            .unwrap_or(0)
    }
}

/// First position of `needle` (non-empty) in `haystack`.
fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = haystack.len().checked_sub(needle.len())?;
    let mut candidate = 0;
    while candidate <= last_start {
        candidate += haystack[candidate..=last_start]
            .iter()
            .position(|&b| b == first)?;
        if haystack[candidate + 1..candidate + needle.len()] == *rest {
            return Some(candidate);
        }
        candidate += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(delimiters: &[&[u8]]) -> DelimiterCodecBuilder {
        delimiters
            .iter()
            .fold(DelimiterCodec::builder(), |b, d| b.delimiter(d))
    }

    fn frames(codec: &mut DelimiterCodec, src: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        super::super::decode_all(codec, src, |f| out.push(f.to_vec())).unwrap();
        out
    }

    fn frame(start: usize, end: usize, consumed: usize) -> Decoded {
        Decoded::Frame {
            start,
            end,
            consumed,
        }
    }

    #[test]
    fn find_subslice_finds_first_occurrence() {
        assert_eq!(find_subslice(b"aabab", b"ab"), Some(1));
        assert_eq!(find_subslice(b"aaa", b"ab"), None);
        assert_eq!(find_subslice(b"a", b"ab"), None);
        assert_eq!(find_subslice(b"xab", b"ab"), Some(1));
    }

    #[test]
    fn shortest_frame_wins_whatever_the_delimiter_order() {
        for order in [[&b"\n"[..], b"\r\n"], [b"\r\n", b"\n"]] {
            let mut c = codec(&order).build().unwrap();
            assert_eq!(
                frames(&mut c, b"TestLine\r\ng\r\n"),
                [&b"TestLine"[..], b"g"]
            );
        }
        let mut c = codec(&[b"END", b";"]).build().unwrap();
        assert_eq!(frames(&mut c, b"a;bEND"), [&b"a"[..], b"b"]);
        assert_eq!(frames(&mut c, b"aENDb;"), [&b"a"[..], b"b"]);
    }

    #[test]
    fn delimiter_split_across_calls() {
        let mut c = codec(&[b"<eom>"]).build().unwrap();
        assert_eq!(c.decode(b"hi<e").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"hi<eo").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"hi<eom>").unwrap(), frame(0, 2, 7));
        // A false start: "<e" then something else is frame content.
        assert_eq!(c.decode(b"<e").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"<ex<eom>").unwrap(), frame(0, 3, 8));
    }

    #[test]
    fn a_longer_delimiter_that_may_still_complete_is_waited_for() {
        let mut c = codec(&[b"y", b"xyz"]).build().unwrap();
        // "y" is complete, but "xyz" might start one byte earlier.
        assert_eq!(c.decode(b"axy").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"axyz").unwrap(), frame(0, 1, 4));
        assert_eq!(c.decode(b"axy").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"axyq").unwrap(), frame(0, 2, 3));
        // Same start: the longer delimiter is taken.
        let mut c = codec(&[b"a", b"ab"]).build().unwrap();
        assert_eq!(c.decode(b"xa").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"xab").unwrap(), frame(0, 1, 3));
    }

    #[test]
    fn keep_delimiter_and_empty_frames() {
        let mut c = codec(&[b"--"]).strip_delimiter(false).build().unwrap();
        assert_eq!(frames(&mut c, b"----a--"), [&b"--"[..], b"--", b"a--"]);
        let mut c = codec(&[b"--"]).build().unwrap();
        assert_eq!(frames(&mut c, b"----a--"), [&b""[..], b"", b"a"]);
    }

    #[test]
    fn max_length_exactly_reached_and_fail_fast() {
        let mut c = codec(&[b";;"]).max_length(3).build().unwrap();
        assert_eq!(c.decode(b"abc;").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"abc;;").unwrap(), frame(0, 3, 5));
        // Fail fast: reported as soon as 4 bytes are certainly frame content.
        assert!(matches!(
            c.decode(b"abcd;"),
            Err(CodecError::FrameTooLong { len: 4, max: 3 })
        ));
        assert_eq!(c.decode(b"abcd;").unwrap(), Decoded::Skip(4));
        assert_eq!(c.decode(b";").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b";;ok;;").unwrap(), Decoded::Skip(2));
        assert_eq!(c.decode(b"ok;;").unwrap(), frame(0, 2, 4));
    }

    #[test]
    fn discard_then_report_spans_calls() {
        let mut c = codec(&[b"|"])
            .max_length(2)
            .fail_fast(false)
            .build()
            .unwrap();
        assert_eq!(c.decode(b"abc").unwrap(), Decoded::Skip(3));
        assert_eq!(c.decode(b"").unwrap(), Decoded::Incomplete);
        assert_eq!(c.decode(b"de").unwrap(), Decoded::Skip(2));
        assert_eq!(c.decode(b"f|g|").unwrap(), Decoded::Skip(2));
        assert!(matches!(
            c.decode(b"g|"),
            Err(CodecError::FrameTooLong { len: 6, max: 2 })
        ));
        assert_eq!(c.decode(b"g|").unwrap(), frame(0, 1, 2));
    }

    #[test]
    fn complete_over_long_frame_is_skipped_then_reported() {
        let mut c = codec(&[b"|"]).max_length(2).build().unwrap();
        assert_eq!(c.decode(b"abc|d|").unwrap(), Decoded::Skip(4));
        assert!(matches!(
            c.decode(b"d|"),
            Err(CodecError::FrameTooLong { len: 3, max: 2 })
        ));
        assert_eq!(c.decode(b"d|").unwrap(), frame(0, 1, 2));
    }

    #[test]
    fn configuration_errors() {
        assert!(matches!(
            DelimiterCodec::builder().build(),
            Err(CodecError::InvalidConfig(_))
        ));
        assert!(matches!(
            codec(&[b";", b""]).build(),
            Err(CodecError::InvalidConfig(_))
        ));
    }

    #[test]
    fn encode_appends_the_first_delimiter() {
        let mut c = codec(&[b"\r\n", b"\n"]).build().unwrap();
        let mut wire = Vec::new();
        c.encode(b"x").unwrap().write_to(&mut wire);
        assert_eq!(wire, b"x\r\n");
    }
}
