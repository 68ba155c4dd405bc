#![no_main]
//! The HTTP examples' request parser and exchange (`examples/http/parse.rs`
//! and `session.rs`, shared by `http` and `http_async`), fed the way both
//! servers feed it: in reads, each call given the unconsumed bytes, until an
//! answer closes the connection. It must never panic, never consume more
//! than it was given, and answer the same bytes whether the stream comes in
//! one read or in many. The config bytes pick small limits, so that the
//! refusals (413, 414, 431) are reached.

use libfuzzer_sys::fuzz_target;
use netloom_fuzz::{read_ends, Input};

#[allow(dead_code)]
#[path = "../../examples/http/date.rs"]
mod date;
#[allow(dead_code)]
#[path = "../../examples/http/parse.rs"]
mod parse;
#[allow(dead_code)]
#[path = "../../examples/http/session.rs"]
mod session;

use parse::Limits;
use session::Session;

const DATE: &[u8; date::HTTP_DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn exchange(stream: &[u8], chunk_seed: &[u8], limits: &Limits) -> Vec<u8> {
    let mut session = Session::default();
    let mut out = Vec::new();
    let mut consumed = 0;
    for end in read_ends(stream.len(), chunk_seed) {
        let input = &stream[consumed..end];
        let batch = session::serve(&mut session, input, limits, DATE, &mut out);
        assert!(
            batch.consumed <= input.len(),
            "consumed {} of {}",
            batch.consumed,
            input.len()
        );
        consumed += batch.consumed;
        if batch.close {
            break;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let [head, headers, body, _] = input.config;
    let limits = Limits {
        max_head: 16 + usize::from(head) * 4,
        max_headers: usize::from(headers % 16) + 1,
        max_body: u64::from(body) * 16,
    };
    let chunked = exchange(input.stream, input.chunk_seed, &limits);
    let whole = exchange(input.stream, &[], &limits);
    assert!(
        chunked == whole,
        "answers depend on how the stream was cut:\n{}\n---\n{}",
        String::from_utf8_lossy(&chunked),
        String::from_utf8_lossy(&whole)
    );
});
