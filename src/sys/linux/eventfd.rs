//! The loop's waker: an eventfd plus a flag that coalesces wake-ups.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{check, check_size};
use crate::sys::wake_gate::WakeGate;

/// Wakes a selector blocked in `wait` from any thread.
///
/// Only the first `wake` after a `reset` writes to the eventfd; the others see
/// the gate closed and return without a syscall (Go's `netpollWakeSig`).
#[derive(Debug)]
pub(crate) struct Waker {
    fd: OwnedFd,
    gate: WakeGate,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; the result is a fresh descriptor.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` is newly created and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker {
            fd,
            gate: WakeGate::default(),
        })
    }

    /// Makes the next (or current) `wait` return. Returns whether this call
    /// issued the syscall.
    pub(crate) fn wake(&self) -> io::Result<bool> {
        if !self.gate.claim() {
            return Ok(false);
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        let res =
            check_size(unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) });
        match res {
            Ok(_) => Ok(true),
            // The counter is saturated: the fd is readable anyway.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
            Err(e) => {
                self.gate.reset();
                Err(e)
            }
        }
    }

    /// Called by the loop when the eventfd was reported readable, before it
    /// drains its inbox.
    pub(crate) fn reset(&self) {
        let mut counter: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN is harmless.
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut counter as *mut u64).cast(), 8);
        }
        self.gate.reset();
    }
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
