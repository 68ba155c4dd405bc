//! The I/O source: a non-blocking socket registered, on first use, with the
//! loop that uses it, whose operations run their syscall when the
//! descriptor's record (`record.rs`) says it is ready and park the task in
//! the record otherwise.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use super::executor::{with_core, Core, LoopShared, Remote};
use super::record::finish_wait;
pub(crate) use super::record::{Direction, Waiter};
use crate::reactor::inbox::Lane;
use crate::reactor::token::Token;

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o deadline reached")
}

fn not_on_loop() -> io::Error {
    io::Error::other("netloom: socket used outside a netloom runtime loop")
}

fn foreign_loop() -> io::Error {
    io::Error::other("netloom: socket used on a loop other than the one it is registered with")
}

struct Registration {
    /// `home.id`, kept inline: compared on every operation.
    home_id: usize,
    home: Arc<LoopShared>,
    token: Token,
}

/// A non-blocking socket plus its registration. The socket registers with
/// the loop that first uses it (so a stream accepted on one loop and moved
/// into a task spawned on another is registered there) and stays with it.
pub(crate) struct IoSource<S: AsRawFd> {
    io: S,
    registration: OnceLock<Registration>,
    /// `accept` on it fails once the runtime stops.
    listener: bool,
}

impl<S: AsRawFd> IoSource<S> {
    /// Wraps a socket that is already in non-blocking mode.
    pub(crate) fn new(io: S) -> IoSource<S> {
        IoSource {
            io,
            registration: OnceLock::new(),
            listener: false,
        }
    }

    /// Wraps a non-blocking listening socket.
    pub(crate) fn listener(io: S) -> IoSource<S> {
        IoSource {
            io,
            registration: OnceLock::new(),
            listener: true,
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    fn token_on(&self, core: &Core) -> io::Result<Token> {
        if let Some(reg) = self.registration.get() {
            return if reg.home_id == core.id() {
                Ok(reg.token)
            } else {
                Err(foreign_loop())
            };
        }
        self.register_with(core)
    }

    /// Registers the socket with `core`'s loop, unless another loop's
    /// registration got in first (a shared socket used from two loops at
    /// once): that loop keeps it, and this one takes the socket out of its
    /// epoll set again.
    fn register_with(&self, core: &Core) -> io::Result<Token> {
        let fd = self.io.as_raw_fd();
        let token = core.register(fd, self.listener)?;
        let registration = Registration {
            home_id: core.id(),
            home: core.home().clone(),
            token,
        };
        if self.registration.set(registration).is_err() {
            core.unregister(fd, token);
            return Err(foreign_loop());
        }
        Ok(token)
    }

    /// Runs `op` (a non-blocking syscall) once the direction is ready,
    /// parking the task until it is. `drained` tells from a successful
    /// result that the socket buffer was emptied (or filled), so readiness
    /// can be cleared without another syscall.
    pub(crate) fn poll_op<T>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        waiter: &mut Waiter,
        mut op: impl FnMut(&S) -> io::Result<T>,
        drained: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        with_core(|core| {
            let token = match self.token_on(core) {
                Ok(token) => token,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if !core.has_budget() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            loop {
                let loop_stopping = core.is_stopping();
                let step = core.with_record(token, |record| {
                    if record.is_expired(direction) {
                        Step::Fail(finish_wait(record, direction, waiter), timed_out())
                    } else if record.is_listener() && loop_stopping {
                        Step::Fail(finish_wait(record, direction, waiter), stopping())
                    } else if !record.is_ready(direction) {
                        Step::Park(record.park(direction, cx.waker(), waiter))
                    } else {
                        Step::Try
                    }
                });
                // Wakers taken out of the record are dropped here, outside
                // its borrow.
                match step {
                    None => return Poll::Ready(Err(io::Error::other("netloom: record released"))),
                    Some(Step::Fail(_ours, e)) => return Poll::Ready(Err(e)),
                    Some(Step::Park(Ok(_displaced))) => return Poll::Pending,
                    Some(Step::Park(Err(e))) => return Poll::Ready(Err(e)),
                    Some(Step::Try) => {}
                }
                match op(&self.io) {
                    Ok(value) => {
                        let is_drained = drained(&value);
                        if is_drained || waiter.is_parked() {
                            let ours = core.with_record(token, |record| {
                                if is_drained {
                                    record.clear_readiness(direction);
                                }
                                finish_wait(record, direction, waiter)
                            });
                            drop(ours);
                        }
                        core.spend_budget();
                        return Poll::Ready(Ok(value));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        core.with_record(token, |record| record.clear_readiness(direction));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let ours = core
                            .with_record(token, |record| finish_wait(record, direction, waiter));
                        drop(ours);
                        return Poll::Ready(Err(e));
                    }
                }
            }
        })
        .unwrap_or_else(|| Poll::Ready(Err(not_on_loop())))
    }

    /// Takes this operation's waker out of its slot (a dropped operation
    /// must leave no waker behind).
    pub(crate) fn unpark(&self, direction: Direction, waiter: &mut Waiter) {
        if !waiter.is_parked() {
            return;
        }
        let Some(reg) = self.registration.get() else {
            return;
        };
        let taken = with_core(|core| {
            if core.id() != reg.home_id {
                return None;
            }
            core.with_record(reg.token, |record| finish_wait(record, direction, waiter))
        })
        .flatten()
        .flatten();
        drop(taken);
    }

    /// Go's `SetReadDeadline` / `SetWriteDeadline`.
    pub(crate) fn set_deadline(&self, direction: Direction, at: Option<Instant>) -> io::Result<()> {
        with_core(|core| {
            let token = self.token_on(core)?;
            let now = Instant::now();
            let Some((arm, wake)) =
                core.with_record(token, |record| record.set_deadline(direction, at, now))
            else {
                return Err(io::Error::other("netloom: record released"));
            };
            if let Some((at, seq)) = arm {
                core.arm_deadline(at, token, direction, seq);
            }
            if let Some(w) = wake {
                w.wake();
            }
            Ok(())
        })
        .unwrap_or_else(|| Err(not_on_loop()))
    }
}

/// What an operation does after looking at its record.
enum Step {
    /// Fail with the error (the operation's waker, taken out, is dropped).
    Fail(Option<std::task::Waker>, io::Error),
    /// Not ready: parked (a displaced waker is dropped), or refused.
    Park(io::Result<Option<std::task::Waker>>),
    /// Ready: run the syscall.
    Try,
}

fn stopping() -> io::Error {
    io::Error::other("netloom: the runtime is stopping")
}

impl<S: AsRawFd> Drop for IoSource<S> {
    fn drop(&mut self) {
        let Some(reg) = self.registration.get() else {
            return;
        };
        let released_here = with_core(|core| {
            let here = core.id() == reg.home_id;
            if here {
                core.release(reg.token, self.io.as_raw_fd());
            }
            here
        });
        if released_here != Some(true) {
            // The loop forgets the record when it reads this; the socket is
            // closed right now (after this body), which removes it from epoll
            // (an io_uring loop's poll keeps it open until the loop cancels
            // it on reading this).
            let _ = reg.home.inbox.send(
                Lane::Urgent,
                Remote::Release(reg.token, self.io.as_raw_fd()),
            );
        }
    }
}

impl<S: AsRawFd> AsRawFd for IoSource<S> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.io.as_raw_fd()
    }
}

/// One I/O operation as a future: a syscall retried on readiness. Dropping
/// it before it completes takes its waker out of the record.
pub(crate) struct IoOp<'a, S: AsRawFd, Op, Drained> {
    source: &'a IoSource<S>,
    direction: Direction,
    waiter: Waiter,
    op: Op,
    drained: Drained,
}

impl<'a, S: AsRawFd, T, Op, Drained> IoOp<'a, S, Op, Drained>
where
    Op: FnMut(&S) -> io::Result<T> + Unpin,
    Drained: Fn(&T) -> bool + Unpin,
{
    pub(crate) fn new(
        source: &'a IoSource<S>,
        direction: Direction,
        waiter: Waiter,
        op: Op,
        drained: Drained,
    ) -> Self {
        IoOp {
            source,
            direction,
            waiter,
            op,
            drained,
        }
    }
}

impl<S: AsRawFd, T, Op, Drained> std::future::Future for IoOp<'_, S, Op, Drained>
where
    Op: FnMut(&S) -> io::Result<T> + Unpin,
    Drained: Fn(&T) -> bool + Unpin,
{
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let this = self.get_mut();
        this.source.poll_op(
            cx,
            this.direction,
            &mut this.waiter,
            &mut this.op,
            &this.drained,
        )
    }
}

impl<S: AsRawFd, Op, Drained> Drop for IoOp<'_, S, Op, Drained> {
    fn drop(&mut self) {
        self.source.unpark(self.direction, &mut self.waiter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    #[test]
    fn the_loop_that_loses_a_registration_race_stops_watching_the_socket() {
        use super::super::executor::CoreSeed;
        use super::super::RuntimeShared;
        let kind = crate::sys::resolve_backend(crate::Backend::Auto).unwrap();
        let runtime = Arc::new(RuntimeShared::new(Vec::new(), Duration::ZERO, kind));
        let winner = Core::new(CoreSeed::standalone(kind).unwrap(), runtime.clone());
        let loser = Core::new(CoreSeed::standalone(kind).unwrap(), runtime);
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let source = IoSource::new(socket);
        source.register_with(&winner).unwrap();
        // The loser registered the socket, then found the winner's record.
        let lost = source.register_with(&loser).unwrap_err();
        assert_eq!(lost.to_string(), foreign_loop().to_string());
        assert_eq!(loser.metrics().io_records, 0, "its record is released");
        // Not in the loser's epoll set any more: adding it again succeeds
        // (EEXIST otherwise).
        let fd = source.get_ref().as_raw_fd();
        loser.register(fd, false).unwrap();
    }
}
