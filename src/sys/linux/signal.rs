//! Stop signals delivered through a signalfd instead of a handler.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread::ThreadId;

/// SIGINT and SIGTERM blocked in one thread by [`block_stop_signals`].
/// Dropped on that thread, it gives the thread its previous mask back
/// (dropped elsewhere it can do nothing: a mask belongs to its thread).
pub(crate) struct BlockedStopSignals {
    previous: libc::sigset_t,
    thread: ThreadId,
}

/// Blocks SIGINT and SIGTERM in the calling thread (threads it spawns later
/// inherit the mask) and returns a non-blocking signalfd that reports them,
/// with the guard that unblocks them again.
pub(crate) fn block_stop_signals() -> io::Result<(OwnedFd, BlockedStopSignals)> {
    let set = stop_signals();
    // SAFETY: sigset_t is plain data; the zeroed value is overwritten with
    // the thread's mask before the block takes effect.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are live, initialised sigset_t values; the mask is
    // changed for the calling thread only, and threads spawned after this
    // inherit it, so SIGINT/SIGTERM are delivered only through the signalfd.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let guard = BlockedStopSignals {
        previous,
        thread: std::thread::current().id(),
    };
    // SAFETY: `set` is an initialised sigset_t; -1 asks for a new descriptor.
    let fd =
        super::check(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
    // SAFETY: `fd` is a new signalfd owned by nobody else.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, guard))
}

impl BlockedStopSignals {
    /// Whether the calling thread is the one whose mask this guard changed.
    pub(crate) fn is_current_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }
}

impl Drop for BlockedStopSignals {
    fn drop(&mut self) {
        if !self.is_current_thread() {
            return;
        }
        // A stop signal that arrived after the engine stopped reading them is
        // discarded, not delivered the moment it is unblocked (which would
        // terminate the process the engine just shut down gracefully).
        let mut discard = stop_signals();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: both sets are initialised sigset_t values.
            if unsafe { libc::sigismember(&self.previous, signal) } == 1 {
                // SAFETY: as above; the caller had blocked it and keeps it.
                unsafe { libc::sigdelset(&mut discard, signal) };
            }
        }
        let no_wait = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: sigtimedwait takes live, initialised arguments and returns
        // at once (zero timeout); it consumes one pending signal of the set,
        // all of which are blocked in this thread, or fails with EAGAIN.
        while unsafe { libc::sigtimedwait(&discard, std::ptr::null_mut(), &no_wait) } > 0 {}
        // SAFETY: `previous` is the mask pthread_sigmask reported for this
        // very thread.
        let rc = unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut())
        };
        if rc != 0 {
            log::error!(
                "netloom: restoring the signal mask failed: {}",
                io::Error::from_raw_os_error(rc)
            );
        }
    }
}

/// Takes one pending signal from the signalfd `fd`; `WouldBlock` when none
/// is pending.
pub(crate) fn take_signal(fd: &OwnedFd) -> io::Result<()> {
    let mut info = [0u8; 128]; // sizeof(struct signalfd_siginfo)
                               // SAFETY: read(2) writes at most `info.len()` bytes into the live local
                               // buffer; `fd` is an open descriptor borrowed for the call.
    let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
    super::check_size(n).map(drop)
}

/// The set {SIGINT, SIGTERM}.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}
