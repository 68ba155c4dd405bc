//! kqueue has no completion ring: these stand-ins let the loop's
//! completion path (`event_loop/completion.rs`) compile unchanged. None of
//! them can be constructed (each wraps the empty [`Never`], privately, so
//! the code using them does not read as unreachable to the compiler):
//! `Selector::completion_ring` returns `None`, so that code never runs.

use std::io;
use std::os::fd::RawFd;

/// A data operation's kind (see the io_uring backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Recv,
    Send,
    Accept,
}

/// The key of a token's requests (never used: there are none).
pub(crate) fn op_key(token: u64) -> u64 {
    token
}

/// No value: what the stand-ins wrap.
#[derive(Clone, Copy, Debug)]
enum Never {}

/// A completion ring; kqueue has none.
#[derive(Clone, Debug)]
pub(crate) struct CompletionRing(Never);

impl CompletionRing {
    pub(crate) fn recv(&self, _fd: RawFd, _token: u64, _bgid: u16, _multishot: bool) {
        match self.0 {}
    }

    /// # Safety
    /// As the io_uring backend's.
    pub(crate) unsafe fn send(&self, _fd: RawFd, _token: u64, _data: *const u8, _len: u32) {
        match self.0 {}
    }

    /// # Safety
    /// As the io_uring backend's.
    pub(crate) unsafe fn sendmsg(&self, _fd: RawFd, _token: u64, _msg: *const libc::msghdr) {
        match self.0 {}
    }

    pub(crate) fn cancel_op(&self, _token: u64, _op: Op) {
        match self.0 {}
    }

    pub(crate) fn cancel_op_now(&self, _token: u64, _op: Op) {
        match self.0 {}
    }

    pub(crate) fn accept_multishot(&self, _fd: RawFd, _token: u64) {
        match self.0 {}
    }
}

/// A data operation's completion; kqueue has none.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Completion(Never);

impl Completion {
    pub(crate) fn key(&self) -> u64 {
        match self.0 {}
    }
    pub(crate) fn slot(&self) -> u32 {
        match self.0 {}
    }
    pub(crate) fn is_for(&self, _token: u64) -> bool {
        match self.0 {}
    }
    pub(crate) fn op(&self) -> Op {
        match self.0 {}
    }
    pub(crate) fn result(&self) -> i32 {
        match self.0 {}
    }
    pub(crate) fn buffer(&self) -> Option<u16> {
        match self.0 {}
    }
    pub(crate) fn more(&self) -> bool {
        match self.0 {}
    }
}

/// A provided-buffer ring; kqueue has none.
pub(crate) struct BufRing(Never);

impl BufRing {
    pub(crate) fn new(
        ring: &CompletionRing,
        _bgid: u16,
        _entries: u16,
        _buf_size: u32,
    ) -> io::Result<BufRing> {
        match ring.0 {}
    }
    pub(crate) fn group(&self) -> u16 {
        match self.0 {}
    }
    pub(crate) fn bytes(&self, _bid: u16, _len: usize) -> &[u8] {
        match self.0 {}
    }
    pub(crate) fn lent(&self) -> u32 {
        match self.0 {}
    }
    pub(crate) fn take(&mut self, _bid: u16) {
        match self.0 {}
    }
    pub(crate) fn give_back(&mut self, _bid: u16) {
        match self.0 {}
    }
}
