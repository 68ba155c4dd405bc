//! Decoder throughput over realistic frame mixes, decoding a whole buffer
//! at once or fed in socket-sized reads the way the engine adapter does.

use std::hint::black_box;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use netloom::codec::{
    decode_all, Codec, DelimiterCodec, FixedLengthCodec, LengthFieldCodec, LineCodec,
};

/// Size of one simulated socket read.
const READ_SIZE: usize = 4096;
/// Bytes of encoded frames per benchmark iteration, roughly.
const STREAM_BYTES: usize = 1 << 20;

/// Frame size mixes.
#[derive(Clone, Copy)]
enum Mix {
    /// 16 to 64 bytes, like chat messages or RPC heartbeats.
    Small,
    /// 4 to 64 KiB, like file chunks or batched responses.
    Large,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Small => "small_16-64B",
            Mix::Large => "large_4-64KiB",
        }
    }

    fn sizes(self) -> (usize, usize) {
        match self {
            Mix::Small => (16, 64),
            Mix::Large => (4 << 10, 64 << 10),
        }
    }
}

/// Deterministic frames of the mix, printable letters only (so they never
/// contain a line break or the delimiters below), totalling about
/// `STREAM_BYTES`.
fn frames(mix: Mix) -> Vec<Vec<u8>> {
    let (min, max) = mix.sizes();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        // xorshift64: cheap, fixed sequence, good enough for sizes.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    let mut total = 0;
    while total < STREAM_BYTES {
        let len = min + (next() as usize) % (max - min + 1);
        out.push((0..len).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
        total += len;
    }
    out
}

fn encode_stream(codec: &mut impl Codec, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for frame in frames {
        codec
            .encode(frame)
            .expect("frame encodes")
            .write_to(&mut wire);
    }
    wire
}

/// Decodes the whole stream in one call; returns the frame bytes seen.
fn decode_whole(codec: &mut impl Codec, wire: &[u8]) -> usize {
    let mut seen = 0;
    let used = decode_all(codec, wire, |frame| seen += frame.len()).expect("decodes");
    assert_eq!(used, wire.len());
    seen
}

/// Feeds the stream in `READ_SIZE` reads, appending to a pending buffer and
/// dropping what each `decode_all` consumed, like the engine adapter.
fn decode_chunked(codec: &mut impl Codec, wire: &[u8], pending: &mut Vec<u8>) -> usize {
    let mut seen = 0;
    pending.clear();
    for read in wire.chunks(READ_SIZE) {
        pending.extend_from_slice(read);
        let used = decode_all(codec, pending, |frame| seen += frame.len()).expect("decodes");
        pending.drain(..used);
    }
    assert!(pending.is_empty());
    seen
}

fn bench_codec<C: Codec>(c: &mut Criterion, name: &str, make: impl Fn(Mix) -> (C, Vec<Vec<u8>>)) {
    let mut group = c.benchmark_group(name);
    for mix in [Mix::Small, Mix::Large] {
        let (mut codec, frames) = make(mix);
        let wire = encode_stream(&mut codec, &frames);
        let payload: usize = frames.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_with_input(BenchmarkId::new("whole", mix.name()), &wire, |b, wire| {
            b.iter(|| assert_eq!(decode_whole(&mut codec, black_box(wire)), payload));
        });
        let mut pending = Vec::with_capacity(2 * READ_SIZE);
        group.bench_with_input(
            BenchmarkId::new("chunked_4KiB", mix.name()),
            &wire,
            |b, wire| {
                b.iter(|| {
                    assert_eq!(
                        decode_chunked(&mut codec, black_box(wire), &mut pending),
                        payload
                    )
                });
            },
        );
    }
    group.finish();
}

fn codecs(c: &mut Criterion) {
    bench_codec(c, "line", |mix| {
        (
            LineCodec::builder().max_length(1 << 20).build(),
            frames(mix),
        )
    });
    bench_codec(c, "delimiter", |mix| {
        let codec = DelimiterCodec::builder()
            .delimiter(b"\r\n\r\n")
            .delimiter(b"\0")
            .max_length(1 << 20)
            .build()
            .expect("valid delimiters");
        (codec, frames(mix))
    });
    bench_codec(c, "fixed_length", |mix| {
        let (_, max) = mix.sizes();
        let frames = frames(mix).into_iter().map(|mut f| {
            f.resize(max, b'z');
            f
        });
        (
            FixedLengthCodec::new(max).expect("non-zero"),
            frames.collect(),
        )
    });
    bench_codec(c, "length_field_u32_be", |mix| {
        (
            LengthFieldCodec::u32_be(1 << 20).expect("valid"),
            frames(mix),
        )
    });
}

// criterion_group! defines an undocumented `pub fn`; this is the only item
// the allowance covers.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::codecs);
}
criterion_main!(group::benches);
