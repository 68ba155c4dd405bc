//! The epoll selector and its event array.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::check;
use super::uring::Completion;
use crate::sys::{Interest, Trigger};

/// An epoll instance.
#[derive(Debug)]
pub(crate) struct Selector {
    epfd: OwnedFd,
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a
        // descriptor we now own exclusively.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Selector { epfd })
    }

    /// A second handle on the same epoll instance (a duplicated
    /// descriptor), for a loop's executor to register its descriptors with.
    pub(crate) fn try_clone(&self) -> io::Result<Selector> {
        Ok(Selector {
            epfd: self.epfd.try_clone()?,
        })
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest, trigger)
    }

    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest, trigger)
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL since 2.6.9.
        check(unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        })
        .map(drop)
    }

    fn ctl(
        &self,
        op: libc::c_int,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        // EPOLLRDHUP goes with read interest only: while reading is paused
        // (backpressure) a level-triggered half-close would fire on every wait.
        let mut flags = 0;
        if interest.is_readable() {
            flags |= libc::EPOLLIN | libc::EPOLLRDHUP;
        }
        if interest.is_writable() {
            flags |= libc::EPOLLOUT;
        }
        if trigger == Trigger::Edge {
            flags |= libc::EPOLLET;
        }
        let mut event = libc::epoll_event {
            events: flags as u32,
            u64: token,
        };
        // SAFETY: `event` is a valid, initialised epoll_event that outlives the call.
        check(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut event) }).map(drop)
    }

    /// Waits for events; `None` blocks indefinitely. EINTR yields no events.
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let timeout_ms = match timeout {
            None => -1,
            // Round up so a timer 0.3 ms away does not turn into a busy spin.
            Some(d) => d
                .as_nanos()
                .div_ceil(1_000_000)
                .min(libc::c_int::MAX as u128) as libc::c_int,
        };
        events.buf.clear();
        // SAFETY: the pointer and capacity describe `events.buf`'s allocation,
        // which the kernel fills with at most `capacity` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                events.buf.as_mut_ptr(),
                events.buf.capacity() as libc::c_int,
                timeout_ms,
            )
        };
        match check(n) {
            Ok(n) => {
                // SAFETY: the kernel initialised the first `n` entries, and
                // `n` is at most the capacity it was given.
                unsafe { events.buf.set_len(n as usize) };
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A reusable array of epoll events that resizes with the load.
///
/// The vector's length is the number of entries the last wait filled: `wait`
/// sets it, and a replaced vector starts empty, so `get` never reads an entry
/// the kernel did not write.
pub(crate) struct Events {
    buf: Vec<libc::epoll_event>,
    idle_waits: u32,
    /// Completions of data operations (io_uring only; see `uring.rs`).
    pub(super) completions: Vec<Completion>,
}

/// Smallest and largest sizes of the array; a full wait doubles it.
const MIN_EVENTS: usize = 128;
const MAX_EVENTS: usize = 8192;
/// Consecutive waits using under a quarter of the array before it halves.
const SHRINK_AFTER: u32 = 256;

impl Events {
    pub(crate) fn new() -> Events {
        Events {
            buf: Vec::with_capacity(MIN_EVENTS),
            idle_waits: 0,
            completions: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Empties the array before another backend fills it (`uring.rs`).
    pub(super) fn clear(&mut self) {
        self.buf.clear();
        self.completions.clear();
    }

    /// Takes the data operations' completions of the last wait, leaving
    /// an empty list; hand the list back with
    /// [`restore_completions`](Events::restore_completions) to keep its
    /// allocation.
    pub(crate) fn take_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.completions)
    }

    /// Gives back a list from [`take_completions`](Events::take_completions).
    pub(crate) fn restore_completions(&mut self, mut list: Vec<Completion>) {
        list.clear();
        self.completions = list;
    }

    /// Whether another event fits without growing the array.
    pub(super) fn has_room(&self) -> bool {
        self.buf.len() < self.buf.capacity()
    }

    /// Appends an event with epoll's flag bits (`poll(2)`'s are the same).
    pub(super) fn push(&mut self, flags: u32, token: u64) {
        self.buf.push(libc::epoll_event {
            events: flags,
            u64: token,
        });
    }

    pub(crate) fn get(&self, i: usize) -> Event {
        let raw = self.buf[i];
        Event {
            flags: raw.events,
            token: raw.u64,
        }
    }

    /// Grows the array after a wait that filled it; shrinks it after a long
    /// run of waits that used little of it.
    pub(crate) fn after_wait(&mut self) {
        let cap = self.buf.capacity();
        let len = self.buf.len();
        if len == cap && cap < MAX_EVENTS {
            self.buf = Vec::with_capacity(cap * 2);
            self.idle_waits = 0;
        } else if len < cap / 4 && cap > MIN_EVENTS {
            self.idle_waits += 1;
            if self.idle_waits >= SHRINK_AFTER {
                self.buf = Vec::with_capacity(cap / 2);
                self.idle_waits = 0;
            }
        } else {
            self.idle_waits = 0;
        }
    }
}

/// One readiness event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    flags: u32,
    token: u64,
}

impl Event {
    pub(crate) fn token(&self) -> u64 {
        self.token
    }
    pub(crate) fn is_readable(&self) -> bool {
        self.flags & (libc::EPOLLIN | libc::EPOLLPRI) as u32 != 0
    }
    pub(crate) fn is_writable(&self) -> bool {
        self.flags & libc::EPOLLOUT as u32 != 0
    }
    pub(crate) fn is_read_closed(&self) -> bool {
        self.flags & (libc::EPOLLRDHUP | libc::EPOLLHUP) as u32 != 0
    }
    pub(crate) fn is_error(&self) -> bool {
        self.flags & libc::EPOLLERR as u32 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn level_and_edge_triggered_delivery() {
        let selector = Selector::new().unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let (mut c, d) = UnixStream::pair().unwrap();
        selector
            .register(b.as_raw_fd(), 7, Interest::READABLE, Trigger::Level)
            .unwrap();
        selector
            .register(d.as_raw_fd(), 9, Interest::READABLE, Trigger::Edge)
            .unwrap();
        a.write_all(b"x").unwrap();
        c.write_all(b"y").unwrap();
        let mut events = Events::new();
        let mut seen = |selector: &Selector| {
            selector
                .wait(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            let mut tokens: Vec<u64> = (0..events.len()).map(|i| events.get(i).token()).collect();
            tokens.sort();
            tokens
        };
        assert_eq!(seen(&selector), vec![7, 9]);
        // Nothing was read: level fires again, edge does not.
        assert_eq!(seen(&selector), vec![7]);
        selector.deregister(b.as_raw_fd()).unwrap();
        assert_eq!(seen(&selector), Vec::<u64>::new());
    }

    #[test]
    fn half_close_is_reported() {
        let selector = Selector::new().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        selector
            .register(b.as_raw_fd(), 1, Interest::READABLE, Trigger::Level)
            .unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        let mut events = Events::new();
        selector
            .wait(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(events.len(), 1);
        assert!(events.get(0).is_read_closed());
    }

    #[test]
    fn event_array_resizes_with_the_load_and_starts_empty() {
        let selector = Selector::new().unwrap();
        let pairs: Vec<_> = (0..MIN_EVENTS + 10)
            .map(|_| UnixStream::pair().unwrap())
            .collect();
        for (i, (_, b)) in pairs.iter().enumerate() {
            selector
                .register(b.as_raw_fd(), i as u64, Interest::WRITABLE, Trigger::Level)
                .unwrap();
        }
        let mut events = Events::new();
        selector.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(events.len(), MIN_EVENTS);
        events.after_wait();
        assert_eq!(events.capacity(), MIN_EVENTS * 2);
        // The new array holds nothing the kernel wrote: no entry is readable.
        assert_eq!(events.len(), 0);
        let stale = std::panic::catch_unwind(|| events.get(0));
        assert!(stale.is_err(), "get(0) read an entry of a replaced array");
        for (_, b) in &pairs {
            selector.deregister(b.as_raw_fd()).unwrap();
        }
        for _ in 0..SHRINK_AFTER {
            selector.wait(&mut events, Some(Duration::ZERO)).unwrap();
            events.after_wait();
        }
        assert_eq!(events.capacity(), MIN_EVENTS);
    }
}
