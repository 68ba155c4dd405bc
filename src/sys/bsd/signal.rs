//! Stop signals watched with `EVFILT_SIGNAL` instead of a handler.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::kqueue::{apply, drain_kqueue, kevent, new_kqueue};

const STOP_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// Returns a kqueue watching SIGINT and SIGTERM with `EVFILT_SIGNAL` (it is
/// readable once either arrived) and sets both signals to be ignored.
///
/// kqueue records a signal's delivery even when the signal is ignored, and an
/// ignored signal neither ends the process nor stays pending; unlike Linux's
/// blocked mask this holds for the whole process, not only the threads
/// started after this call.
pub(crate) fn block_stop_signals() -> io::Result<(OwnedFd, BlockedStopSignals)> {
    let kq = new_kqueue()?;
    let flags = libc::EV_ADD | libc::EV_CLEAR | libc::EV_RECEIPT;
    let mut changes =
        STOP_SIGNALS.map(|sig| kevent(sig as usize, libc::EVFILT_SIGNAL, flags, 0, 0));
    apply(kq.as_raw_fd(), &mut changes, |_, _| false)?;
    // Only once the kqueue watches them: no signal can be lost in between.
    for sig in STOP_SIGNALS {
        // SAFETY: SIG_IGN is a valid disposition for SIGINT and SIGTERM; no
        // handler function is installed.
        if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((kq, BlockedStopSignals))
}

/// What [`block_stop_signals`] changed: nothing per thread here (the
/// signals stay ignored process-wide), so there is nothing to give back.
pub(crate) struct BlockedStopSignals;

impl BlockedStopSignals {
    /// Always false: no thread's mask was changed.
    pub(crate) fn is_current_thread(&self) -> bool {
        false
    }
}

/// Consumes the signals the kqueue reported, so they are not reported
/// again; `WouldBlock` when none had arrived.
pub(crate) fn take_signal(fd: &OwnedFd) -> io::Result<()> {
    match drain_kqueue(fd) {
        0 => Err(io::ErrorKind::WouldBlock.into()),
        _ => Ok(()),
    }
}
