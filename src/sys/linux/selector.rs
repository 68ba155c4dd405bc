//! The Linux selector: epoll or io_uring, chosen when a loop is created
//! (`PollerKind`), behind the one interface the loops use.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{epoll, uring};
use crate::sys::{Events, Interest, PollerKind, Trigger};

/// A loop's poller.
#[derive(Debug)]
pub(crate) enum Selector {
    Epoll(epoll::Selector),
    IoUring(uring::Selector),
}

impl Selector {
    /// A new poller of `kind` (resolved and probed by `resolve_backend`).
    pub(crate) fn open(kind: PollerKind) -> io::Result<Selector> {
        Ok(match kind {
            PollerKind::Readiness => Selector::Epoll(epoll::Selector::new()?),
            PollerKind::IoUring => Selector::IoUring(uring::Selector::new()?),
        })
    }

    /// A second handle on the same poller: a duplicated epoll descriptor, or
    /// the same ring.
    pub(crate) fn try_clone(&self) -> io::Result<Selector> {
        Ok(match self {
            Selector::Epoll(s) => Selector::Epoll(s.try_clone()?),
            Selector::IoUring(s) => Selector::IoUring(s.try_clone()?),
        })
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        match self {
            Selector::Epoll(s) => s.register(fd, token, interest, trigger),
            Selector::IoUring(s) => s.register(fd, token, interest, trigger),
        }
    }

    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        match self {
            Selector::Epoll(s) => s.reregister(fd, token, interest, trigger),
            Selector::IoUring(s) => s.reregister(fd, token, interest, trigger),
        }
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        match self {
            Selector::Epoll(s) => s.deregister(fd),
            Selector::IoUring(s) => s.deregister(fd),
        }
    }

    /// `fd`, registered under `token`, is being closed without
    /// `deregister`. epoll drops a closed descriptor by itself; io_uring's
    /// armed poll would keep the file (and the socket) open.
    pub(crate) fn forget(&self, fd: RawFd, token: u64) {
        match self {
            Selector::Epoll(_) => {}
            Selector::IoUring(s) => s.forget(fd, token),
        }
    }

    /// The ring that moves connections' bytes by completions, if this
    /// poller is one (io_uring); `None` for readiness pollers.
    pub(crate) fn completion_ring(&self) -> Option<&uring::Selector> {
        match self {
            Selector::Epoll(_) => None,
            Selector::IoUring(s) => Some(s),
        }
    }

    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Selector::Epoll(s) => s.wait(events, timeout),
            Selector::IoUring(s) => s.wait(events, timeout),
        }
    }
}
