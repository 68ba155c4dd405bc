//! Property tests: every codec decodes what it encodes however the stream is
//! cut into reads, and arbitrary input never panics nor yields an untyped
//! error.

use netloom::codec::{
    ByteOrder, Codec, CodecError, Decoded, DelimiterCodec, FixedLengthCodec, LengthFieldCodec,
    LengthFieldPrepender, LineCodec, LineEnding,
};
use proptest::prelude::*;

/// What the engine adapter sees, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Frame(Vec<u8>),
    TooLong,
    Corrupt,
}

/// Feeds `stream` to `codec` the way the engine does: each read is appended
/// to the pending bytes, then `decode` runs until it needs more, dropping
/// whatever each step consumed. Errors are recorded and decoding carries on,
/// which exercises the recovery paths too. Checks the `Decoded` contract at
/// every step and returns the events plus the bytes left pending.
fn feed(codec: &mut impl Codec, stream: &[u8], chunk_sizes: &[usize]) -> (Vec<Event>, Vec<u8>) {
    let mut pending = Vec::new();
    let mut events = Vec::new();
    let mut rest = stream;
    let mut sizes = chunk_sizes.iter().cycle();
    // Each step consumes a byte, ends the inner loop, or reports an error
    // (at most two per frame: one deferred, one for the next frame).
    let step_budget = 3 * stream.len() + 3 * chunk_sizes.len() + 16;
    let mut steps = 0;
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap()).clamp(1, rest.len());
        pending.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        loop {
            steps += 1;
            assert!(steps <= step_budget, "decoder makes no progress");
            match codec.decode(&pending) {
                Ok(Decoded::Frame {
                    start,
                    end,
                    consumed,
                }) => {
                    assert!(start <= end && end <= consumed && consumed <= pending.len());
                    assert!(consumed > 0);
                    events.push(Event::Frame(pending[start..end].to_vec()));
                    pending.drain(..consumed);
                }
                Ok(Decoded::Skip(n)) => {
                    assert!(n > 0 && n <= pending.len(), "skip {n} of {}", pending.len());
                    pending.drain(..n);
                }
                Ok(Decoded::Incomplete) => break,
                Err(err) => {
                    events.push(match err {
                        CodecError::FrameTooLong { .. } => Event::TooLong,
                        CodecError::Corrupt(_) => Event::Corrupt,
                        other => panic!("decode returned a non-stream error: {other:?}"),
                    });
                }
            }
        }
    }
    (events, pending)
}

/// Encodes every frame into one byte stream.
fn encode_all(codec: &mut impl Codec, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for frame in frames {
        let encoded = codec.encode(frame).expect("frame encodes");
        assert_eq!(encoded.body(), &frame[..], "the body is the frame itself");
        encoded.write_to(&mut wire);
    }
    wire
}

fn as_events(frames: &[Vec<u8>]) -> Vec<Event> {
    frames.iter().cloned().map(Event::Frame).collect()
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..64, 1usize..2048], 1..8)
}

/// Frames whose bytes avoid `excluded`.
fn frames_without(excluded: &'static [u8], max_len: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = any::<u8>().prop_filter("delimiter byte", move |b| !excluded.contains(b));
    prop::collection::vec(prop::collection::vec(byte, 0..max_len), 0..24)
}

fn byte_order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::BigEndian), Just(ByteOrder::LittleEndian)]
}

/// Delimiters drawn from a 4-byte alphabet, so they overlap and share
/// prefixes often.
fn delimiter_set() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let delimiter = prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', b'd']), 1..4);
    prop::collection::vec(delimiter, 1..4)
}

fn delimiter_codec(delimiters: &[Vec<u8>]) -> netloom::codec::DelimiterCodecBuilder {
    delimiters
        .iter()
        .fold(DelimiterCodec::builder(), |b, d| b.delimiter(d))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn line_round_trip(
        frames in frames_without(b"\r\n", 200),
        crlf: bool,
        strip: bool,
        chunks in chunk_sizes(),
    ) {
        let ending = if crlf { LineEnding::CrLf } else { LineEnding::Lf };
        let mut codec = LineCodec::builder().encode_ending(ending).strip_delimiter(strip).build();
        let wire = encode_all(&mut codec, &frames);
        let (events, left) = feed(&mut codec, &wire, &chunks);
        let expected: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| if strip { f.clone() } else { [&f[..], ending.as_bytes()].concat() })
            .collect();
        prop_assert_eq!(events, as_events(&expected));
        prop_assert!(left.is_empty());
    }

    #[test]
    fn line_chunking_never_changes_the_outcome(
        stream in prop::collection::vec(prop::sample::select(vec![b'x', b'y', b'\r', b'\n']), 0..400),
        max_length in 0usize..12,
        fail_fast: bool,
        strip: bool,
        chunks in chunk_sizes(),
    ) {
        let build = || LineCodec::builder()
            .max_length(max_length)
            .fail_fast(fail_fast)
            .strip_delimiter(strip)
            .build();
        let (whole, _) = feed(&mut build(), &stream, &[stream.len().max(1)]);
        let (chunked, _) = feed(&mut build(), &stream, &chunks);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn delimiter_round_trip(
        first in prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 1..4),
        others in prop::collection::vec(prop::collection::vec(prop::sample::select(vec![b'c', b'd']), 1..4), 0..3),
        frames in frames_without(b"abcd", 200),
        strip: bool,
        chunks in chunk_sizes(),
    ) {
        // The other delimiters share no byte with the first one or with the
        // frames, so the encoded stream frames unambiguously.
        let mut delimiters = vec![first.clone()];
        delimiters.extend(others);
        let mut codec = delimiter_codec(&delimiters).strip_delimiter(strip).build().unwrap();
        let wire = encode_all(&mut codec, &frames);
        let (events, left) = feed(&mut codec, &wire, &chunks);
        let expected: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| if strip { f.clone() } else { [&f[..], &first[..]].concat() })
            .collect();
        prop_assert_eq!(events, as_events(&expected));
        prop_assert!(left.is_empty());
    }

    #[test]
    fn delimiter_chunking_never_changes_the_outcome(
        delimiters in delimiter_set(),
        stream in prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', b'd', b'e']), 0..400),
        max_length in 0usize..12,
        fail_fast: bool,
        chunks in chunk_sizes(),
    ) {
        let build = || delimiter_codec(&delimiters).max_length(max_length).fail_fast(fail_fast).build().unwrap();
        let (whole, _) = feed(&mut build(), &stream, &[stream.len().max(1)]);
        let (chunked, _) = feed(&mut build(), &stream, &chunks);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn fixed_round_trip(
        frame_length in 1usize..40,
        seed in prop::collection::vec(any::<u8>(), 0..2000),
        chunks in chunk_sizes(),
    ) {
        let frames: Vec<Vec<u8>> = seed.chunks_exact(frame_length).map(<[u8]>::to_vec).collect();
        let mut codec = FixedLengthCodec::new(frame_length).unwrap();
        let wire = encode_all(&mut codec, &frames);
        let (events, left) = feed(&mut codec, &wire, &chunks);
        prop_assert_eq!(events, as_events(&frames));
        prop_assert!(left.is_empty());
    }

    #[test]
    fn length_field_round_trip(
        size in prop::sample::select(vec![1usize, 2, 3, 4, 8]),
        order in byte_order(),
        prepender_adjustment in -3i64..8,
        includes_length_field: bool,
        strip_header: bool,
        fail_fast: bool,
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 3..240), 0..16),
        chunks in chunk_sizes(),
    ) {
        // The prepender writes len + adj (+ size); undo exactly that.
        let decoder_adjustment =
            -prepender_adjustment - if includes_length_field { size as i64 } else { 0 };
        let prepender = LengthFieldPrepender::new(size)
            .unwrap()
            .byte_order(order)
            .length_adjustment(prepender_adjustment)
            .length_includes_length_field(includes_length_field);
        let mut codec = LengthFieldCodec::builder()
            .length_field_size(size)
            .byte_order(order)
            .length_adjustment(decoder_adjustment)
            .initial_bytes_to_strip(if strip_header { size } else { 0 })
            .fail_fast(fail_fast)
            .prepender(prepender)
            .build()
            .unwrap();
        let wire = encode_all(&mut codec, &frames);
        let (events, left) = feed(&mut codec, &wire, &chunks);
        let expected: Vec<Vec<u8>> = if strip_header {
            frames.clone()
        } else {
            // Each header is the first `size` bytes of its frame on the wire.
            let mut at = 0;
            frames
                .iter()
                .map(|f| {
                    let frame = wire[at..at + size + f.len()].to_vec();
                    at += frame.len();
                    frame
                })
                .collect()
        };
        prop_assert_eq!(events, as_events(&expected));
        prop_assert!(left.is_empty());
    }

    #[test]
    fn u32_be_round_trip_and_echo(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..5000), 0..12),
        chunks in chunk_sizes(),
    ) {
        let mut codec = LengthFieldCodec::u32_be(8 * 1024).unwrap();
        let wire = encode_all(&mut codec, &frames);
        let (events, left) = feed(&mut codec, &wire, &chunks);
        prop_assert_eq!(&events, &as_events(&frames));
        prop_assert!(left.is_empty());
        let echoed = encode_all(&mut codec, &frames);
        prop_assert_eq!(echoed, wire);
    }

    #[test]
    fn length_field_chunking_never_changes_the_outcome(
        size in prop::sample::select(vec![1usize, 2, 3, 4, 8]),
        order in byte_order(),
        offset in 0usize..3,
        adjustment in -12i64..12,
        strip in 0usize..12,
        max_extra in 0usize..64,
        fail_fast: bool,
        stream in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), 0u8..16, any::<u8>()], 0..600),
        chunks in chunk_sizes(),
    ) {
        let build = || LengthFieldCodec::builder()
            .length_field_size(size)
            .length_field_offset(offset)
            .byte_order(order)
            .length_adjustment(adjustment)
            .initial_bytes_to_strip(strip)
            .max_frame_length(offset + size + max_extra)
            .fail_fast(fail_fast)
            .build()
            .unwrap();
        let (whole, _) = feed(&mut build(), &stream, &[stream.len().max(1)]);
        let (chunked, _) = feed(&mut build(), &stream, &chunks);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn garbage_never_panics(
        stream in prop::collection::vec(any::<u8>(), 0..3000),
        max_length in 0usize..300,
        fail_fast: bool,
        chunks in chunk_sizes(),
    ) {
        feed(&mut LineCodec::builder().max_length(max_length).fail_fast(fail_fast).build(), &stream, &chunks);
        feed(
            &mut DelimiterCodec::builder()
                .delimiter([0u8])
                .delimiter([1u8, 2])
                .max_length(max_length)
                .fail_fast(fail_fast)
                .build()
                .unwrap(),
            &stream,
            &chunks,
        );
        feed(&mut FixedLengthCodec::new(max_length.max(1)).unwrap(), &stream, &chunks);
        for size in [1, 2, 3, 4, 8] {
            feed(
                &mut LengthFieldCodec::builder()
                    .length_field_size(size)
                    .length_field_offset(1)
                    .length_adjustment(-4)
                    .initial_bytes_to_strip(3)
                    .max_frame_length(max_length + 9)
                    .fail_fast(fail_fast)
                    .build()
                    .unwrap(),
                &stream,
                &chunks,
            );
        }
        feed(&mut LengthFieldCodec::default(), &stream, &chunks);
    }
}
