#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom::codec::LineCodec;
use netloom_fuzz::{check_chunking_independence, Input};

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let [max, flags, ..] = input.config;
    let max_length = usize::from(max) * 4;
    let strip = flags & 2 != 0;
    let make = || {
        LineCodec::builder()
            .max_length(max_length)
            .fail_fast(flags & 1 != 0)
            .strip_delimiter(strip)
            .build()
    };
    let max_frame = max_length + if strip { 0 } else { 2 };
    check_chunking_independence(make, &input, max_frame);
});
