//! Stale tokens: a handle, event or timer of a closed connection never
//! reaches the connection that reuses its slab slot and fd number.
//!
//! Alone in its binary so no other test takes the fd number in between.

mod util;

use std::io::Read;
use std::time::Duration;

use netloom::{Error, Options};
use util::*;

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
