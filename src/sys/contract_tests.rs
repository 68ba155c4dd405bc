//! The poller contract of `sys/mod.rs`, tested against every backend
//! compiled: epoll and io_uring on Linux (run in CI), kqueue on macOS and
//! FreeBSD (run by `cargo test` there).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use super::{Events, Interest, PollerKind, Selector, Trigger, Waker};

/// One selector of each kind this platform has.
fn every_selector() -> Vec<Selector> {
    let kinds: &[PollerKind] = if cfg!(target_os = "linux") {
        &[PollerKind::Readiness, PollerKind::IoUring]
    } else {
        &[PollerKind::Readiness]
    };
    kinds
        .iter()
        .map(|kind| Selector::open(*kind).unwrap())
        .collect()
}

/// What one wait reports: (token, readable, writable, read-closed), merged
/// per token (kqueue reports reading and writing as two events) and sorted.
fn wait(
    selector: &Selector,
    events: &mut Events,
    timeout: Duration,
) -> Vec<(u64, bool, bool, bool)> {
    selector.wait(events, Some(timeout)).unwrap();
    let mut seen: Vec<(u64, bool, bool, bool)> = Vec::new();
    for i in 0..events.len() {
        let e = events.get(i);
        assert!(!e.is_error(), "no socket error expected");
        match seen.iter_mut().find(|s| s.0 == e.token()) {
            Some(s) => {
                s.1 |= e.is_readable();
                s.2 |= e.is_writable();
                s.3 |= e.is_read_closed();
            }
            None => seen.push((
                e.token(),
                e.is_readable(),
                e.is_writable(),
                e.is_read_closed(),
            )),
        }
    }
    seen.sort();
    seen
}

const SHORT: Duration = Duration::from_millis(50);

#[test]
fn reregister_replaces_the_interest() {
    for selector in every_selector() {
        let mut events = Events::new();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let both = Interest::READABLE.with(Interest::WRITABLE);
        selector
            .register(b.as_raw_fd(), 3, both, Trigger::Level)
            .unwrap();
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(3, false, true, false)]
        );
        a.write_all(b"ping").unwrap();
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(3, true, true, false)]
        );

        selector
            .reregister(b.as_raw_fd(), 4, Interest::READABLE, Trigger::Level)
            .unwrap();
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(4, true, false, false)]
        );
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        assert_eq!(wait(&selector, &mut events, SHORT), vec![]);

        selector
            .reregister(b.as_raw_fd(), 5, Interest::WRITABLE, Trigger::Level)
            .unwrap();
        a.write_all(b"x").unwrap();
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(5, false, true, false)]
        );

        selector
            .reregister(b.as_raw_fd(), 6, Interest::NONE, Trigger::Level)
            .unwrap();
        assert_eq!(wait(&selector, &mut events, SHORT), vec![]);
        selector
            .reregister(b.as_raw_fd(), 7, Interest::READABLE, Trigger::Level)
            .unwrap();
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(7, true, false, false)]
        );
        selector.deregister(b.as_raw_fd()).unwrap();
        assert_eq!(wait(&selector, &mut events, SHORT), vec![]);
    }
}

#[test]
fn edge_trigger_reports_each_arrival_once() {
    for selector in every_selector() {
        let mut events = Events::new();
        let (mut a, b) = UnixStream::pair().unwrap();
        selector
            .register(b.as_raw_fd(), 1, Interest::READABLE, Trigger::Edge)
            .unwrap();
        assert_eq!(wait(&selector, &mut events, SHORT), vec![]);
        a.write_all(b"1").unwrap();
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(1, true, false, false)]
        );
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![],
            "unread, but no news"
        );
        a.write_all(b"2").unwrap();
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(1, true, false, false)]
        );
    }
}

#[test]
fn a_hung_up_peer_is_read_closed() {
    for selector in every_selector() {
        let mut events = Events::new();
        let (mut a, b) = UnixStream::pair().unwrap();
        selector
            .register(b.as_raw_fd(), 9, Interest::READABLE, Trigger::Level)
            .unwrap();
        a.write_all(b"last words").unwrap();
        drop(a);
        assert_eq!(
            wait(&selector, &mut events, SHORT),
            vec![(9, true, false, true)]
        );
    }
}

#[test]
fn the_waker_wakes_a_blocked_wait_once_until_reset() {
    for selector in every_selector() {
        let mut events = Events::new();
        let waker = Arc::new(Waker::new().unwrap());
        selector
            .register(
                waker.as_raw_fd(),
                u64::MAX,
                Interest::READABLE,
                Trigger::Level,
            )
            .unwrap();
        let remote = waker.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let first = remote.wake().unwrap();
            let second = remote.wake().unwrap();
            (first, second)
        });
        let woken = wait(&selector, &mut events, Duration::from_secs(10));
        assert_eq!(woken, vec![(u64::MAX, true, false, false)]);
        assert_eq!(
            thread.join().unwrap(),
            (true, false),
            "one syscall until reset"
        );
        // Level-triggered: still readable until the loop resets the waker.
        assert_eq!(wait(&selector, &mut events, Duration::ZERO).len(), 1);
        waker.reset();
        assert_eq!(wait(&selector, &mut events, Duration::ZERO), vec![]);
        assert!(waker.wake().unwrap());
        assert_eq!(wait(&selector, &mut events, SHORT).len(), 1);
    }
}

#[test]
fn concurrent_wakes_issue_one_syscall_until_reset() {
    let waker = Waker::new().unwrap();
    let syscalls: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| (0..1000).filter(|_| waker.wake().unwrap()).count()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(syscalls, 1);
    waker.reset();
    assert!(waker.wake().unwrap());
}
