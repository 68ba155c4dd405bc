//! Shared harness of the fuzz targets: the codecs, and the request parsers
//! of the HTTP and RESP examples.
//!
//! A fuzz input is `[config: 4 bytes][n: 1 byte][chunk seed: n % 8 bytes][stream]`.
//! The config bytes pick the settings of what is tested, the chunk seed the
//! sizes of the reads the stream is cut into.

use netloom::codec::{Codec, CodecError, Decoded};

/// A fuzz input split into its parts.
pub struct Input<'a> {
    /// Settings for the codec under test.
    pub config: [u8; 4],
    /// Read sizes (each byte + 1), used in turn.
    pub chunk_seed: &'a [u8],
    /// The bytes "received".
    pub stream: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `data`, or `None` if it is too short to hold a config.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (config, rest) = data.split_first_chunk::<4>()?;
        let (&n, rest) = rest.split_first()?;
        let seed_len = usize::from(n % 8).min(rest.len());
        let (chunk_seed, stream) = rest.split_at(seed_len);
        Some(Self {
            config: *config,
            chunk_seed,
            stream,
        })
    }
}

/// What the decoder reported, in order; errors without their details,
/// which may legitimately depend on when they were detected.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A frame's bytes.
    Frame(Vec<u8>),
    /// `FrameTooLong`.
    TooLong,
    /// `Corrupt`.
    Corrupt,
}

/// Feeds `stream` to `codec` in reads of the given sizes, as the engine
/// does, carrying on after errors. Panics if the `Decoded` contract is
/// broken, a frame is longer than `max_frame`, the decoder stops making
/// progress, or it returns an error other than a stream error.
pub fn feed(
    codec: &mut impl Codec,
    stream: &[u8],
    chunk_seed: &[u8],
    max_frame: usize,
) -> Vec<Event> {
    let mut sizes = chunk_seed.iter().map(|&b| usize::from(b) + 1).cycle();
    let mut pending = Vec::new();
    let mut events = Vec::new();
    let mut rest = stream;
    let budget = 3 * stream.len() + 3 * chunk_seed.len() + 16;
    let mut steps = 0;
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).min(rest.len());
        pending.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        loop {
            steps += 1;
            assert!(steps <= budget, "decoder makes no progress");
            match codec.decode(&pending) {
                Ok(Decoded::Frame {
                    start,
                    end,
                    consumed,
                }) => {
                    assert!(start <= end && end <= consumed && consumed <= pending.len());
                    assert!(consumed > 0, "a frame must consume bytes");
                    assert!(
                        end - start <= max_frame,
                        "frame of {} > {max_frame}",
                        end - start
                    );
                    events.push(Event::Frame(pending[start..end].to_vec()));
                    pending.drain(..consumed);
                }
                Ok(Decoded::Skip(n)) => {
                    assert!(n > 0 && n <= pending.len(), "skip {n} of {}", pending.len());
                    pending.drain(..n);
                }
                Ok(Decoded::Incomplete) => break,
                Err(CodecError::FrameTooLong { .. }) => events.push(Event::TooLong),
                Err(CodecError::Corrupt(_)) => events.push(Event::Corrupt),
                Err(other) => panic!("not a stream error: {other:?}"),
            }
        }
    }
    events
}

/// Runs two fresh codecs over `input`: one reading it in the seeded chunks,
/// one in a single read; both must report the same events.
pub fn check_chunking_independence<C: Codec>(
    make: impl Fn() -> C,
    input: &Input<'_>,
    max_frame: usize,
) {
    let chunked = feed(&mut make(), input.stream, input.chunk_seed, max_frame);
    let whole = feed(&mut make(), input.stream, &[], max_frame);
    assert_eq!(chunked, whole, "events depend on how the stream was cut");
}

/// Where each read of `stream_len` bytes ends when they arrive in reads of
/// the sizes `chunk_seed` gives (each byte + 1, in turn); one read if it is
/// empty.
pub fn read_ends(stream_len: usize, chunk_seed: &[u8]) -> Vec<usize> {
    if chunk_seed.is_empty() {
        return vec![stream_len];
    }
    let mut sizes = chunk_seed.iter().map(|&b| usize::from(b) + 1).cycle();
    let mut ends = Vec::new();
    let mut end = 0;
    while end < stream_len {
        end = (end + sizes.next().expect("cycles")).min(stream_len);
        ends.push(end);
    }
    ends
}
