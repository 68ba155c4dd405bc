//! The decoding engine shared by the delimiter-terminated codecs
//! ([`LineCodec`](super::LineCodec) and [`DelimiterCodec`](super::DelimiterCodec)):
//! scanning resumption, the length limit and discard mode. What counts as a
//! delimiter is left to a [`Finder`].

use super::{CodecError, Decoded};

/// Locates delimiters in a buffer.
pub(super) trait Finder {
    /// The earliest complete delimiter starting at or after `from`, as
    /// `(start, delimiter length)`. When two delimiters start at the same
    /// place the longer one wins, so the answer never depends on where the
    /// stream happened to be cut.
    fn find(&self, src: &[u8], from: usize) -> Option<(usize, usize)>;

    /// Length of the longest suffix of `src` that is a proper prefix of some
    /// delimiter, that is the bytes that may still turn into a delimiter once
    /// more data arrives.
    fn undecided_tail(&self, src: &[u8]) -> usize;
}

/// Limits and state of one delimiter-terminated decoder.
#[derive(Debug, Clone)]
pub(super) struct DelimitedDecoder<F> {
    pub(super) finder: F,
    pub(super) max_length: usize,
    pub(super) strip_delimiter: bool,
    pub(super) fail_fast: bool,
    /// Where the next search starts: no delimiter can start before it, so
    /// bytes already scanned are not scanned again.
    scan_from: usize,
    /// Inside an over-long frame: dropping bytes until the next delimiter.
    discarding: bool,
    /// Bytes of the over-long frame dropped so far.
    discarded: u64,
    /// Length of an over-long frame, reported by the next call once its
    /// bytes are skipped.
    deferred_too_long: Option<u64>,
}

impl<F: Finder> DelimitedDecoder<F> {
    pub(super) fn new(
        finder: F,
        max_length: usize,
        strip_delimiter: bool,
        fail_fast: bool,
    ) -> Self {
        Self {
            finder,
            max_length,
            strip_delimiter,
            fail_fast,
            scan_from: 0,
            discarding: false,
            discarded: 0,
            deferred_too_long: None,
        }
    }

    pub(super) fn decode(&mut self, src: &[u8]) -> Result<Decoded, CodecError> {
        if let Some(len) = self.deferred_too_long.take() {
            return Err(self.too_long(len));
        }
        // A caller that passes a shorter buffer than promised must not make us
        // index out of bounds; it merely costs a rescan.
        let from = if self.scan_from <= src.len() {
            self.scan_from
        } else {
            0
        };
        // Everything before `settled` belongs to the current frame unless a
        // delimiter was found there; bytes after it may start a delimiter.
        let settled = src.len() - self.finder.undecided_tail(src);
        match self.finder.find(src, from) {
            // A delimiter that may yet complete and start no later than this
            // one would win, so a match inside the undecided tail must wait.
            Some((start, delimiter_len)) if start < settled => {
                self.scan_from = 0;
                let consumed = start + delimiter_len;
                if self.discarding {
                    self.discarding = false;
                    let total = self.discarded + start as u64;
                    self.discarded = 0;
                    if !self.fail_fast {
                        self.deferred_too_long = Some(total);
                    }
                    return Ok(Decoded::Skip(consumed));
                }
                if start > self.max_length {
                    // The whole frame is here: drop it, then complain.
                    self.deferred_too_long = Some(start as u64);
                    return Ok(Decoded::Skip(consumed));
                }
                let end = if self.strip_delimiter {
                    start
                } else {
                    consumed
                };
                Ok(Decoded::Frame {
                    start: 0,
                    end,
                    consumed,
                })
            }
            _ => {
                self.scan_from = settled;
                if !self.discarding {
                    if settled <= self.max_length {
                        return Ok(Decoded::Incomplete);
                    }
                    self.discarding = true;
                    if self.fail_fast {
                        // Nothing is consumed yet: the next call starts skipping.
                        return Err(self.too_long(settled as u64));
                    }
                }
                if settled == 0 {
                    return Ok(Decoded::Incomplete);
                }
                self.discarded += settled as u64;
                self.scan_from = 0;
                Ok(Decoded::Skip(settled))
            }
        }
    }

    fn too_long(&self, len: u64) -> CodecError {
        CodecError::FrameTooLong {
            len,
            max: self.max_length,
        }
    }
}
