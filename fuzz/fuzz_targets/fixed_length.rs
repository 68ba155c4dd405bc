#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom::codec::FixedLengthCodec;
use netloom_fuzz::{feed, Event, Input};

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let frame_length = usize::from(input.config[0]) + 1;
    let mut codec = FixedLengthCodec::new(frame_length).expect("non-zero length");
    let events = feed(&mut codec, input.stream, input.chunk_seed, frame_length);
    let expected: Vec<Event> = input
        .stream
        .chunks_exact(frame_length)
        .map(|frame| Event::Frame(frame.to_vec()))
        .collect();
    assert_eq!(events, expected);
});
