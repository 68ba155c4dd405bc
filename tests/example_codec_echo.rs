//! Black-box tests of `examples/codec_echo.rs`, run as a separate process.

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use util::{connect, pattern, ExampleServer};

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn length_field_echoes_byte_for_byte_and_rejects_4_gib() {
    let server = ExampleServer::start(
        "codec_echo",
        &["--addr", "tcp://127.0.0.1:0", "--codec", "length-field"],
    );
    let streams: Vec<_> = (0..20).map(|_| connect(server.addr)).collect();
    let bad = connect(server.addr);
    (&bad).write_all(&[0xff, 0xff, 0xff, 0xff, 0]).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    (&bad).read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "the hostile connection is closed without a reply"
    );
    for (i, stream) in streams.iter().enumerate() {
        // Frames up to the 1 MiB maximum, several per write.
        let mut wire = Vec::new();
        for j in 0..4 {
            let len = if j == 0 {
                1 << 20
            } else {
                (i * 997 + j * 31) % 5000
            };
            wire.extend(frame(&pattern((i * 10 + j) as u64, len)));
        }
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let sent = wire.clone();
        let send = std::thread::spawn(move || (&writer).write_all(&sent).unwrap());
        let mut back = vec![0; wire.len()];
        (&*stream).read_exact(&mut back).unwrap();
        send.join().unwrap();
        assert!(back == wire, "connection {i} corrupted");
    }
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn line_codec_answers_crlf_and_lf_lines_with_lf() {
    let server = ExampleServer::start("codec_echo", &["--addr", "tcp://127.0.0.1:0"]);
    let stream = connect(server.addr);
    (&stream).write_all(b"hello\r\nworld\npartial").unwrap();
    let mut back = [0; 12];
    (&stream).read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello\nworld\n");
    (&stream).write_all(b" line\n").unwrap();
    let mut back = [0; 13];
    (&stream).read_exact(&mut back).unwrap();
    assert_eq!(&back, b"partial line\n");
    assert!(server.terminate().success());
}

#[test]
fn delimiter_and_fixed_codecs_echo_frames() {
    let server = ExampleServer::start(
        "codec_echo",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--codec",
            "delimiter",
            "--delimiter",
            "||",
            "--delimiter",
            "#",
        ],
    );
    let stream = connect(server.addr);
    (&stream).write_all(b"a||b#c#||").unwrap();
    let mut back = [0; 11];
    (&stream).read_exact(&mut back).unwrap();
    assert_eq!(
        &back, b"a||b||c||||",
        "the empty frame between # and || is a frame"
    );
    drop(server);

    let server = ExampleServer::start(
        "codec_echo",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--codec",
            "fixed",
            "--frame-length",
            "3",
        ],
    );
    let stream = connect(server.addr);
    (&stream).write_all(b"abcdefg").unwrap();
    let mut back = [0; 6];
    (&stream).read_exact(&mut back).unwrap();
    assert_eq!(&back, b"abcdef");
    assert!(server.terminate().success());
}

/// The header promises that an over-long frame closes its connection as soon
/// as the maximum is crossed: a client that never sends the delimiter is not
/// left streaming into a discarding codec for ever.
#[test]
fn over_long_lines_and_delimited_frames_close_their_connection_at_once() {
    for (codec, delimiter) in [("line", b'\n'), ("delimiter", b';')] {
        let server = ExampleServer::start(
            "codec_echo",
            &[
                "--addr",
                "tcp://127.0.0.1:0",
                "--codec",
                codec,
                "--max-length",
                "100",
            ],
        );
        let good = connect(server.addr);
        let bad = connect(server.addr);
        // Past the maximum, with no delimiter and the connection left open.
        (&bad).write_all(&[b'x'; 1000]).unwrap();
        let mut rest = Vec::new();
        (&bad)
            .read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("{codec}: not closed within 10 s: {e}"));
        assert!(rest.is_empty(), "{codec}: nothing echoed");
        // Frames up to the maximum are still served to the others.
        let mut frame = pattern(7, 100);
        for b in &mut frame {
            if *b == b'\n' || *b == b'\r' || *b == b';' {
                *b = b'.';
            }
        }
        frame.push(delimiter);
        (&good).write_all(&frame).unwrap();
        let mut back = vec![0; frame.len()];
        (&good).read_exact(&mut back).unwrap();
        assert_eq!(back, frame, "{codec}");
        assert!(server.terminate().success());
    }
}
