//! Stop signals delivered through a signalfd instead of a handler.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Blocks SIGINT and SIGTERM in the calling thread (threads it spawns later
/// inherit the mask) and returns a non-blocking signalfd that reports them.
pub(crate) fn block_stop_signals() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the mask is
    // changed for the calling thread only, and threads spawned after this
    // inherit it, so SIGINT/SIGTERM are delivered only through the signalfd.
    let fd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
    };
    let fd = super::check(fd)?;
    // SAFETY: `fd` is a new signalfd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Consumes one signal the signalfd reported, so it is not reported again.
pub(crate) fn drain(fd: &OwnedFd) {
    let mut info = [0u8; 128]; // sizeof(struct signalfd_siginfo)
                               // SAFETY: reads at most 128 bytes into a live local buffer; EAGAIN is harmless.
    unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
}
