//! UDP sockets in the loop: one `recvmmsg` per readiness event, one
//! `on_traffic` per datagram, one `sendmmsg` for the replies.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use super::{Callbacks, Entry, EventLoop};
use crate::reactor::token::Token;
use crate::sys::{Interest, Trigger};
use crate::unwind::panic_message;
use crate::Action;

impl<H: Callbacks> EventLoop<H> {
    /// A UDP socket is ready: send what is queued, take one batch of
    /// datagrams and hand each to `on_traffic`, then send the replies.
    pub(super) fn datagram_ready(&mut self, token: Token, readable: bool, writable: bool) {
        let Some(Entry::Datagram(rec)) = self.entries.get_mut(token) else {
            return;
        };
        if writable {
            rec.io.flush(&rec.socket);
        }
        let slot = self.options.read_buffer_size;
        if readable && rec.interest.is_readable() {
            let Some(slots) = self.recv_slots.as_mut() else {
                return;
            };
            match slots.recv(rec.socket.as_raw_fd(), &mut self.read_buf, slot) {
                Ok(received) => {
                    for i in 0..received {
                        self.deliver_datagram(token, i, slot);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                // A pending ICMP error or the like: reported once, the socket
                // keeps serving every other peer.
                Err(e) => log::warn!("netloom: UDP receive on {token:?} failed: {e}"),
            }
        }
        self.settle_datagram(token);
    }

    /// Runs `on_traffic` for datagram `i` of the last receive.
    fn deliver_datagram(&mut self, token: Token, i: usize, slot: usize) {
        let Some(got) = self.recv_slots.as_ref().map(|s| s.received(i, slot)) else {
            return;
        };
        let (Some(Entry::Datagram(rec)), Some(from)) = (self.entries.get_mut(token), got.from)
        else {
            return;
        };
        rec.reply_to(from);
        rec.io.truncated_from = got.truncated_from;
        let start = i * slot;
        let outcome = self.call_with(token, start..start + got.len, |h, c| h.on_traffic(c));
        self.datagram_outcome(token, outcome);
    }

    /// A UDP socket serves every peer: nothing a callback returns closes it.
    pub(super) fn datagram_outcome(
        &mut self,
        token: Token,
        outcome: Option<std::thread::Result<Action>>,
    ) {
        match outcome {
            Some(Ok(Action::Shutdown)) => self.handler.stop(),
            Some(Err(panic)) => log::error!(
                "netloom: callback panicked on UDP socket {token:?}: {}",
                panic_message(&*panic)
            ),
            _ => {}
        }
    }

    /// Sends the replies the callbacks queued (they leave together), and
    /// watches the socket for writability only while some wait. It stays
    /// level-triggered: one `recvmmsg` takes at most a batch, and what is
    /// left must be reported again. Reading pauses while more than the
    /// high-water mark waits to be sent; a connection waiting for the queue
    /// to drain resumes at the low-water mark.
    pub(super) fn settle_datagram(&mut self, token: Token) {
        let Some(Entry::Datagram(rec)) = self.entries.get_mut(token) else {
            return;
        };
        rec.io.flush(&rec.socket);
        let queued = rec.io.pending();
        let mut want = Interest::NONE;
        if queued <= self.options.limits.high_water {
            want = want.with(Interest::READABLE);
        }
        if queued > 0 {
            want = want.with(Interest::WRITABLE);
        }
        if want != rec.interest {
            let fd = rec.socket.as_raw_fd();
            if let Err(e) = self
                .selector
                .reregister(fd, token.raw(), want, Trigger::Level)
            {
                log::error!("netloom: UDP socket {token:?} can no longer be watched: {e}");
                return self.close_datagram_socket(token);
            }
            rec.interest = want;
        }
        if let Some(shared) = &rec.shared {
            shared.outbound.store(queued, Ordering::Release);
        }
        if queued <= self.options.limits.low_water {
            if let Some(waiter) = rec.drain_waiter.take() {
                self.resume_waiter(*waiter);
            }
        }
    }
}
