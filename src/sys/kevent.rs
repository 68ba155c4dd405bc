//! What the kqueue backend asks of the kernel and what it makes of the
//! answer, as pure functions over platform-neutral values: compiled on every
//! platform so that Linux CI tests them. `bsd/kqueue.rs` only copies these
//! values into and out of `struct kevent`.
//!
//! | netloom | kqueue |
//! |---------|--------|
//! | `Interest::READABLE` / `WRITABLE` | an `EVFILT_READ` / `EVFILT_WRITE` filter per descriptor; the other one deleted |
//! | `Trigger::Edge` / `Level` | `EV_CLEAR` / no `EV_CLEAR` |
//! | `is_readable` / `is_writable` | an event of the read / write filter |
//! | `is_read_closed` | `EV_EOF` on the read filter (the peer shut down writing, or hung up) |
//! | `is_error` | `EV_ERROR`, or `EV_EOF` with a socket error in `fflags` |

use crate::sys::{Interest, Trigger};

/// The two filters a descriptor can be watched with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    Read,
    Write,
}

/// One entry of a kevent change list for a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// `EV_ADD` (which also modifies an existing filter), with `EV_CLEAR`
    /// when `clear`.
    Add { filter: Filter, clear: bool },
    /// `EV_DELETE`.
    Delete { filter: Filter },
}

/// The changes that leave exactly the filters `interest` asks for: both
/// filters are always listed, so registering and re-registering are the same
/// call and never need the previous interest.
pub(crate) fn changes(interest: Interest, trigger: Trigger) -> [Change; 2] {
    let clear = trigger == Trigger::Edge;
    let change = |filter, wanted| match wanted {
        true => Change::Add { filter, clear },
        false => Change::Delete { filter },
    };
    [
        change(Filter::Read, interest.is_readable()),
        change(Filter::Write, interest.is_writable()),
    ]
}

/// The changes that remove a descriptor.
pub(crate) fn removal() -> [Change; 2] {
    changes(Interest::NONE, Trigger::Level)
}

/// Whether the kernel's receipt for `change` (`errno`, 0 for success) is a
/// real failure. Deleting a filter that was never added (`ENOENT`) is not;
/// nor is `EPIPE` on adding a filter to a pipe whose other end is gone (older
/// macOS), which the next read or write reports.
pub(crate) fn receipt_failed(change: Change, errno: i32) -> bool {
    !matches!(
        (change, errno),
        (_, 0) | (Change::Delete { .. }, libc::ENOENT) | (Change::Add { .. }, libc::EPIPE)
    )
}

/// A reported kevent, as the fields the readiness depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reported {
    /// `None` for a filter netloom does not register on a selector.
    pub(crate) filter: Option<Filter>,
    /// `EV_EOF` is set.
    pub(crate) eof: bool,
    /// `EV_ERROR` is set.
    pub(crate) error: bool,
    /// `fflags`: with `EV_EOF`, the socket's pending error (0 for none).
    pub(crate) fflags: u32,
    /// `udata`: the token it was registered with.
    pub(crate) token: u64,
}

const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
const READ_CLOSED: u8 = 4;
const ERROR: u8 = 8;

/// One readiness event of the kqueue backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    token: u64,
    bits: u8,
}

impl Event {
    pub(crate) fn from_kevent(reported: Reported) -> Event {
        let mut bits = match (reported.filter, reported.eof) {
            (Some(Filter::Read), true) => READABLE | READ_CLOSED,
            (Some(Filter::Read), false) => READABLE,
            // The peer stopped reading: a write reports why (EPIPE).
            (Some(Filter::Write), _) => WRITABLE,
            (None, _) => 0,
        };
        if reported.error || (reported.eof && reported.fflags != 0) {
            bits |= ERROR;
        }
        Event {
            token: reported.token,
            bits,
        }
    }

    pub(crate) fn token(&self) -> u64 {
        self.token
    }
    pub(crate) fn is_readable(&self) -> bool {
        self.bits & READABLE != 0
    }
    pub(crate) fn is_writable(&self) -> bool {
        self.bits & WRITABLE != 0
    }
    pub(crate) fn is_read_closed(&self) -> bool {
        self.bits & READ_CLOSED != 0
    }
    pub(crate) fn is_error(&self) -> bool {
        self.bits & ERROR != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(filter: Option<Filter>, eof: bool, error: bool, fflags: u32) -> Event {
        Event::from_kevent(Reported {
            filter,
            eof,
            error,
            fflags,
            token: 42,
        })
    }

    #[test]
    fn level_and_edge_interest_become_filter_changes() {
        let both = Interest::READABLE.with(Interest::WRITABLE);
        assert_eq!(
            changes(both, Trigger::Edge),
            [
                Change::Add {
                    filter: Filter::Read,
                    clear: true
                },
                Change::Add {
                    filter: Filter::Write,
                    clear: true
                },
            ]
        );
        assert_eq!(
            changes(Interest::READABLE, Trigger::Level),
            [
                Change::Add {
                    filter: Filter::Read,
                    clear: false
                },
                Change::Delete {
                    filter: Filter::Write
                },
            ]
        );
        assert_eq!(
            changes(Interest::WRITABLE, Trigger::Level),
            [
                Change::Delete {
                    filter: Filter::Read
                },
                Change::Add {
                    filter: Filter::Write,
                    clear: false
                },
            ]
        );
        assert_eq!(
            removal(),
            [
                Change::Delete {
                    filter: Filter::Read
                },
                Change::Delete {
                    filter: Filter::Write
                },
            ]
        );
    }

    #[test]
    fn only_real_receipt_errors_fail() {
        let add = Change::Add {
            filter: Filter::Write,
            clear: false,
        };
        let delete = Change::Delete {
            filter: Filter::Write,
        };
        assert!(!receipt_failed(add, 0));
        assert!(!receipt_failed(delete, 0));
        assert!(
            !receipt_failed(delete, libc::ENOENT),
            "deleting what was not added"
        );
        assert!(receipt_failed(add, libc::ENOENT));
        assert!(
            !receipt_failed(add, libc::EPIPE),
            "a pipe whose writer is gone"
        );
        assert!(receipt_failed(delete, libc::EBADF));
        assert!(receipt_failed(add, libc::EBADF));
    }

    #[test]
    fn reported_kevents_become_readiness() {
        let read = reported(Some(Filter::Read), false, false, 0);
        assert!(read.is_readable() && !read.is_writable());
        assert!(!read.is_read_closed() && !read.is_error());
        assert_eq!(read.token(), 42);

        let half_closed = reported(Some(Filter::Read), true, false, 0);
        assert!(half_closed.is_readable() && half_closed.is_read_closed());
        assert!(!half_closed.is_error());

        let reset = reported(Some(Filter::Read), true, false, libc::ECONNRESET as u32);
        assert!(reset.is_read_closed() && reset.is_error());

        let write = reported(Some(Filter::Write), false, false, 0);
        assert!(write.is_writable() && !write.is_readable() && !write.is_error());

        let reader_gone = reported(Some(Filter::Write), true, false, 0);
        assert!(reader_gone.is_writable() && !reader_gone.is_read_closed());
        assert!(!reader_gone.is_error());

        let refused = reported(Some(Filter::Write), true, false, libc::ECONNREFUSED as u32);
        assert!(refused.is_writable() && refused.is_error());

        let failed = reported(Some(Filter::Read), false, true, 0);
        assert!(failed.is_error());

        let other = reported(None, false, false, 0);
        assert!(!other.is_readable() && !other.is_writable() && !other.is_error());
    }
}
