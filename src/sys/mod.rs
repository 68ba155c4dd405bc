//! The platform layer: everything that talks to the kernel's readiness API.
//!
//! The rest of netloom sees only the types re-exported here. Every backend
//! (today `linux/epoll.rs`; a kqueue or io_uring backend is a new file beside
//! it) must provide:
//!
//! | type | contract |
//! |------|----------|
//! | `Selector` | `new()` creates the kernel object close-on-exec; `try_clone()` gives a second handle on the same set. `register(fd, token, interest, trigger)`, `reregister(..)` and `deregister(fd)` manage one descriptor under a 64-bit token. `wait(&mut Events, Option<Duration>)` blocks until at least one event or the timeout; an interrupted wait (EINTR) returns `Ok` with no events. Errors are `io::Error`s, never panics. |
//! | `Events` | a reusable event array. `Events::after_wait` lets it grow when a wait filled it and shrink when it has stayed mostly empty, so a burst of readiness costs one wait, not many, and an idle loop holds little memory. |
//! | `Event` | `token()`, `is_readable()`, `is_writable()`, `is_read_closed()` (peer half-closed or hung up), `is_error()`. Spurious events are allowed: callers always retry the syscall and treat `WouldBlock` as "not ready". |
//! | `Waker` | wakes a blocked `wait` from any thread. Many concurrent `wake()` calls issue at most one syscall until the loop calls `reset()` (Go's `netpollBreak`/`netpollWakeSig`). |
//! | `Interest`, `Trigger` | read/write interest; level- or edge-triggered delivery. |
//!
//! `socket.rs` holds the few socket syscalls std does not expose
//! (`accept4`, `MSG_PEEK` on any socket, CPU pinning); `signal.rs` turns
//! SIGINT/SIGTERM into a readable descriptor.

mod linux;

pub(crate) use linux::epoll::{Event, Events, Selector};
pub(crate) use linux::eventfd::Waker;
pub(crate) use linux::signal;
pub(crate) use linux::socket;

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

/// How the kernel reports readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Reported on every wait while the condition holds (what the engine uses:
    /// a loop may read one buffer per wake-up and stay fair).
    Level,
    /// Reported once per change; the owner must drain until `WouldBlock`.
    Edge,
}
