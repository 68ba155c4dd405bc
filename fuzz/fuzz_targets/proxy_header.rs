#![no_main]
//! The PROXY protocol header parser (`netloom::proxy_protocol`), fed the
//! way the engine feeds it: one read at a time until it is done or fails.
//! It must never panic, never take more than the read it was given nor
//! more than its bound, and reach the same outcome (header, bytes after it,
//! or error) whether the stream comes in one read or in many. The first
//! config byte picks the version.

use libfuzzer_sys::fuzz_target;
use netloom::proxy_protocol::{
    HeaderParser, Parsed, ProxyHeader, ProxyHeaderError, ProxyProtocol, V1_MAX_LEN, V2_MAX_LEN,
};
use netloom_fuzz::{read_ends, Input};

/// The header and where it ended in `stream`, an error, or `None` when
/// the stream ended first.
type Outcome = Option<Result<(Box<ProxyHeader>, usize), ProxyHeaderError>>;

fn parse(version: ProxyProtocol, stream: &[u8], chunk_seed: &[u8]) -> Outcome {
    let mut parser = HeaderParser::new(version);
    let mut start = 0;
    for end in read_ends(stream.len(), chunk_seed) {
        match parser.feed(&stream[start..end]) {
            Ok(Parsed::Incomplete) => start = end,
            Ok(Parsed::Done { header, consumed }) => {
                assert!(consumed <= end - start, "took {consumed} of {}", end - start);
                return Some(Ok((header, start + consumed)));
            }
            Err(e) => return Some(Err(e)),
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let (version, bound) = match input.config[0] & 1 {
        0 => (ProxyProtocol::V1, V1_MAX_LEN),
        _ => (ProxyProtocol::V2, V2_MAX_LEN),
    };
    let chunked = parse(version, input.stream, input.chunk_seed);
    let whole = parse(version, input.stream, &[]);
    if let Some(Ok((_, end))) = &whole {
        assert!(*end <= bound, "a header of {end} bytes passed the bound {bound}");
    }
    assert_eq!(chunked, whole, "the outcome depends on how the stream was cut");
});
