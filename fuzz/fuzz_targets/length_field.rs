#![no_main]

use libfuzzer_sys::fuzz_target;
use netloom::codec::{ByteOrder, LengthFieldCodec};
use netloom_fuzz::{check_chunking_independence, Input};

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let [shape, layout, adjustment, strip] = input.config;
    let size = [1, 2, 3, 4, 8][usize::from(shape % 5)];
    let order = if shape & 8 != 0 {
        ByteOrder::LittleEndian
    } else {
        ByteOrder::BigEndian
    };
    let offset = usize::from(layout % 4);
    let max_frame_length = offset + size + usize::from(layout >> 2) * 4;
    let make = || {
        LengthFieldCodec::builder()
            .length_field_size(size)
            .byte_order(order)
            .length_field_offset(offset)
            // The whole i8 range: negative adjustments make corrupt lengths.
            .length_adjustment(i64::from(adjustment as i8))
            .initial_bytes_to_strip(usize::from(strip % 16))
            .max_frame_length(max_frame_length)
            .fail_fast(shape & 16 != 0)
            .build()
            .expect("valid configuration")
    };
    check_chunking_independence(make, &input, max_frame_length);
});
