//! Stale tokens: a handle of a closed connection never reaches the
//! connection that reuses its slab slot and fd number, even when its
//! operations were sent before the close, so that they pass the handle's
//! own closed check and only the loop's generation check stops them.
//!
//! Alone in its binary so no other test takes the fd number in between;
//! once on epoll, where the kernel reuses the fd number, and once on the
//! default backend (io_uring where the kernel has it: a closed socket stays
//! open until its cancelled recv completes, so only the slot is reused).

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netloom::{Action, Backend, Conn, Error, Handler, Options};
use util::*;

/// Publishes each connection's handle and fd (as `Registry`); a connection
/// that sends `hold` keeps the loop inside its `on_traffic` until `release`
/// is sent.
struct Holder {
    registry: Registry,
    held: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
    /// `on_traffic` calls that were not a hold (none expected).
    other_traffic: AtomicUsize,
    closed: AtomicUsize,
}

impl Handler for Holder {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        self.registry.on_open(conn)
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        if conn.next(usize::MAX) == b"hold" {
            self.held.lock().unwrap().send(()).unwrap();
            let release = self.release.lock().unwrap();
            release.recv_timeout(Duration::from_secs(10)).unwrap();
        } else {
            self.other_traffic.fetch_add(1, Ordering::SeqCst);
        }
        Action::None
    }
    fn on_close(&self, _: &mut Conn<'_, ()>, _: Option<&Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

#[test]
fn operations_sent_before_a_close_never_reach_the_connection_reusing_slot_and_fd() {
    stale_operations_are_dropped(Backend::Epoll);
    stale_operations_are_dropped(Backend::Auto);
}

fn stale_operations_are_dropped(backend: Backend) {
    let (held_tx, held) = channel();
    let (release, release_rx) = channel();
    let holder = Arc::new(Holder {
        registry: Registry::default(),
        held: Mutex::new(held_tx),
        release: Mutex::new(release_rx),
        other_traffic: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
    });
    let (engine, addr) = start(holder.clone(), Options::default().loops(1).backend(backend));
    let mut gate = connect(addr);
    handle(&holder.registry, 0);
    let old_peer = connect(addr);
    let (old, old_fd) = handle(&holder.registry, 1);

    // Hold the loop, then, while it cannot see any of it: the old
    // connection's peer resets it, the old handle (not yet closed as far as it
    // knows) queues operations, and a new connection waits to be accepted.
    gate.write_all(b"hold").unwrap();
    held.recv_timeout(Duration::from_secs(10)).unwrap();
    // A reset, not a FIN: a fatal error closes the old connection at once,
    // where an orderly close would wait for the write its handle queued.
    socket2::SockRef::from(&old_peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(old_peer);
    let (verdict_tx, verdict) = channel();
    old.async_write_then(b"stale".to_vec(), move |outcome| {
        verdict_tx.send(outcome).unwrap();
    })
    .expect("queued: the handle cannot know yet");
    old.execute(|conn| {
        let _ = conn.write(b"task");
    })
    .unwrap();
    old.wake().unwrap();
    old.close().unwrap();
    let mut new_peer = connect(addr);
    // The loop closes the old connection and accepts the new one (events
    // come before the inbox in a turn), then runs the stale operations.
    release.send(()).unwrap();

    let (new, new_fd) = handle(&holder.registry, 2);
    if backend == Backend::Epoll {
        assert_eq!(new_fd, old_fd, "the kernel reused the fd number");
    }
    assert_eq!(
        new.token().slot(),
        old.token().slot(),
        "the slab reused the slot"
    );
    assert_ne!(new.token(), old.token());
    match verdict.recv_timeout(Duration::from_secs(10)) {
        Ok(Err(Error::ConnClosed)) => {}
        other => panic!("the loop let a stale write through: {other:?}"),
    }
    assert!(old.is_closed());
    assert!(matches!(
        old.async_write(b"x".to_vec()),
        Err(Error::ConnClosed)
    ));

    // The new connection got none of it: its first bytes are its own, it
    // was neither closed nor woken.
    new.async_write(b"new".to_vec()).unwrap();
    let mut got = [0u8; 3];
    new_peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"new");
    new_peer
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut more = [0u8; 1];
    assert!(new_peer.read(&mut more).is_err(), "no stray bytes");
    assert!(!new.is_closed());
    assert_eq!(holder.closed.load(Ordering::SeqCst), 1, "only the old one");
    assert_eq!(holder.other_traffic.load(Ordering::SeqCst), 0, "no wake");
    stop(engine);
}
