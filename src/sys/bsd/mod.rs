//! kqueue backend (macOS, FreeBSD): kqueue selector and `EVFILT_USER`
//! waker, `EVFILT_SIGNAL` stop signals, and the socket syscalls whose BSD
//! form differs from Linux's.

pub(crate) mod kqueue;
pub(crate) mod no_completions;
pub(crate) mod signal;
pub(crate) mod socket;

pub(crate) use super::unix::check;
