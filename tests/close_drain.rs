//! Closing a connection whose peer is still sending: the reply is flushed,
//! our FIN is sent, and the peer's late bytes are discarded until its FIN,
//! so no reset destroys the reply before the peer reads it.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netloom::{Action, Conn, Handler, Options};
use util::{connect, pattern, start, stop, wait_until};

/// Answers the first byte with a 4 MiB reply, then closes.
struct ReplyThenClose;

impl Handler for ReplyThenClose {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        conn.discard(usize::MAX);
        if conn.write(&pattern(1, 4 << 20)).is_err() {
            return Action::Close;
        }
        Action::Close
    }
}

#[test]
fn a_reply_survives_a_close_while_the_peer_is_still_sending() {
    let (engine, addr) = start(ReplyThenClose, Options::default().loops(1));
    for _ in 0..5 {
        let stream = connect(addr);
        (&stream).write_all(b"go").unwrap();
        // Keep sending after the request: these bytes are never read by
        // the server, which would turn its close into a reset.
        let writer = stream.try_clone().unwrap();
        let flood = std::thread::spawn(move || {
            for _ in 0..64 {
                if (&writer).write_all(&[7; 4096]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut reply = Vec::new();
        (&stream).read_to_end(&mut reply).expect("EOF, not a reset");
        assert!(
            reply == pattern(1, 4 << 20),
            "reply cut at {} bytes",
            reply.len()
        );
        flood.join().unwrap();
    }
    assert!(wait_until(Duration::from_secs(30), || engine.conn_count() == 0));
    stop(engine);
}

#[test]
fn a_peer_that_never_closes_is_dropped_after_the_drain_limit() {
    let handler = Arc::new(ReplyThenClose);
    let (engine, addr) = start(handler, Options::default().loops(1));
    let stream = connect(addr);
    // The drain limit starts after the request: time it from before.
    let started = Instant::now();
    (&stream).write_all(b"go").unwrap();
    let mut reply = vec![0; 4 << 20];
    (&stream).read_exact(&mut reply).unwrap();
    let mut eof = [0];
    assert_eq!(
        (&stream).read(&mut eof).unwrap(),
        0,
        "our FIN arrives at once"
    );
    // The client keeps its socket open: the server gives up after ~2 s.
    assert!(wait_until(Duration::from_secs(60), || engine.conn_count() == 0));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    drop(stream);
    stop(engine);
}
