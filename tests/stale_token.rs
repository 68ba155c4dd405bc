//! Stale tokens: a handle, event or timer of a closed connection never
//! reaches the connection that reuses its slab slot and fd number.
//!
//! Alone in its binary so no other test takes the fd number in between.

mod util;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netloom::{Action, Conn, ConnHandle, Error, Handler, Options, Token};
use util::*;

/// Publishes each connection's handle and fd; echoes nothing.
#[derive(Default)]
struct Registry {
    opened: Mutex<Vec<(ConnHandle<()>, i32)>>,
    traffic: Mutex<Vec<(Token, Vec<u8>)>>,
}

impl Handler for Registry {
    type Context = ();
    fn on_open(&self, conn: &mut Conn<'_, ()>) -> Action {
        use std::os::fd::AsRawFd;
        let fd = conn.as_raw_fd();
        self.opened.lock().unwrap().push((conn.handle(), fd));
        Action::None
    }
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        self.traffic.lock().unwrap().push((conn.token(), data));
        Action::None
    }
}

fn registry(options: Options) -> (Arc<Registry>, netloom::Engine, std::net::SocketAddr) {
    let reg = Arc::new(Registry::default());
    let (engine, addr) = start(reg.clone(), options);
    (reg, engine, addr)
}

fn handle(reg: &Registry, i: usize) -> (ConnHandle<()>, i32) {
    assert!(wait_until(Duration::from_secs(5), || reg
        .opened
        .lock()
        .unwrap()
        .len()
        > i));
    reg.opened.lock().unwrap()[i].clone()
}

#[test]
fn stale_handle_never_reaches_a_new_connection_on_the_same_slot_and_fd() {
    let (reg, engine, addr) = registry(Options::default().loops(1));
    let first = connect(addr);
    let (old, old_fd) = handle(&reg, 0);
    drop(first);
    assert!(wait_until(Duration::from_secs(5), || old.is_closed()));
    assert!(matches!(
        old.async_write(b"x".to_vec()),
        Err(Error::ConnClosed)
    ));

    let mut second = connect(addr);
    let (new, new_fd) = handle(&reg, 1);
    assert_eq!(new_fd, old_fd, "the kernel reused the fd number");
    assert_eq!(
        new.token().slot(),
        old.token().slot(),
        "the slab reused the slot"
    );
    assert_ne!(new.token().generation(), old.token().generation());
    assert!(matches!(old.close(), Err(Error::ConnClosed)));
    assert!(matches!(old.wake(), Err(Error::ConnClosed)));
    new.async_write(b"new".to_vec()).unwrap();
    let mut got = [0u8; 3];
    second.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"new");
    // Nothing else arrives: the stale handle's writes went nowhere.
    second
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut more = [0u8; 1];
    assert!(second.read(&mut more).is_err(), "no stray bytes");
    stop(engine);
}
