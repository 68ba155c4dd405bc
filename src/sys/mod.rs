//! The platform layer: everything that talks to the kernel's readiness API.
//!
//! The rest of netloom sees only the types re-exported here. The target OS
//! picks the backends compiled; on Linux each engine picks one at start-up
//! (`backend.rs`: `Options::backend`, `NETLOOM_BACKEND`, a probe), and
//! `linux/selector.rs` dispatches to it:
//!
//! | platform | backend | waker | stop signals | status |
//! |----------|---------|-------|--------------|--------|
//! | Linux | `linux/epoll.rs`, or `linux/uring.rs` (io_uring; readiness via `IORING_OP_POLL_ADD`) | `linux/eventfd.rs` | `linux/signal.rs` (signalfd) | tested, both |
//! | macOS, FreeBSD | `bsd/kqueue.rs` | `EVFILT_USER` (`bsd/kqueue.rs`) | `bsd/signal.rs` (`EVFILT_SIGNAL`) | build-checked in CI |
//!
//! Any other target is a compile error. Every backend must provide:
//!
//! | type | contract |
//! |------|----------|
//! | `Selector` | `open(PollerKind)` creates the kernel object close-on-exec; `try_clone()` gives a second handle on the same set (on the same thread for io_uring). `register(fd, token, interest, trigger)`, `reregister(..)` and `deregister(fd)` manage one descriptor under a 64-bit token; a descriptor closed without `deregister` must be passed to `forget(fd, token)` first (io_uring's armed poll keeps the file open). `wait(&mut Events, Option<Duration>)` blocks until at least one event or the timeout (the caller passes its nearest timer deadline); an interrupted wait (EINTR) returns `Ok` with no events. Errors are `io::Error`s, never panics. |
//! | `Events` | a reusable event array. `Events::after_wait` lets it grow when a wait filled it and shrink when it has stayed mostly empty, so a burst of readiness costs one wait, not many, and an idle loop holds little memory. |
//! | `Event` | `token()`, `is_readable()`, `is_writable()`, `is_read_closed()` (peer half-closed or hung up), `is_error()`. Spurious events are allowed: callers always retry the syscall and treat `WouldBlock` as "not ready". kqueue reports reading and writing of one descriptor as two events; io_uring's edge-triggered (multishot) polls report the readiness of each wake-up (a write-space wake-up does not repeat earlier readable data, whose own wake-up was reported), epoll the descriptor's whole current state. |
//! | `Waker` | a descriptor that becomes readable on `wake()` from any thread, registered like any other. Many concurrent `wake()` calls issue at most one syscall until the loop calls `reset()` (Go's `netpollBreak`/`netpollWakeSig`; the rule lives in `wake_gate.rs`). |
//! | `signal` | `block_stop_signals()` returns a descriptor that becomes readable on SIGINT/SIGTERM; `drain(fd)` consumes what it reported. |
//! | `socket` | the socket syscalls std and socket2 do not expose in the form the loops need (`unix/socket.rs` is shared; each OS adds `accept`, `peer_cred`, CPU pinning, the listen backlog limit and the datagram batches). |
//! | `fd_passing` | `SCM_RIGHTS` over a Unix stream socket, close-on-exec, `getsockopt` of an `int` (`unix/fd_passing.rs`, shared): how inherited and handed-off listeners arrive. |
//! | `Interest`, `Trigger` | read/write interest; level- or edge-triggered delivery. |
//!
//! What a platform lacks is named by [`supports`] (the table is in
//! `platform.rs`) and refused at start-up with an error naming the option
//! and the platform, never silently skipped.

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
compile_error!("netloom runs on Linux (epoll), macOS and FreeBSD (kqueue)");

mod backend;
#[cfg(test)]
mod contract_tests;
#[cfg(any(test, target_os = "macos", target_os = "freebsd"))]
mod event_capacity;
#[cfg(any(test, target_os = "macos", target_os = "freebsd"))]
mod kevent;
mod platform;
mod unix;
mod wake_gate;

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod bsd;
#[cfg(target_os = "linux")]
mod linux;

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
use bsd as os;
#[cfg(target_os = "linux")]
use linux as os;

pub(crate) use backend::{resolve_backend, PollerKind};
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
pub(crate) use bsd::kqueue::{Event, Events, Selector, Waker};
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
pub(crate) use bsd::no_completions::{op_key, BufRing, Completion, CompletionRing, Op};
#[cfg(target_os = "linux")]
pub(crate) use linux::buf_ring::BufRing;
#[cfg(target_os = "linux")]
pub(crate) use linux::epoll::{Event, Events};
#[cfg(target_os = "linux")]
pub(crate) use linux::eventfd::Waker;
#[cfg(target_os = "linux")]
pub(crate) use linux::selector::Selector;
#[cfg(target_os = "linux")]
pub(crate) use linux::uring::{op_key, Completion, Op, Selector as CompletionRing};
pub(crate) use os::signal;
pub(crate) use platform::{Feature, Platform};
pub(crate) use unix::fd_passing;

/// Socket syscalls: the portable ones and this OS's.
pub(crate) mod socket {
    pub(crate) use super::os::socket::*;
    pub(crate) use super::unix::socket::*;
}

/// The platform's name, as error messages show it.
pub(crate) const PLATFORM: &str = Platform::CURRENT.name();

/// Whether this platform's kernel has `feature`.
pub(crate) const fn supports(feature: Feature) -> bool {
    Platform::CURRENT.supports(feature)
}

/// Which readiness a descriptor is watched for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest(u8);

impl Interest {
    pub(crate) const NONE: Interest = Interest(0);
    pub(crate) const READABLE: Interest = Interest(1);
    pub(crate) const WRITABLE: Interest = Interest(2);

    pub(crate) const fn with(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
    pub(crate) const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }
    pub(crate) const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
}

/// How the kernel reports readiness. A descriptor keeps the trigger it was
/// registered with: kqueue does not change `EV_CLEAR` on a filter that
/// already exists, so `reregister` must pass the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Reported on every wait while the condition holds (what the engine uses:
    /// a loop may read one buffer per wake-up and stay fair).
    Level,
    /// Reported once per change; the owner must drain until `WouldBlock`.
    Edge,
}
