//! Frames of one fixed size, after netty's `FixedLengthFrameDecoder`.

use super::{Codec, CodecError, Decoded, Encoded};

/// Splits the stream into frames of exactly `N` bytes; encodes only frames
/// of exactly `N` bytes, unchanged.
///
/// # Examples
///
/// ```
/// use netloom::codec::{decode_all, Codec, CodecError, FixedLengthCodec};
///
/// let mut codec = FixedLengthCodec::new(2).unwrap();
/// let mut frames = Vec::new();
/// let used = decode_all(&mut codec, b"abcde", |f| frames.push(f.to_vec())).unwrap();
/// assert_eq!((used, frames), (4, vec![b"ab".to_vec(), b"cd".to_vec()]));
/// assert!(matches!(codec.encode(b"abc"), Err(CodecError::LengthMismatch { len: 3, expected: 2 })));
/// ```
#[derive(Debug, Clone)]
pub struct FixedLengthCodec {
    frame_length: usize,
}

impl FixedLengthCodec {
    /// A codec for frames of `frame_length` bytes.
    ///
    /// # Errors
    ///
    /// [`CodecError::InvalidConfig`] if `frame_length` is zero (such frames
    /// would never consume anything).
    ///
    /// # Examples
    ///
    /// ```
    /// use netloom::codec::FixedLengthCodec;
    ///
    /// assert!(FixedLengthCodec::new(0).is_err());
    /// assert_eq!(FixedLengthCodec::new(8).unwrap().frame_length(), 8);
    /// ```
    pub fn new(frame_length: usize) -> Result<Self, CodecError> {
        if frame_length == 0 {
            return Err(CodecError::InvalidConfig(
                "fixed frame length must be at least 1".into(),
            ));
        }
        Ok(Self { frame_length })
    }

    /// The size of every frame.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(netloom::codec::FixedLengthCodec::new(3).unwrap().frame_length(), 3);
    /// ```
    pub fn frame_length(&self) -> usize {
        self.frame_length
    }
}

impl Codec for FixedLengthCodec {
    fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError> {
        Ok(if src.len() >= self.frame_length {
            Decoded::Frame {
                start: 0,
                end: self.frame_length,
                consumed: self.frame_length,
            }
        } else {
            Decoded::Incomplete
        })
    }

    fn encode<'a>(&'a mut self, frame: &'a [u8]) -> Result<Encoded<'a>, CodecError> {
        if frame.len() != self.frame_length {
            return Err(CodecError::LengthMismatch {
                len: frame.len(),
                expected: self.frame_length,
            });
        }
        Ok(Encoded::new(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_whole_frame() {
        let mut codec = FixedLengthCodec::new(3).unwrap();
        assert_eq!(codec.decode(b"").unwrap(), Decoded::Incomplete);
        assert_eq!(codec.decode(b"ab").unwrap(), Decoded::Incomplete);
        let whole = Decoded::Frame {
            start: 0,
            end: 3,
            consumed: 3,
        };
        assert_eq!(codec.decode(b"abc").unwrap(), whole);
        assert_eq!(codec.decode(b"abcd").unwrap(), whole);
    }

    #[test]
    fn encode_checks_the_length_both_ways() {
        let mut codec = FixedLengthCodec::new(2).unwrap();
        assert!(codec.encode(b"a").is_err());
        assert!(codec.encode(b"abc").is_err());
        let out = codec.encode(b"ab").unwrap();
        assert_eq!(
            (out.head(), out.body(), out.tail()),
            (&b""[..], &b"ab"[..], &b""[..])
        );
    }

    #[test]
    fn zero_length_is_rejected() {
        assert!(matches!(
            FixedLengthCodec::new(0),
            Err(CodecError::InvalidConfig(_))
        ));
    }
}
