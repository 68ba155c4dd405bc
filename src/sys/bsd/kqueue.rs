//! The kqueue selector, its event array and the `EVFILT_USER` waker.
//!
//! The translation between netloom's interest and kevents is in
//! `sys/kevent.rs` (pure, tested on every platform); this file only makes the
//! syscalls.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::check;
use crate::sys::event_capacity::{EventCapacity, MIN_EVENTS};
use crate::sys::kevent::{self, Change, Filter, Reported};
use crate::sys::wake_gate::WakeGate;
use crate::sys::{Interest, Trigger};

pub(crate) use crate::sys::kevent::Event;

/// A kqueue.
#[derive(Debug)]
pub(crate) struct Selector {
    kq: OwnedFd,
}

/// A new close-on-exec kqueue.
pub(crate) fn new_kqueue() -> io::Result<OwnedFd> {
    // SAFETY: kqueue takes no arguments; a non-negative result is a
    // descriptor we now own exclusively.
    let fd = check(unsafe { libc::kqueue() })?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    let kq = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_SETFD takes an integer argument; `kq` is a live descriptor.
    check(unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(kq)
}

/// A `struct kevent` for descriptor (or user event) `ident`.
pub(crate) fn kevent(
    ident: usize,
    filter: i16,
    flags: u16,
    fflags: u32,
    token: u64,
) -> libc::kevent {
    // SAFETY: struct kevent is plain C data (integers and a pointer used as
    // an opaque token) for which all-zero bytes are valid; this also zeroes
    // the `ext` fields FreeBSD has and macOS lacks.
    let mut event: libc::kevent = unsafe { std::mem::zeroed() };
    event.ident = ident;
    event.filter = filter;
    event.flags = flags;
    event.fflags = fflags;
    event.udata = token as usize as *mut libc::c_void;
    event
}

/// Applies `changes`, each with `EV_RECEIPT`: the kernel answers every one
/// in place. Returns the first error that `harmless(change index, errno)`
/// does not excuse.
pub(crate) fn apply(
    kq: RawFd,
    changes: &mut [libc::kevent],
    harmless: impl Fn(usize, i32) -> bool,
) -> io::Result<()> {
    let n = changes.len() as libc::c_int;
    let ptr = changes.as_mut_ptr();
    // SAFETY: the change list and the receipt list are the same live array
    // of `n` entries (allowed by kevent(2)); with EV_RECEIPT on every change
    // the kernel writes exactly one receipt per change and does not block.
    match check(unsafe { libc::kevent(kq, ptr, n, ptr, n, std::ptr::null()) }) {
        // kevent(2): on EINTR every change has been applied; the entries
        // then still hold the changes, which carry no EV_ERROR.
        Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
        _ => {}
    }
    for (i, receipt) in changes.iter().enumerate() {
        if receipt.flags & libc::EV_ERROR == 0 {
            continue;
        }
        let errno = receipt.data as i32;
        if errno != 0 && !harmless(i, errno) {
            return Err(io::Error::from_raw_os_error(errno));
        }
    }
    Ok(())
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        Ok(Selector { kq: new_kqueue()? })
    }

    /// A new kqueue: the only kind `resolve_backend` yields here.
    pub(crate) fn open(_kind: crate::sys::PollerKind) -> io::Result<Selector> {
        Selector::new()
    }

    /// Nothing to do: kqueue drops a closed descriptor's filters itself.
    pub(crate) fn forget(&self, _fd: RawFd, _token: u64) {}

    /// A second handle on the same kqueue (a duplicated descriptor), for a
    /// loop's executor to register its descriptors with.
    pub(crate) fn try_clone(&self) -> io::Result<Selector> {
        Ok(Selector {
            kq: self.kq.try_clone()?,
        })
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.change(fd, token, kevent::changes(interest, trigger))
    }

    /// The same call as `register`: `EV_ADD` modifies an existing filter.
    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.register(fd, token, interest, trigger)
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.change(fd, 0, kevent::removal())
    }

    fn change(&self, fd: RawFd, token: u64, changes: [Change; 2]) -> io::Result<()> {
        let mut list = changes.map(|change| {
            let (filter, flags) = match change {
                Change::Add { filter, clear } => {
                    let clear = if clear { libc::EV_CLEAR } else { 0 };
                    (filter, libc::EV_ADD | clear)
                }
                Change::Delete { filter } => (filter, libc::EV_DELETE),
            };
            kevent(
                fd as usize,
                raw_filter(filter),
                flags | libc::EV_RECEIPT,
                0,
                token,
            )
        });
        apply(self.kq.as_raw_fd(), &mut list, |i, errno| {
            !kevent::receipt_failed(changes[i], errno)
        })
    }

    /// Waits for events; `None` blocks indefinitely. EINTR yields no events.
    /// kqueue reports readiness only: no completion ring.
    pub(crate) fn completion_ring(&self) -> Option<&super::no_completions::CompletionRing> {
        None
    }

    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let timespec = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as _,
        });
        let timeout_ptr = timespec
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        events.len = 0;
        // SAFETY: no changes; the pointer and capacity describe
        // `events.buf`'s allocation, which the kernel fills with at most
        // `capacity` entries; `timeout_ptr` is null or points at a live timespec.
        let n = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                std::ptr::null(),
                0,
                events.buf.as_mut_ptr(),
                events.buf.capacity() as libc::c_int,
                timeout_ptr,
            )
        };
        match check(n) {
            Ok(n) => {
                events.len = n as usize;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn raw_filter(filter: Filter) -> i16 {
    match filter {
        Filter::Read => libc::EVFILT_READ,
        Filter::Write => libc::EVFILT_WRITE,
    }
}

/// A reusable array of kevents that resizes with the load.
pub(crate) struct Events {
    buf: Vec<libc::kevent>,
    len: usize,
    capacity: EventCapacity,
}

impl Events {
    /// No completions: kqueue reports readiness only.
    pub(crate) fn take_completions(&mut self) -> Vec<super::no_completions::Completion> {
        Vec::new()
    }

    /// Nothing to give back (see `take_completions`).
    pub(crate) fn restore_completions(&mut self, _list: Vec<super::no_completions::Completion>) {}

    pub(crate) fn new() -> Events {
        Events {
            buf: Vec::with_capacity(MIN_EVENTS),
            len: 0,
            capacity: EventCapacity::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, i: usize) -> Event {
        assert!(i < self.len);
        // SAFETY: entries below `len` were written by the kernel in `wait`.
        let raw = unsafe { self.buf.as_ptr().add(i).read() };
        let filter = match raw.filter {
            libc::EVFILT_READ => Some(Filter::Read),
            libc::EVFILT_WRITE => Some(Filter::Write),
            _ => None,
        };
        Event::from_kevent(Reported {
            filter,
            eof: raw.flags & libc::EV_EOF != 0,
            error: raw.flags & libc::EV_ERROR != 0,
            fflags: raw.fflags,
            token: raw.udata as usize as u64,
        })
    }

    /// Grows the array after a wait that filled it; shrinks it after a long
    /// run of waits that used little of it.
    pub(crate) fn after_wait(&mut self) {
        if let Some(capacity) = self.capacity.after_wait(self.len, self.buf.capacity()) {
            self.buf = Vec::with_capacity(capacity);
        }
    }
}

/// The identifier of the waker's `EVFILT_USER` event in its kqueue.
const WAKE_IDENT: usize = 0;

/// Wakes a selector blocked in `wait` from any thread.
///
/// The waker owns a small kqueue holding one `EVFILT_USER` event; that
/// kqueue is the descriptor the loop registers for reading (a kqueue is
/// readable while it has pending events), so the waker is registered like
/// Linux's eventfd. Only the first `wake` after a `reset` triggers the event;
/// the others see the gate closed and return without a syscall (Go's
/// `netpollWakeSig`).
#[derive(Debug)]
pub(crate) struct Waker {
    kq: OwnedFd,
    gate: WakeGate,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let kq = new_kqueue()?;
        // EV_CLEAR: retrieving the triggered event (in `reset`) re-arms it.
        let flags = libc::EV_ADD | libc::EV_CLEAR | libc::EV_RECEIPT;
        let mut add = [kevent(WAKE_IDENT, libc::EVFILT_USER, flags, 0, 0)];
        apply(kq.as_raw_fd(), &mut add, |_, _| false)?;
        Ok(Waker {
            kq,
            gate: WakeGate::default(),
        })
    }

    /// Makes the next (or current) `wait` return. Returns whether this call
    /// issued the syscall.
    pub(crate) fn wake(&self) -> io::Result<bool> {
        if !self.gate.claim() {
            return Ok(false);
        }
        let trigger = kevent(WAKE_IDENT, libc::EVFILT_USER, 0, libc::NOTE_TRIGGER, 0);
        // SAFETY: one live change, no event list, no timeout pointer needed
        // since nothing is waited for.
        let rc = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                &trigger,
                1,
                std::ptr::null_mut(),
                0,
                std::ptr::null(),
            )
        };
        match check(rc) {
            Ok(_) => Ok(true),
            Err(e) => {
                self.gate.reset();
                Err(e)
            }
        }
    }

    /// Called by the loop when the waker was reported readable, before it
    /// drains its inbox: consumes the triggered event.
    pub(crate) fn reset(&self) {
        drain_kqueue(&self.kq);
        self.gate.reset();
    }
}

/// Retrieves (and so clears) what a private kqueue has pending, without
/// blocking.
pub(crate) fn drain_kqueue(kq: &OwnedFd) -> usize {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut out = [kevent(0, 0, 0, 0, 0); 4];
    // SAFETY: no changes; `out` is a live array of 4 entries the kernel may
    // fill; the zero timeout makes the call return at once. An error leaves
    // the kqueue readable, so the loop comes back to it.
    let n = unsafe {
        libc::kevent(
            kq.as_raw_fd(),
            std::ptr::null(),
            0,
            out.as_mut_ptr(),
            out.len() as libc::c_int,
            &zero,
        )
    };
    n.max(0) as usize
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.kq.as_raw_fd()
    }
}
