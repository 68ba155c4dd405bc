//! Code shared by every Unix backend: errno conversion and the portable
//! socket syscalls.

pub(crate) mod fd_passing;
pub(crate) mod socket;

use std::io;

/// Converts a libc `-1` return into the thread's `errno`.
pub(crate) fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`check`] for syscalls returning `ssize_t`.
pub(crate) fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}
