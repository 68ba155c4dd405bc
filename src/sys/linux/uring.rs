//! The io_uring selector: the poller contract of `sys/mod.rs` on one ring
//! per loop, with readiness from `IORING_OP_POLL_ADD`.
//!
//! The ring is set up with `IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN`
//! (completions are produced only when the loop asks for them, on its own
//! thread) and `R_DISABLED`: it is created on the thread that starts the
//! engine and enabled by its first wait, which makes the loop's thread the
//! one issuer. Requests are queued in user space and handed to the kernel
//! by that wait: one `io_uring_enter` per loop turn submits everything and
//! waits for a completion or the timer deadline (`EXT_ARG` timespec).
//!
//! | registration | request | delivery |
//! |--------------|---------|----------|
//! | level | one-shot poll, re-armed after each completion | the re-armed poll checks the state when it is armed, so an undrained descriptor is reported again on the next wait |
//! | edge | multishot poll (`IORING_POLL_ADD_MULTI`), re-armed only if the kernel ends it | one completion per wake-up of the descriptor |
//!
//! `user_data` is the descriptor (high 32 bits) and the registration's
//! generation (low 32 bits): `reregister` and `deregister` cancel the old
//! poll and a late completion of an old generation is dropped. The
//! cancellation is `IORING_OP_ASYNC_CANCEL`, not `IORING_OP_POLL_REMOVE`:
//! the latter fails with `EALREADY` while a wake-up of the poll is being
//! processed (with DEFER_TASKRUN, from the wake-up until the next enter),
//! which would leave a multishot poll armed and its socket open. An armed poll holds a reference to the file, so a
//! descriptor must be deregistered (or forgotten) before it is closed for
//! the socket to close; a descriptor number registered again without that
//! (closed elsewhere and reused) cancels the old poll first.
//!
//! Poll requests lend the kernel no memory: it reads the descriptor, the
//! event mask and `user_data` when the request is submitted.
//!
//! ## Data operations
//! The callback loop moves a stream connection's bytes with completions
//! instead of readiness (see `event_loop/completion.rs`): one multishot
//! recv per connection selecting buffers from the loop's [`BufRing`]
//! (`buf_ring.rs`), and at most one send in flight. Their `user_data` is
//! [`op_user_data`]: bit 63 set (a poll's is a descriptor, below 2^31, in
//! the high half), the [`Op`] in bits 61-62, the low 29 bits of the slab
//! token's generation in bits 32-60, and its slot in bits 0-31. Their
//! completions are handed to the loop as [`Completion`]s beside the
//! readiness events.
//!
//! [`BufRing`]: super::buf_ring::BufRing

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, EnterFlags, IoUring};

use super::epoll::Events;
use crate::sys::{Interest, Trigger};

/// Marks the `user_data` of a data operation.
const OP_MARK: u64 = 1 << 63;
/// The bits of a token's generation kept in a data operation's `user_data`.
const OP_GENERATION_MASK: u64 = (1 << 29) - 1;

/// Submission queue entries; more queued requests wait in user space.
const SQ_ENTRIES: u32 = 256;
/// Completion queue entries (multishot polls complete many times).
const CQ_ENTRIES: u32 = 4096;
/// `user_data` of requests whose completions report nothing (cancellations).
/// Its descriptor half is -1, which is never registered.
const INTERNAL: u64 = u64::MAX;

// poll(2)'s bits are epoll's, so completions fill the same event array.
const _: () = assert!(
    libc::POLLIN as i32 == libc::EPOLLIN
        && libc::POLLOUT as i32 == libc::EPOLLOUT
        && libc::POLLERR as i32 == libc::EPOLLERR
        && libc::POLLHUP as i32 == libc::EPOLLHUP
        && libc::POLLRDHUP as i32 == libc::EPOLLRDHUP
);

/// A handle on a loop's ring; clones share it (the loop's executor
/// registers through a clone). Only the loop's thread waits on it.
#[derive(Clone, Debug)]
pub(crate) struct Selector {
    ring: Arc<Mutex<Ring>>,
}

struct Ring {
    uring: IoUring,
    /// Enabled by the first wait, on the thread that then owns the ring.
    enabled: bool,
    /// Requests not yet in the submission queue.
    queued: VecDeque<squeue::Entry>,
    /// Registrations indexed by descriptor.
    registrations: Vec<Option<Registration>>,
    next_generation: u32,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("enabled", &self.enabled)
            .field("queued", &self.queued.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
struct Registration {
    token: u64,
    interest: Interest,
    trigger: Trigger,
    generation: u32,
}

fn user_data(fd: RawFd, generation: u32) -> u64 {
    (u64::from(fd as u32) << 32) | u64::from(generation)
}

/// A data operation's kind, kept in its `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A multishot recv selecting from the loop's buffer ring.
    Recv = 0,
    /// A send (or sendmsg) of the connection's queued bytes.
    Send = 1,
    /// A listener's multishot accept.
    Accept = 2,
}

/// The `user_data` of data operation `op` for the slab token `token`.
pub(crate) fn op_user_data(token: u64, op: Op) -> u64 {
    OP_MARK | (op as u64) << 61 | ((token >> 32) & OP_GENERATION_MASK) << 32 | (token & 0xFFFF_FFFF)
}

/// The bits of a data operation's `user_data` that name its connection
/// (any operation): see [`Completion::key`].
pub(crate) fn op_key(token: u64) -> u64 {
    op_user_data(token, Op::Recv) & !(3 << 61)
}

/// The completion of a data operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Completion {
    user_data: u64,
    result: i32,
    flags: u32,
}

impl Completion {
    /// Bytes moved, 0 for a recv at end of stream, or `-errno`.
    pub(crate) fn result(&self) -> i32 {
        self.result
    }

    /// The connection the operation belongs to, as [`op_key`] names it.
    pub(crate) fn key(&self) -> u64 {
        self.user_data & !(3 << 61)
    }

    /// The slab slot of the connection the operation belongs to.
    pub(crate) fn slot(&self) -> u32 {
        self.user_data as u32
    }

    /// Whether the operation belongs to the token `token` (the low 29 bits
    /// of its generation agree).
    pub(crate) fn is_for(&self, token: u64) -> bool {
        (self.user_data >> 32) & OP_GENERATION_MASK == (token >> 32) & OP_GENERATION_MASK
    }

    pub(crate) fn op(&self) -> Op {
        match (self.user_data >> 61) & 3 {
            1 => Op::Send,
            2 => Op::Accept,
            _ => Op::Recv,
        }
    }

    /// The buffer of the loop's ring the bytes are in (recv).
    pub(crate) fn buffer(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }

    /// Whether a multishot recv stays armed after this completion.
    pub(crate) fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

/// A new ring, created on a thread of its own that exits at once. The
/// kernel attaches a ring's creator to it (a per-task context), and tearing
/// the ring down interrupts every attached thread with task work
/// (`TWA_SIGNAL`): the thread that started an engine would see a blocking
/// syscall with a timeout (a socket read with `SO_RCVTIMEO`) fail with
/// `EINTR` whenever an engine stops. An exited creator is detached; the
/// loop's thread attaches when it first submits.
fn build_ring() -> io::Result<IoUring> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("netloom-ring-setup".into())
            .spawn_scoped(scope, build_ring_here)?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("io_uring setup panicked")))
    })
}

fn build_ring_here() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_r_disabled()
        .setup_submit_all()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)
}

/// Whether this kernel runs the backend: the ring's setup flags, the
/// `EXT_ARG` wait and the opcodes used. Probed once per process.
pub(crate) fn probe() -> Result<(), String> {
    static OUTCOME: OnceLock<Result<(), String>> = OnceLock::new();
    OUTCOME.get_or_init(probe_kernel).clone()
}

fn probe_kernel() -> Result<(), String> {
    let ring = build_ring().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => {
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map_or_else(|_| "unknown".into(), |v| v.trim().to_string());
            format!(
                "io_uring_setup: {e} (kernel.io_uring_disabled = {sysctl}, or a seccomp filter)"
            )
        }
        Some(libc::ENOSYS) => {
            format!("io_uring_setup: {e} (no io_uring in this kernel, or a seccomp filter)")
        }
        Some(libc::EINVAL) => format!(
            "io_uring_setup: {e} (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN need Linux 6.1)"
        ),
        _ => format!("io_uring_setup: {e}"),
    })?;
    if !ring.params().is_feature_ext_arg() {
        return Err("the kernel lacks IORING_FEAT_EXT_ARG (Linux 5.11)".into());
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("IORING_REGISTER_PROBE: {e}"))?;
    for (code, name) in [
        (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        (opcode::RecvMulti::CODE, "IORING_OP_RECV"),
        (opcode::Send::CODE, "IORING_OP_SEND"),
        (opcode::AcceptMulti::CODE, "IORING_OP_ACCEPT"),
        (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("the kernel lacks {name}"));
        }
    }
    Ok(())
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        Ok(Selector {
            ring: Arc::new(Mutex::new(Ring {
                uring: build_ring()?,
                enabled: false,
                queued: VecDeque::new(),
                registrations: Vec::new(),
                next_generation: 0,
            })),
        })
    }

    /// The same ring: a SINGLE_ISSUER ring cannot be shared through a
    /// duplicated descriptor by another thread, and needs not be.
    pub(crate) fn try_clone(&self) -> io::Result<Selector> {
        Ok(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // Nothing panics while holding the lock; a poisoned ring is still
        // consistent.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches `fd`, replacing what it was watched for: a registration of
    /// the same descriptor number (closed and reused) is cancelled first.
    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let slot = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        let mut ring = self.lock();
        if let Some(old) = ring.take(slot) {
            ring.cancel(fd, &old);
        }
        ring.next_generation = ring.next_generation.wrapping_add(1);
        let registration = Registration {
            token,
            interest,
            trigger,
            generation: ring.next_generation,
        };
        ring.arm(fd, &registration);
        if ring.registrations.len() <= slot {
            ring.registrations.resize(slot + 1, None);
        }
        ring.registrations[slot] = Some(registration);
        Ok(())
    }

    /// As `register` (which replaces), for a descriptor watched already.
    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.register(fd, token, interest, trigger)
    }

    /// Stops watching `fd`, and hands the cancellation to the kernel now so
    /// that the poll's reference to the file is gone when `fd` is closed.
    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        let mut ring = self.lock();
        let old = usize::try_from(fd).ok().and_then(|slot| ring.take(slot));
        let Some(old) = old else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        ring.cancel(fd, &old);
        ring.submit_now();
        Ok(())
    }

    /// `fd` is being closed (or was, by another thread): stops watching it
    /// if it is still registered under `token`.
    pub(crate) fn forget(&self, fd: RawFd, token: u64) {
        let mut ring = self.lock();
        let Ok(slot) = usize::try_from(fd) else {
            return;
        };
        let ours = ring
            .registrations
            .get(slot)
            .and_then(|r| r.as_ref())
            .is_some_and(|r| r.token == token);
        if let Some(old) = ours.then(|| ring.take(slot)).flatten() {
            ring.cancel(fd, &old);
            ring.submit_now();
        }
    }

    /// Registers a provided-buffer ring (see `BufRing::new`).
    ///
    /// # Safety
    /// `ring_addr` points to `entries` page-aligned ring entries whose
    /// buffers stay allocated until `unregister_buf_ring(bgid)` succeeded.
    pub(crate) unsafe fn register_buf_ring(
        &self,
        ring_addr: u64,
        entries: u16,
        bgid: u16,
    ) -> io::Result<()> {
        // SAFETY: the caller's promise is the kernel's requirement.
        unsafe {
            self.lock()
                .uring
                .submitter()
                .register_buf_ring_with_flags(ring_addr, entries, bgid, 0)
        }
    }

    /// Stops the kernel picking buffers of group `bgid`.
    pub(crate) fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        self.lock().uring.submitter().unregister_buf_ring(bgid)
    }

    /// Queues a recv on `fd` that picks a buffer of group `bgid`, multishot
    /// (completing for each arrival until it is cancelled or ends) or
    /// one-shot; its completions name `token`.
    pub(crate) fn recv(&self, fd: RawFd, token: u64, bgid: u16, multishot: bool) {
        let entry = if multishot {
            opcode::RecvMulti::new(types::Fd(fd), bgid).build()
        } else {
            // Length 0: the picked buffer's.
            opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), 0)
                .buf_group(bgid)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        };
        self.lock()
            .queued
            .push_back(entry.user_data(op_user_data(token, Op::Recv)));
    }

    /// Queues a multishot accept on the listener `fd`; each completion is a
    /// new connection's descriptor (non-blocking, close-on-exec) for
    /// `token`.
    pub(crate) fn accept_multishot(&self, fd: RawFd, token: u64) {
        let entry = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(op_user_data(token, Op::Accept));
        self.lock().queued.push_back(entry);
    }

    /// Queues a send of the `len` bytes at `data` on `fd`; its completion
    /// names `token`.
    ///
    /// # Safety
    /// The bytes stay valid and unchanged until the completion arrives
    /// (also when it is cancelled).
    pub(crate) unsafe fn send(&self, fd: RawFd, token: u64, data: *const u8, len: u32) {
        let entry = opcode::Send::new(types::Fd(fd), data, len)
            .build()
            .user_data(op_user_data(token, Op::Send));
        self.lock().queued.push_back(entry);
    }

    /// Queues a `sendmsg` of `msg` (its iovecs) on `fd`; its completion
    /// names `token`. (Not a `writev`: that takes the file's `O_NONBLOCK`
    /// and completes with `EAGAIN` on a full socket, where a send waits.)
    ///
    /// # Safety
    /// `msg`, its iovecs and the bytes they point to stay valid and
    /// unchanged until the completion arrives (also when it is cancelled).
    pub(crate) unsafe fn sendmsg(&self, fd: RawFd, token: u64, msg: *const libc::msghdr) {
        let entry = opcode::SendMsg::new(types::Fd(fd), msg)
            .build()
            .user_data(op_user_data(token, Op::Send));
        self.lock().queued.push_back(entry);
    }

    /// Queues the cancellation of the data operation `op` of `token` (its
    /// completion still arrives, with `-ECANCELED` if it was cancelled).
    pub(crate) fn cancel_op(&self, token: u64, op: Op) {
        let entry = opcode::AsyncCancel::new(op_user_data(token, op))
            .build()
            .user_data(INTERNAL);
        self.lock().queued.push_back(entry);
    }

    /// Cancels the data operation `op` of `token` now, not with the next
    /// wait: a cancelled request's reference to its file is gone when this
    /// returns, so closing the descriptor then releases the socket (a
    /// listener's port).
    pub(crate) fn cancel_op_now(&self, token: u64, op: Op) {
        self.cancel_op(token, op);
        self.lock().submit_now();
    }

    /// Submits what is queued and waits for completions, at most `timeout`
    /// (`None` blocks). EINTR and the timeout's ETIME yield no events.
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let mut ring = self.lock();
        ring.enable()?;
        ring.flush()?;
        events.clear();
        // Completions left by a wait whose event array filled need no waiting.
        let ready = !ring.uring.completion().is_empty();
        let min_complete = u32::from(!ready && timeout != Some(Duration::ZERO));
        let timespec = timeout.map(|d| {
            types::Timespec::new()
                .sec(d.as_secs())
                .nsec(d.subsec_nanos())
        });
        let args = match &timespec {
            Some(ts) if min_complete > 0 => types::SubmitArgs::new().timespec(ts),
            _ => types::SubmitArgs::new(),
        };
        let to_submit = ring.uring.submission().len() as u32;
        // GETEVENTS also when not waiting: with DEFER_TASKRUN, completions
        // are produced only by an enter that asks for them.
        let flags = (EnterFlags::GETEVENTS | EnterFlags::EXT_ARG).bits();
        // SAFETY: with IORING_ENTER_EXT_ARG the kernel reads an
        // io_uring_getevents_arg (`SubmitArgs` is one, transparently) of the
        // size `enter` passes; it and the timespec it points to outlive the
        // call. What the submitted entries point to is valid (see `flush`).
        let entered = unsafe {
            ring.uring
                .submitter()
                .enter(to_submit, min_complete, flags, Some(&args))
        };
        match entered {
            Ok(_) => {}
            // The deadline passed, a signal arrived, or completions are
            // backed up (overflow): reap what is there.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        ring.reap(events);
        Ok(())
    }
}

impl Ring {
    fn take(&mut self, slot: usize) -> Option<Registration> {
        self.registrations.get_mut(slot).and_then(Option::take)
    }

    /// Queues the poll that watches `fd` for `registration`.
    fn arm(&mut self, fd: RawFd, registration: &Registration) {
        self.queued.extend(poll_request(fd, registration));
    }

    /// Queues the cancellation of `old`'s poll (which may have completed
    /// already: the kernel then answers ENOENT, ignored like any internal
    /// completion).
    fn cancel(&mut self, fd: RawFd, old: &Registration) {
        if old.interest == Interest::NONE {
            return;
        }
        let cancel = opcode::AsyncCancel::new(user_data(fd, old.generation))
            .build()
            .user_data(INTERNAL);
        self.queued.push_back(cancel);
    }

    /// Makes the calling thread the ring's one issuer (the first wait runs
    /// on the loop's thread).
    fn enable(&mut self) -> io::Result<()> {
        if !self.enabled {
            self.uring.submitter().register_enable_rings()?;
            self.enabled = true;
        }
        Ok(())
    }

    /// Moves queued requests into the submission queue, submitting when it
    /// is full.
    fn flush(&mut self) -> io::Result<()> {
        loop {
            {
                let mut sq = self.uring.submission();
                while let Some(entry) = self.queued.front() {
                    // SAFETY: polls, cancellations and recvs point to no
                    // memory of ours (a recv's buffers are the registered
                    // ring's); what a send or sendmsg points to stays valid
                    // until its completion, which their callers promised.
                    if unsafe { sq.push(entry) }.is_err() {
                        break;
                    }
                    self.queued.pop_front();
                }
            }
            if self.queued.is_empty() {
                return Ok(());
            }
            self.uring.submit()?;
        }
    }

    /// Submits what is queued and lets the kernel run the deferred work that
    /// cancellations need (releasing a cancelled poll's file), without
    /// waiting. Before the first wait the ring is not ours to submit to yet:
    /// that wait submits.
    fn submit_now(&mut self) {
        if !self.enabled {
            return;
        }
        let submitted = self.flush().and_then(|()| {
            let to_submit = self.uring.submission().len() as u32;
            // SAFETY: no argument is passed; what the entries point to is
            // valid (see `flush`).
            unsafe {
                self.uring.submitter().enter::<libc::sigset_t>(
                    to_submit,
                    0,
                    EnterFlags::GETEVENTS.bits(),
                    None,
                )
            }
        });
        if let Err(e) = submitted {
            // What stays queued goes with the next wait.
            log::debug!("netloom: io_uring submit failed: {e}");
        }
    }

    /// Turns completions into events, as many as `events` holds; the rest
    /// wait for the next `wait`. Ended polls of live registrations are
    /// re-armed.
    fn reap(&mut self, events: &mut Events) {
        let Ring {
            uring,
            queued,
            registrations,
            ..
        } = self;
        let mut completions = uring.completion();
        while events.has_room() {
            let Some(cqe) = completions.next() else {
                break;
            };
            let data = cqe.user_data();
            if data == INTERNAL {
                continue;
            }
            if data & OP_MARK != 0 {
                events.completions.push(Completion {
                    user_data: data,
                    result: cqe.result(),
                    flags: cqe.flags(),
                });
                continue;
            }
            let fd = (data >> 32) as u32 as RawFd;
            let generation = data as u32;
            let current = usize::try_from(fd)
                .ok()
                .and_then(|slot| registrations.get(slot))
                .and_then(|r| r.as_ref())
                .filter(|r| r.generation == generation);
            // A cancelled or replaced registration's late completion.
            let Some(registration) = current.copied() else {
                continue;
            };
            let result = cqe.result();
            if result >= 0 {
                events.push(result as u32, registration.token);
            } else if result != -libc::ECANCELED {
                // The poll failed; the owner's next syscall sees why.
                log::debug!(
                    "netloom: io_uring poll of fd {fd} failed: {}",
                    io::Error::from_raw_os_error(-result)
                );
                events.push((libc::EPOLLERR | libc::EPOLLHUP) as u32, registration.token);
                continue;
            }
            if !cqueue::more(cqe.flags()) {
                queued.extend(poll_request(fd, &registration));
            }
        }
    }
}

/// The poll request of a registration: one-shot for level triggering,
/// multishot for edge; none if it watches for nothing.
fn poll_request(fd: RawFd, registration: &Registration) -> Option<squeue::Entry> {
    let mut mask = 0;
    if registration.interest.is_readable() {
        mask |= (libc::POLLIN | libc::POLLRDHUP) as u32;
    }
    if registration.interest.is_writable() {
        mask |= libc::POLLOUT as u32;
    }
    (mask != 0).then(|| {
        opcode::PollAdd::new(types::Fd(fd), mask)
            .multi(registration.trigger == Trigger::Edge)
            .build()
            .user_data(user_data(fd, registration.generation))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn tokens(selector: &Selector, events: &mut Events) -> Vec<u64> {
        selector
            .wait(events, Some(Duration::from_millis(50)))
            .unwrap();
        let mut tokens: Vec<u64> = (0..events.len()).map(|i| events.get(i).token()).collect();
        tokens.sort();
        tokens
    }

    #[test]
    fn a_closed_descriptor_is_released_once_deregistered() {
        let selector = Selector::new().unwrap();
        let mut events = Events::new();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        selector
            .register(a.as_raw_fd(), 1, Interest::READABLE, Trigger::Edge)
            .unwrap();
        assert_eq!(tokens(&selector, &mut events), Vec::<u64>::new());
        // A wake-up whose deferred work has not run yet (no enter since):
        // the cancellation must still take the poll down.
        b.write_all(b"x").unwrap();
        a.read_exact(&mut [0u8; 1]).unwrap();
        // The armed poll holds the socket open; deregistering releases it,
        // so closing `a` hangs up on `b` without another wait.
        selector.deregister(a.as_raw_fd()).unwrap();
        drop(a);
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(b.read(&mut buf).unwrap(), 0, "EOF");
    }

    #[test]
    fn a_reused_descriptor_number_replaces_the_stale_registration() {
        let selector = Selector::new().unwrap();
        let mut events = Events::new();
        let (a, mut peer) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        selector
            .register(fd, 1, Interest::READABLE, Trigger::Level)
            .unwrap();
        assert_eq!(tokens(&selector, &mut events), Vec::<u64>::new());
        // Closed elsewhere without deregistering: the same number, a new
        // socket, registered again under a new token.
        drop(a);
        let (c, mut d) = UnixStream::pair().unwrap();
        assert_eq!(c.as_raw_fd(), fd, "the number is reused");
        selector
            .register(fd, 2, Interest::READABLE, Trigger::Level)
            .unwrap();
        d.write_all(b"x").unwrap();
        assert_eq!(tokens(&selector, &mut events), vec![2]);
        // The old socket's poll was cancelled: its peer sees the hang-up.
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(peer.read(&mut [0u8; 1]).unwrap(), 0);
        // forget() leaves another token's registration alone.
        selector.forget(fd, 1);
        assert_eq!(tokens(&selector, &mut events), vec![2]);
        selector.forget(fd, 2);
        assert_eq!(tokens(&selector, &mut events), Vec::<u64>::new());
    }

    #[test]
    fn completions_beyond_the_array_wait_for_the_next_wait() {
        let selector = Selector::new().unwrap();
        let mut events = Events::new();
        let pairs: Vec<_> = (0..200).map(|_| UnixStream::pair().unwrap()).collect();
        for (i, (_, b)) in pairs.iter().enumerate() {
            selector
                .register(b.as_raw_fd(), i as u64, Interest::WRITABLE, Trigger::Edge)
                .unwrap();
        }
        // The kernel runs a bounded batch of deferred work per enter, and
        // the array holds 128: a few waits deliver everything, each once.
        let mut seen = Vec::new();
        for _ in 0..100 {
            seen.extend(tokens(&selector, &mut events));
            if seen.len() >= pairs.len() {
                break;
            }
        }
        seen.extend(tokens(&selector, &mut events));
        seen.sort();
        assert_eq!(seen, (0..200).collect::<Vec<u64>>(), "each once");
    }
}
