//! The completion data path (io_uring): a stream connection's bytes move
//! by requests the loop submits with its one `io_uring_enter` per turn,
//! not by readiness and a syscall each.
//!
//! - **Reading**: one multishot recv per TCP connection, armed while the state
//!   machine wants input. Each completion names a buffer of the loop's
//!   [`BufRing`]; `on_traffic` reads it in place and the buffer goes back
//!   to the ring when the callback returns (what the handler left unread is
//!   copied into the connection's inbound buffer, as on the epoll path).
//!   Pausing (backpressure, a handler's hold, closing) cancels the recv;
//!   bytes that complete before the cancellation lands are kept in the
//!   inbound buffer and handed to `on_traffic` when reading resumes. A
//!   recv ended by an empty ring (`ENOBUFS`) is re-armed when the
//!   connection settles: by then this turn's buffers are back in the ring.
//! - **Writing**: writes only queue; when the connection settles and no
//!   send is in flight, the queue's front runs go out with one send (or
//!   sendmsg). The queued bytes stay put until its completion, which
//!   consumes what the kernel took and sends the rest.
//! - **Closing**: a connection closed with a request in flight is
//!   cancelled and a [`Retiring`] entry keeps the socket and the lent queue
//!   until the last completion arrives; only then are they freed. Its slot
//!   may serve a new connection meanwhile (completions tell the two apart
//!   by the token's generation). The loop does not exit before its retiring
//!   entries are gone.
//!
//! Unix stream sockets take a one-shot recv, re-armed after each
//! completion, instead of a multishot one: with multishot recvs on
//! AF_UNIX, `tests/unix_stream.rs`'s 8 MiB echo with a half-close stalled
//! in 1 run of 8 on Linux 6.18 (the recv stayed armed with bytes and the
//! FIN waiting), and in none of 12 with one-shot recvs.
//!
//! TLS and PROXY-header connections take the same requests; their bytes
//! are copied into the loop's read buffer and take the readiness path's
//! readers from there. Listeners, connecting sockets, UDP and the async
//! front-end's records stay on readiness (polls on the same ring).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use socket2::Socket;

use super::{run_callback, AcceptOp, Callbacks, Entry, EventLoop};
use crate::buffer::OutboundQueue;
use crate::conn::{ConnRecord, OpsInFlight, ReadMode, RecordMut, RecvOp};
use crate::reactor::token::Token;
use crate::stats::ErrorKind;
use crate::sys::socket;
use crate::sys::{op_key, BufRing, Completion, CompletionRing, Interest, Op};
use crate::{Addr, Error};

/// Buffers in a loop's ring, and their size: 1 MiB at most, touched only
/// as bytes arrive, and the most a paused connection's recv can still
/// complete before its cancellation lands. Each 4 KiB is the most one
/// completion (one `on_traffic`) delivers. An empty ring ends recvs with
/// `ENOBUFS`; they are re-armed once the turn's buffers are back.
const RECV_BUFFERS: u16 = 256;
const RECV_BUFFER_SIZE: u32 = 4096;
/// The buffer group of the loop's ring (one ring per io_uring).
const RECV_GROUP: u16 = 0;

/// A loop's completion ring and the buffers it lends recvs.
pub(super) struct CompletionIo {
    ring: CompletionRing,
    buffers: BufRing,
    /// Closed connections with requests in flight, by `op_key` of their token.
    retiring: HashMap<u64, Retiring>,
}

impl CompletionIo {
    /// The completion path of a loop whose poller is a ring; `None` (the
    /// readiness path) for other pollers, or if the buffer ring cannot be
    /// registered.
    pub(super) fn open(ring: Option<&CompletionRing>, loop_index: usize) -> Option<CompletionIo> {
        let ring = ring?.clone();
        match BufRing::new(&ring, RECV_GROUP, RECV_BUFFERS, RECV_BUFFER_SIZE) {
            Ok(buffers) => Some(CompletionIo {
                ring,
                buffers,
                retiring: HashMap::new(),
            }),
            Err(e) => {
                log::warn!(
                    "netloom: loop {loop_index}: io_uring buffer ring refused ({e}): \
                     connections use readiness polls"
                );
                None
            }
        }
    }

    /// Checks, once the loop has stopped, that every buffer went back to
    /// the ring and no request is left in flight (a bug otherwise: fatal in
    /// debug builds, so the tests that stop engines catch it).
    pub(super) fn check_quiet(&self, loop_index: usize) {
        let (lent, retiring) = (self.buffers.lent(), self.retiring.len());
        if lent != 0 || retiring != 0 {
            log::error!(
                "netloom: loop {loop_index}: stopped with {lent} ring buffers lent and \
                 {retiring} connections' requests in flight"
            );
            debug_assert!(
                false,
                "loop {loop_index}: {lent} buffers lent, {retiring} retiring"
            );
        }
    }

    /// Arms a multishot accept on the listener `fd` of `token`.
    pub(super) fn arm_accept(&self, fd: i32, token: Token) {
        self.ring.accept_multishot(fd, token.raw());
    }

    /// Cancels `token`'s accept (its last completion still arrives).
    pub(super) fn cancel_accept(&self, token: Token) {
        self.ring.cancel_op(token.raw(), Op::Accept);
    }

    /// Cancels `token`'s accept before its listener closes: at once, so
    /// the request's hold on the socket is gone with the descriptor.
    pub(super) fn cancel_accept_now(&self, token: Token) {
        self.ring.cancel_op_now(token.raw(), Op::Accept);
    }

    /// Submits what a settled completion-driven connection needs: a recv
    /// while it wants input (its cancellation once it does not), and a
    /// send of its queue when none is in flight.
    /// `woken`: the loop's list of connections to run again this turn.
    pub(super) fn settle_ops<C>(
        &self,
        rec: &mut ConnRecord<C>,
        token: Token,
        interest: Interest,
        woken: &mut Vec<Token>,
    ) {
        let fd = rec.io.stream.as_raw_fd();
        let Some(ops) = rec.io.ops.as_mut() else {
            return;
        };
        if !interest.is_readable() {
            if ops.recv == RecvOp::Armed {
                self.ring.cancel_op(token.raw(), Op::Recv);
                ops.recv = RecvOp::Cancelling;
            }
        } else if !ops.held.is_empty() || ops.eof {
            // Input that arrived while paused goes first (`resume_held`).
            if !rec.woken {
                rec.woken = true;
                woken.push(token);
            }
        } else if ops.recv == RecvOp::Idle {
            // Unix stream sockets take one recv per arrival: a multishot
            // recv on AF_UNIX missed a wake-up in testing (see the module
            // docs).
            let multishot = !matches!(rec.peer, Addr::Unix(_));
            let group = self.buffers.group();
            self.ring.recv(fd, token.raw(), group, multishot);
            ops.recv = RecvOp::Armed;
        }
        if !ops.sending && !rec.io.outbound.is_empty() && !rec.io.state.is_connecting() {
            submit_send(&self.ring, fd, token, &rec.io.outbound, ops);
        }
    }

    /// Whether closed connections still wait for requests in flight.
    pub(super) fn is_retiring(&self) -> bool {
        !self.retiring.is_empty()
    }
}

/// A closed connection's socket and queue, kept while requests it lent the
/// kernel are in flight.
pub(super) struct Retiring {
    /// Kept open until then: dropping it closes the socket.
    _socket: Socket,
    outbound: OutboundQueue,
    iovecs: Vec<libc::iovec>,
    msg: Option<Box<libc::msghdr>>,
    recv: bool,
    sending: bool,
}

impl Drop for Retiring {
    fn drop(&mut self) {
        if self.sending {
            // Only when a loop fails with a send in flight: the kernel may
            // still read the queue, so it is never freed.
            std::mem::forget(std::mem::take(&mut self.outbound));
            std::mem::forget(std::mem::take(&mut self.iovecs));
            std::mem::forget(self.msg.take());
        }
    }
}

impl<H: Callbacks> EventLoop<H> {
    /// Handles the completions of the last wait.
    pub(super) fn completions_ready(&mut self) {
        let completions = self.events.take_completions();
        for completion in &completions {
            self.completed(completion);
        }
        self.events.restore_completions(completions);
    }

    fn completed(&mut self, c: &Completion) {
        let token = self
            .entries
            .token_in_slot(c.slot())
            .filter(|t| c.is_for(t.raw()));
        if c.op() == Op::Accept {
            return self.accept_completed(token, c);
        }
        if let Some(token) =
            token.filter(|&t| matches!(self.entries.get_mut(t), Some(Entry::Conn(_))))
        {
            return match c.op() {
                Op::Recv => self.recv_completed(token, c),
                Op::Send => self.send_completed(token, c),
                // Taken above.
                Op::Accept => {}
            };
        }
        self.return_buffer(c);
        let Some(uring) = &mut self.uring else {
            return;
        };
        let Some(retiring) = uring.retiring.get_mut(&c.key()) else {
            // Cannot happen: a connection's record or its retiring entry
            // lasts until its requests complete.
            return log::error!("netloom: loop {}: completion for no request", self.index);
        };
        match c.op() {
            Op::Recv => retiring.recv &= c.more(),
            Op::Send => retiring.sending = false,
            // Taken above.
            Op::Accept => {}
        }
        if !retiring.recv && !retiring.sending {
            if let Some(mut retiring) = uring.retiring.remove(&c.key()) {
                retiring.outbound.clear(&mut self.env.pool);
                // Dropping it closes the socket.
            }
        }
    }

    /// A listener's multishot accept completed: a new connection, a
    /// failure, or its end (then it is re-armed unless the listener is
    /// paused). `token` is the slot's current occupant, if the generation
    /// agrees.
    fn accept_completed(&mut self, token: Option<Token>, c: &Completion) {
        let result = c.result();
        let listener =
            token.filter(|&t| matches!(self.entries.get_mut(t), Some(Entry::Listener { .. })));
        let Some(token) = listener else {
            // The listener was closed with the accept in flight.
            if result >= 0 {
                // SAFETY: the kernel made this descriptor for the completed
                // accept and handed it to nobody else.
                drop(unsafe { OwnedFd::from_raw_fd(result) });
            }
            return;
        };
        if result >= 0 {
            // SAFETY: as above: the new connection's descriptor, ours alone.
            let stream = unsafe { Socket::from_raw_fd(result) };
            // A connection reset before this look is dropped.
            if let Ok(peer) = stream.peer_addr() {
                self.accepted(token, stream, Addr::from_sockaddr(&peer));
            }
        } else if result != -libc::ECANCELED {
            let e = io::Error::from_raw_os_error(-result);
            if socket::is_transient_accept_error(&e) {
                self.counters.error(ErrorKind::Accept);
            } else {
                self.accept_failed(token, e);
            }
        }
        if c.more() {
            return;
        }
        let (
            Some(Entry::Listener {
                listener, accept, ..
            }),
            Some(uring),
        ) = (self.entries.get_mut(token), &self.uring)
        else {
            return;
        };
        *accept = match *accept {
            AcceptOp::Armed | AcceptOp::Cancelling => {
                uring.arm_accept(listener.socket.as_raw_fd(), token);
                AcceptOp::Armed
            }
            AcceptOp::Pausing => AcceptOp::Paused,
            other => other,
        };
    }

    /// Gives back the buffer a recv completion names, unread.
    fn return_buffer(&mut self, c: &Completion) {
        if let (Some(bid), Some(uring)) = (c.buffer(), self.uring.as_mut()) {
            uring.buffers.take(bid);
            uring.buffers.give_back(bid);
        }
    }

    fn recv_completed(&mut self, token: Token, c: &Completion) {
        let (Some(Entry::Conn(rec)), Some(uring)) = (self.entries.get_mut(token), &mut self.uring)
        else {
            return;
        };
        let Some(ops) = rec.io.ops.as_mut() else {
            return;
        };
        if !c.more() {
            ops.recv = RecvOp::Idle;
        }
        let result = c.result();
        if result > 0 {
            let n = result as usize;
            let Some(bid) = c.buffer() else {
                rec.io.state.fail(Error::Io(io::Error::other(
                    "io_uring recv completed without a buffer",
                )));
                return self.settle(token);
            };
            uring.buffers.take(bid);
            rec.io.state.active(self.now);
            let mode = rec.io.state.read_mode();
            let behind = !ops.held.is_empty() || ops.eof;
            if mode == ReadMode::Ignore || (mode == ReadMode::Deliver && behind) {
                // Completed before the pause's cancellation landed, or
                // behind bytes still held: held in order, in its buffer.
                // Counted as read when handed over.
                ops.held.push_back((bid, 0, n as u32));
                return self.settle(token);
            }
            self.counters.read(n);
            let bytes = uring.buffers.bytes(bid, n);
            match mode {
                ReadMode::Discard | ReadMode::Ignore => {}
                ReadMode::Deliver if rec.io.state.awaits_proxy_header() || rec.io.is_tls() => {
                    self.read_buf[..n].copy_from_slice(bytes);
                    uring.buffers.give_back(bid);
                    return self.deliver(token, n);
                }
                ReadMode::Deliver => {
                    let outcome = run_callback(
                        RecordMut::Stream(rec),
                        token,
                        &mut self.env,
                        &*self.handler,
                        bytes,
                        |h, c| h.on_traffic(c),
                    );
                    uring.buffers.give_back(bid);
                    return self.apply(token, outcome);
                }
            }
            uring.buffers.give_back(bid);
        } else if result == 0 {
            match rec.io.state.read_mode() {
                ReadMode::Deliver if ops.held.is_empty() => return self.deliver_eof(token),
                ReadMode::Discard => {
                    rec.io.state.read_eof();
                }
                // Told once reading resumes, after the bytes held meanwhile.
                ReadMode::Deliver | ReadMode::Ignore => ops.eof = true,
            }
        } else if result != -libc::ENOBUFS && result != -libc::ECANCELED && !retry_later(result) {
            // Other than ended by an empty ring, a pause or `retry_later`,
            // after which the recv is re-armed when the connection settles.
            rec.io
                .state
                .fail(Error::Io(io::Error::from_raw_os_error(-result)));
        }
        self.settle(token);
    }

    fn send_completed(&mut self, token: Token, c: &Completion) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        let Some(ops) = rec.io.ops.as_mut() else {
            return;
        };
        ops.sending = false;
        ops.iovecs.clear();
        match c.result() {
            n if n > 0 => {
                rec.io.outbound.consume(n as usize, &mut self.env.pool);
                rec.io.state.note_sent(n as usize);
                rec.io.state.active(self.now);
            }
            // Cancelled at a close; or not sent (`retry_later`): the
            // settle below sends the queue again.
            n if n == -libc::ECANCELED || retry_later(n) => {}
            0 => rec
                .io
                .state
                .fail(Error::Io(io::ErrorKind::WriteZero.into())),
            n => rec
                .io
                .state
                .fail(Error::Io(io::Error::from_raw_os_error(-n))),
        }
        self.settle(token);
    }

    /// Whether input that completed while reading was paused waits for
    /// [`resume_held`](EventLoop::resume_held).
    pub(super) fn holds_input(rec: &ConnRecord<H::Context>) -> bool {
        rec.io
            .ops
            .as_ref()
            .is_some_and(|ops| !ops.held.is_empty() || ops.eof)
    }

    /// Hands over what completed while reading was paused, once it reads
    /// again (the connection was woken by `settle_ops`): a read buffer's
    /// worth of the held bytes, as if just read (settling then wakes the
    /// connection again for the rest), and then the FIN.
    pub(super) fn resume_held(&mut self, token: Token) {
        let (Some(Entry::Conn(rec)), Some(uring)) = (self.entries.get_mut(token), &mut self.uring)
        else {
            return;
        };
        let Some(ops) = rec.io.ops.as_mut() else {
            return;
        };
        match rec.io.state.read_mode() {
            // Paused again: the next resume wakes it.
            ReadMode::Ignore => {}
            ReadMode::Discard => {
                for (bid, start, end) in ops.held.drain(..) {
                    self.counters.read((end - start) as usize);
                    uring.buffers.give_back(bid);
                }
                if std::mem::take(&mut ops.eof) {
                    rec.io.state.read_eof();
                }
                self.settle(token);
            }
            ReadMode::Deliver if !ops.held.is_empty() => {
                let room = self.options.read_buffer_size;
                let mut n = 0;
                while let Some((bid, start, end)) = ops.held.front_mut() {
                    let take = (*end - *start).min((room - n) as u32);
                    let bytes = &uring.buffers.bytes(*bid, *end as usize)[*start as usize..];
                    self.read_buf[n..n + take as usize].copy_from_slice(&bytes[..take as usize]);
                    n += take as usize;
                    *start += take;
                    if *start < *end {
                        break;
                    }
                    uring.buffers.give_back(*bid);
                    ops.held.pop_front();
                }
                self.counters.read(n);
                self.deliver(token, n);
            }
            ReadMode::Deliver => {
                ops.eof = false;
                self.deliver_eof(token);
            }
        }
    }

    /// Takes a closed connection's record: if requests are in flight, they
    /// are cancelled and a [`Retiring`] entry keeps the socket and what the
    /// requests point to until they complete; otherwise the queue goes
    /// back to the pool and the socket closes now.
    pub(super) fn retire(&mut self, token: Token, rec: ConnRecord<H::Context>) {
        let ConnRecord { mut io, .. } = rec;
        let Some(ops) = io.ops else {
            return io.outbound.clear(&mut self.env.pool);
        };
        if let Some(uring) = &mut self.uring {
            for &(bid, ..) in &ops.held {
                uring.buffers.give_back(bid);
            }
        }
        let OpsInFlight {
            recv,
            sending,
            iovecs,
            msg,
            ..
        } = ops;
        let recv = recv != RecvOp::Idle;
        if !recv && !sending {
            return io.outbound.clear(&mut self.env.pool);
        }
        if let Some(uring) = &self.uring {
            if recv {
                uring.ring.cancel_op(token.raw(), Op::Recv);
            }
            if sending {
                uring.ring.cancel_op(token.raw(), Op::Send);
            }
        }
        let retiring = Retiring {
            _socket: io.stream,
            outbound: io.outbound,
            iovecs,
            msg,
            recv,
            sending,
        };
        if let Some(uring) = &mut self.uring {
            uring.retiring.insert(op_key(token.raw()), retiring);
        }
    }
}

/// A request on a socket the kernel polled for it too often (128 wake-ups
/// without completing, e.g. a send to a peer that reads slowly) is finished
/// by a worker thread, where the socket's `O_NONBLOCK` makes it complete
/// with `EAGAIN`: not a failure, the request is made again.
fn retry_later(result: i32) -> bool {
    result == -libc::EAGAIN
}

/// Sends the front runs of `outbound`: one run with a send, more with a
/// sendmsg whose header and iovecs `ops` keeps.
fn submit_send(
    ring: &CompletionRing,
    fd: i32,
    token: Token,
    outbound: &OutboundQueue,
    ops: &mut OpsInFlight,
) {
    ops.iovecs.clear();
    ops.iovecs
        .extend(outbound.front_runs().map(|run| libc::iovec {
            iov_base: run.as_ptr() as *mut libc::c_void,
            iov_len: run.len(),
        }));
    ops.sending = true;
    if let [one] = ops.iovecs[..] {
        let len = u32::try_from(one.iov_len).unwrap_or(u32::MAX);
        ops.iovecs.clear();
        // SAFETY: the bytes are the queue's front run, which neither moves
        // nor is freed until this send completes: appends go elsewhere (see
        // `OutboundQueue`), consuming waits for the completion, and a closed
        // connection's queue is kept by its `Retiring` entry until then.
        unsafe { ring.send(fd, token.raw(), one.iov_base.cast(), len) };
    } else {
        let msg = ops.msg.get_or_insert_with(|| {
            // SAFETY: an all-zero msghdr is a valid one: no address, no
            // iovecs, no control data, no flags.
            Box::new(unsafe { std::mem::zeroed() })
        });
        msg.msg_iov = ops.iovecs.as_mut_ptr();
        // At most 64 iovecs: fits every platform's field type.
        msg.msg_iovlen = ops.iovecs.len() as _;
        // SAFETY: as above for the runs; the header is boxed in `ops`, and
        // it and the iovecs it names (`ops.iovecs`) are changed only by the
        // next send, after this one's completion (or kept by the
        // `Retiring` entry until then).
        unsafe { ring.sendmsg(fd, token.raw(), &**msg) };
    }
}
