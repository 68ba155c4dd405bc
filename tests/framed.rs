//! The framed adapter on real sockets: every frame of a wake-up delivered in
//! order, frames split across reads, replies encoded with one writev, and a
//! hostile length field closing only its own connection.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netloom::codec::{CodecError, LengthFieldCodec, LineCodec};
use netloom::{Action, Error, FrameConn, FrameHandler, Framed, Options};
use util::{connect, pattern, start, stop, wait_until};

/// Echoes each length-prefixed frame and records how each connection ended.
#[derive(Default)]
struct FrameEcho {
    frames: AtomicUsize,
    closes: Mutex<Vec<String>>,
}

impl FrameHandler for FrameEcho {
    type Codec = LengthFieldCodec;
    type Context = usize;

    fn new_codec(&self) -> LengthFieldCodec {
        LengthFieldCodec::u32_be(4 + (1 << 20)).unwrap()
    }

    fn on_frame(&self, conn: &mut FrameConn<'_, Self>, frame: &[u8]) -> Action {
        self.frames.fetch_add(1, Ordering::Relaxed);
        **conn.context_mut() += 1;
        match conn.send_frame(frame) {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }

    fn on_close(&self, conn: &mut FrameConn<'_, Self>, err: Option<&Error>) -> Action {
        let seen = **conn.context();
        let what = match err {
            Some(Error::Codec(CodecError::FrameTooLong { len, .. })) => format!("too long {len}"),
            Some(other) => format!("error {other}"),
            None => "clean".to_string(),
        };
        self.closes
            .lock()
            .unwrap()
            .push(format!("{what} after {seen}"));
        Action::None
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn every_frame_of_one_write_is_answered_without_more_input() {
    let handler = Arc::new(FrameEcho::default());
    let (engine, addr) = start(Framed(handler.clone()), Options::default().loops(1));
    let stream = connect(addr);
    // 500 frames of assorted sizes in a single write: all must come back
    // although nothing else is ever sent.
    let mut wire = Vec::new();
    for i in 0..500u64 {
        wire.extend(frame(&pattern(i, (i as usize * 37) % 3000)));
    }
    (&stream).write_all(&wire).unwrap();
    let mut echoed = vec![0; wire.len()];
    (&stream).read_exact(&mut echoed).unwrap();
    assert!(echoed == wire, "echo differs");
    assert_eq!(handler.frames.load(Ordering::Relaxed), 500);
    drop(stream);
    stop(engine);
    assert_eq!(*handler.closes.lock().unwrap(), ["clean after 500"]);
}

#[test]
fn frames_split_at_every_byte_boundary_reassemble() {
    let handler = Arc::new(FrameEcho::default());
    let (engine, addr) = start(Framed(handler.clone()), Options::default().loops(1));
    let stream = connect(addr);
    stream.set_nodelay(true).unwrap();
    let mut wire = Vec::new();
    for i in 0..20u64 {
        wire.extend(frame(&pattern(i, 1 + i as usize * 11)));
    }
    // One byte per write, with pauses so most bytes arrive in reads of their own.
    for (i, byte) in wire.iter().enumerate() {
        (&stream).write_all(&[*byte]).unwrap();
        if i % 7 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let mut echoed = vec![0; wire.len()];
    (&stream).read_exact(&mut echoed).unwrap();
    assert!(echoed == wire, "echo differs");
    drop(stream);
    stop(engine);
}

#[test]
fn a_4_gib_length_field_closes_only_that_connection_after_flushing_earlier_replies() {
    let handler = Arc::new(FrameEcho::default());
    let (engine, addr) = start(Framed(handler.clone()), Options::default().loops(2));
    let good: Vec<_> = (0..8).map(|_| connect(addr)).collect();
    let bad = connect(addr);
    // A valid frame, then a header announcing 4 GiB - 1 bytes.
    let mut wire = frame(b"before");
    wire.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    (&bad).write_all(&wire).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = Vec::new();
    (&bad).read_to_end(&mut reply).unwrap();
    assert_eq!(
        reply,
        frame(b"before"),
        "the earlier reply is flushed, then EOF"
    );
    for (i, stream) in good.iter().enumerate() {
        let data = frame(&pattern(i as u64, 100_000));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut w = stream;
        w.write_all(&data).unwrap();
        let mut back = vec![0; data.len()];
        (&*stream).read_exact(&mut back).unwrap();
        assert!(back == data, "connection {i} corrupted");
    }
    assert!(wait_until(Duration::from_secs(30), || {
        handler.closes.lock().unwrap().len() == 1
    }));
    assert_eq!(
        *handler.closes.lock().unwrap(),
        [format!("too long {} after 1", u32::MAX as u64 + 4)]
    );
    drop(good);
    stop(engine);
}

/// A line handler that closes after `quit` and counts frames per wake-up.
struct Lines;

impl FrameHandler for Lines {
    type Codec = LineCodec;
    type Context = ();

    fn new_codec(&self) -> LineCodec {
        LineCodec::builder().max_length(64).fail_fast(true).build()
    }

    fn on_open(&self, conn: &mut FrameConn<'_, Self>) -> Action {
        match conn.send_frame(b"ready") {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }

    fn on_frame(&self, conn: &mut FrameConn<'_, Self>, line: &[u8]) -> Action {
        if line == b"quit" {
            return Action::Close;
        }
        let reply = line.to_ascii_uppercase();
        match conn.send_frame(&reply) {
            Ok(()) => Action::None,
            Err(_) => Action::Close,
        }
    }
}

#[test]
fn an_action_stops_delivery_and_later_frames_are_not_answered() {
    let (engine, addr) = start(Framed(Lines), Options::default().loops(1));
    let stream = connect(addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (&stream).write_all(b"one\r\ntwo\nquit\nthree\n").unwrap();
    let mut reply = String::new();
    (&stream).read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "ready\nONE\nTWO\n");
    stop(engine);
}

#[test]
fn an_over_long_line_fails_fast_and_closes_after_the_earlier_replies() {
    let (engine, addr) = start(Framed(Lines), Options::default().loops(1));
    let stream = connect(addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut wire = b"ok\n".to_vec();
    wire.extend(std::iter::repeat_n(b'x', 1000));
    (&stream).write_all(&wire).unwrap();
    let mut reply = String::new();
    (&stream).read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "ready\nOK\n");
    stop(engine);
}
