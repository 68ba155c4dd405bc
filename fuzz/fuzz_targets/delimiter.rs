#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom::codec::DelimiterCodec;
use netloom_fuzz::{check_chunking_independence, Input};

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let [max, flags, a, b] = input.config;
    // Delimiters over the bytes 0..4, so that they overlap and share
    // prefixes and the fuzzer hits them easily.
    let candidates = [
        vec![a & 3],
        vec![b & 3, (b >> 2) & 3],
        vec![(b >> 4) & 3, (a >> 2) & 3, (a >> 4) & 3],
    ];
    let count = usize::from((flags >> 2) % 3) + 1;
    let strip = flags & 2 != 0;
    let max_length = usize::from(max) * 2;
    let make = || {
        candidates[..count]
            .iter()
            .fold(DelimiterCodec::builder(), |builder, d| builder.delimiter(d))
            .max_length(max_length)
            .fail_fast(flags & 1 != 0)
            .strip_delimiter(strip)
            .build()
            .expect("valid delimiters")
    };
    let max_frame = max_length + if strip { 0 } else { 3 };
    check_chunking_independence(make, &input, max_frame);
});
