//! Thread-safe handles: ordering, caps, closed connections, stale tokens.

mod util;

use std::io::Read;
use std::time::Duration;

use netloom::{Error, Options};
use util::*;

#[test]
fn writes_from_many_threads_keep_per_thread_order() {
    let (reg, engine, addr) = registry(Options::default().loops(2));
    let mut stream = connect(addr);
    let (h, _) = handle(&reg, 0);
    const THREADS: usize = 8;
    const MSGS: u32 = 2000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let h = h.clone();
            s.spawn(move || {
                for seq in 0..MSGS {
                    let mut msg = vec![t as u8];
                    msg.extend_from_slice(&seq.to_be_bytes());
                    let mut v = Vec::with_capacity(5);
                    v.extend_from_slice(&msg);
                    loop {
                        match h.async_write(v.clone()) {
                            Ok(()) => break,
                            Err(Error::OutboundFull { .. }) => {
                                std::thread::sleep(Duration::from_millis(1))
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let mut got = vec![0u8; THREADS * MSGS as usize * 5];
    stream.read_exact(&mut got).unwrap();
    let mut next = [0u32; THREADS];
    for msg in got.chunks(5) {
        let t = msg[0] as usize;
        let seq = u32::from_be_bytes(msg[1..5].try_into().unwrap());
        assert_eq!(seq, next[t], "thread {t} out of order");
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == MSGS));
    stop(engine);
}

#[test]
fn async_write_past_the_cap_is_refused_and_memory_stays_bounded() {
    let cap = 1024 * 1024;
    let (reg, engine, addr) = registry(Options::default().loops(1).async_write_cap(cap));
    let stream = connect(addr); // never reads
    let (h, _) = handle(&reg, 0);
    let chunk = vec![7u8; 64 * 1024];
    let mut accepted = 0usize;
    let mut refused = false;
    for _ in 0..10_000 {
        match h.async_write(chunk.clone()) {
            Ok(()) => accepted += chunk.len(),
            Err(Error::OutboundFull { cap: c, .. }) => {
                assert_eq!(c, cap);
                refused = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        refused,
        "the cap must stop a writer whose peer does not read"
    );
    // The kernel's socket buffers took some; the rest is bounded by the cap.
    assert!(accepted < cap + 16 * 1024 * 1024, "accepted {accepted}");
    // Reading drains it, and writing works again.
    let mut sink = vec![0u8; accepted];
    (&stream).read_exact(&mut sink).unwrap();
    assert!(sink.iter().all(|&b| b == 7));
    assert!(wait_until(Duration::from_secs(30), || h
        .async_write(vec![1])
        .is_ok()));
    stop(engine);
}

#[test]
fn completion_callback_runs_on_the_loop_with_the_outcome() {
    let (reg, engine, addr) = registry(Options::default().loops(1));
    let mut stream = connect(addr);
    let (h, _) = handle(&reg, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    h.async_write_then(b"abc".to_vec(), move |res| {
        let name = std::thread::current().name().map(str::to_string);
        tx.send((res.is_ok(), name)).unwrap();
    })
    .unwrap();
    let (ok, thread) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(ok);
    assert_eq!(thread.as_deref(), Some("netloom-loop-0"));
    let mut got = [0u8; 3];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"abc");
    h.async_writev(vec![b"de".to_vec(), b"f".to_vec()], None)
        .unwrap();
    stream.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"def");
    stop(engine);
}

#[test]
fn wake_and_execute_run_on_the_connection() {
    let (reg, engine, addr) = registry(Options::default().loops(1));
    let mut stream = connect(addr);
    let (h, _) = handle(&reg, 0);
    h.wake().unwrap();
    assert!(wait_until(Duration::from_secs(30), || reg
        .traffic
        .lock()
        .unwrap()
        .iter()
        .any(|(t, data)| *t == h.token() && data.is_empty())));
    h.execute(|conn| {
        let peer = conn.peer_addr().to_string();
        conn.write(peer.as_bytes()).unwrap();
        conn.close();
    })
    .unwrap();
    let mut got = String::new();
    stream.read_to_string(&mut got).unwrap();
    assert_eq!(got, stream.local_addr().unwrap().to_string());
    assert!(wait_until(Duration::from_secs(30), || h.is_closed()));
    stop(engine);
}

#[test]
fn tokens_are_unique_across_the_loops_of_an_engine() {
    // Round-robin over two loops: each loop numbers its slots from 0, so
    // the same slot and generation appear on both.
    let (reg, engine, addr) = registry(Options::default().loops(2));
    let streams: Vec<_> = (0..8).map(|_| connect(addr)).collect();
    let handles: Vec<_> = (0..streams.len()).map(|i| handle(&reg, i).0).collect();
    assert_eq!(engine.conn_counts(), vec![4, 4]);
    let tokens: std::collections::HashSet<_> = handles.iter().map(|h| h.token()).collect();
    assert_eq!(tokens.len(), handles.len(), "{tokens:?}");
    drop(streams);
    stop(engine);
}
