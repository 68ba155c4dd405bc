#![no_main]
//! The RESP example's command parser (`examples/redis/resp.rs`), fed the
//! way the server feeds it: in reads, each call given the unconsumed bytes.
//! It must never panic, report commands within its input, and find the same
//! commands and the same protocol error whether the stream comes in one read
//! or in many (it resumes where the last read stopped).

use libfuzzer_sys::fuzz_target;
use netloom_fuzz::{read_ends, Input};

#[allow(dead_code)]
#[path = "../../examples/redis/resp.rs"]
mod resp;

use resp::{CommandParser, Parsed, ProtocolError};

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Command(Vec<Vec<u8>>),
    Error(ProtocolError),
}

fn serve(stream: &[u8], chunk_seed: &[u8]) -> Vec<Event> {
    let mut parser = CommandParser::default();
    let mut events = Vec::new();
    let mut consumed = 0;
    for end in read_ends(stream.len(), chunk_seed) {
        while consumed < end {
            let input = &stream[consumed..end];
            match parser.parse(input) {
                Ok(Parsed::Partial) => break,
                Ok(Parsed::Command { len }) => {
                    assert!(
                        len > 0 && len <= input.len(),
                        "length {len} of {}",
                        input.len()
                    );
                    let args = parser.args().iter().map(|r| {
                        assert!(r.start <= r.end && r.end <= len, "{r:?} outside {len}");
                        input[r.clone()].to_vec()
                    });
                    events.push(Event::Command(args.collect()));
                    consumed += len;
                    parser.release_spare();
                }
                Err(e) => {
                    events.push(Event::Error(e));
                    return events;
                }
            }
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let chunked = serve(input.stream, input.chunk_seed);
    let whole = serve(input.stream, &[]);
    assert_eq!(chunked, whole, "commands depend on how the stream was cut");
});
