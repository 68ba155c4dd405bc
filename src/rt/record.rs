//! The per-descriptor record (Go's `pollDesc`): readiness, the parked
//! reader and writer, and the deadlines. Plain data: the executor owns the
//! records and drives them, the I/O source (`scheduled_io`) reads them.
//!
//! Every socket of the async front-end is registered once, edge-triggered
//! for both directions, in its loop's slab ([`Slab<ScheduledIo>`]); the
//! [`Token`] the kernel returns with each event names the record. A record
//! holds what Go's `pollDesc` holds:
//!
//! | field | Go | meaning |
//! |-------|----|---------|
//! | `readiness` | (implicit in `rg`/`wg` = pdReady) | bits below, set by events, cleared by `WouldBlock` |
//! | `reader`, `writer` | `rg`, `wg` | the one task parked per direction, and a park counter |
//! | `read`, `write` | `rd`/`rseq`, `wd`/`wseq` | deadline, sequence number, expired flag, armed timer |
//! | `listener` | | `accept` fails once the runtime stops |
//!
//! Readiness bits:
//!
//! | bit | name | set by | cleared by |
//! |-----|------|--------|------------|
//! | 0 | `READABLE` | `EPOLLIN`/`EPOLLRDHUP`/`EPOLLHUP` | a read that returned `WouldBlock`, or a short stream read (the socket was drained; the next arrival is a new edge) |
//! | 1 | `WRITABLE` | `EPOLLOUT`, registration | a write that returned `WouldBlock`, or a short stream write |
//! | 2 | `READ_CLOSED` | `EPOLLRDHUP`/`EPOLLHUP` | never: keeps `READABLE` set (reads return 0) |
//! | 3 | `ERROR` | `EPOLLERR` | never: keeps both set (the syscall reports the error) |
//!
//! A new record starts with `WRITABLE` only: a first write tries the syscall
//! at once, while a first read (or `readable()`, or `accept`) waits for the
//! event that `EPOLL_CTL_ADD` reports when the socket already has data, so
//! an idle socket is never reported readable before it is. The loop is single-threaded, so clearing a bit after
//! `WouldBlock` cannot race with an event: any later arrival is a new edge,
//! reported by the next `epoll_wait`.
//!
//! Deadlines, per direction (Go's semantics):
//!
//! | event | effect |
//! |-------|--------|
//! | `set_*_deadline(Some(t))`, `t` in the future | `seq += 1`, `expired = false`; a timer is armed at `t` unless one is armed earlier |
//! | `set_*_deadline(Some(t))`, `t` now or past | `seq += 1`, `expired = true`; the parked task is woken and fails |
//! | `set_*_deadline(None)` | `seq += 1`, `expired = false` |
//! | an operation starts or is re-polled | fails with `TimedOut` while `expired` |
//! | the armed timer fires, deadline still `<=` now | `expired = true`, the parked task is woken and fails with `TimedOut` |
//! | the armed timer fires, deadline moved later | re-armed at the new deadline under the current `seq`; nothing else |
//! | any other timer fires (its `seq` is not the armed one) | nothing: a stale timer |
//!
//! Only one timer per direction is live at a time unless a deadline moves
//! earlier, so a server that pushes its read deadline forward before every
//! read does not grow the timer heap.

use std::io;
use std::task::Waker;
use std::time::Instant;

const READABLE: u8 = 1 << 0;
const WRITABLE: u8 = 1 << 1;
const READ_CLOSED: u8 = 1 << 2;
const ERROR: u8 = 1 << 3;

/// Which half of a descriptor an operation uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// One direction's deadline state (Go's `rd` + `rseq`).
#[derive(Default)]
struct Deadline {
    at: Option<Instant>,
    seq: u32,
    expired: bool,
    /// The timer entry the record relies on: its instant and sequence number.
    armed: Option<(Instant, u32)>,
}

/// What a fired deadline timer asks of the loop.
pub(crate) enum Fired {
    /// Stale, or the deadline was cleared: nothing.
    Nothing,
    /// The deadline moved later: schedule a timer again.
    Rearm(Instant, u32),
    /// The deadline passed; wake the parked task (if any) so it fails.
    Expired(Option<Waker>),
}

/// One direction's parked task. `parks` counts the wakers stored, so an
/// operation that parked earlier can tell whether the waker in the slot is
/// still its own (an event may have taken it and another task parked since).
#[derive(Default)]
struct WaiterSlot {
    waker: Option<Waker>,
    parks: u32,
}

/// The per-descriptor record (see the module tables).
pub(crate) struct ScheduledIo {
    readiness: u8,
    reader: WaiterSlot,
    writer: WaiterSlot,
    read: Deadline,
    write: Deadline,
    listener: bool,
}

impl ScheduledIo {
    pub(crate) fn new(listener: bool) -> ScheduledIo {
        ScheduledIo {
            readiness: WRITABLE,
            reader: WaiterSlot::default(),
            writer: WaiterSlot::default(),
            read: Deadline::default(),
            write: Deadline::default(),
            listener,
        }
    }

    pub(crate) fn is_listener(&self) -> bool {
        self.listener
    }

    pub(crate) fn parked_waiters(&self) -> usize {
        usize::from(self.reader.waker.is_some()) + usize::from(self.writer.waker.is_some())
    }

    /// Records an event; returns the wakers of the directions it made ready.
    pub(crate) fn on_event(
        &mut self,
        readable: bool,
        writable: bool,
        read_closed: bool,
        error: bool,
    ) -> [Option<Waker>; 2] {
        if read_closed {
            self.readiness |= READ_CLOSED;
        }
        if error {
            self.readiness |= ERROR;
        }
        let mut woken = [None, None];
        if readable || read_closed || error {
            self.readiness |= READABLE;
            woken[0] = self.reader.waker.take();
        }
        if writable || error {
            self.readiness |= WRITABLE;
            woken[1] = self.writer.waker.take();
        }
        woken
    }

    pub(crate) fn is_ready(&self, direction: Direction) -> bool {
        self.readiness & bit(direction) != 0
    }

    pub(crate) fn clear_readiness(&mut self, direction: Direction) {
        let sticky = match direction {
            Direction::Read => READ_CLOSED | ERROR,
            Direction::Write => ERROR,
        };
        if self.readiness & sticky == 0 {
            self.readiness &= !bit(direction);
        }
    }

    fn slot(&mut self, direction: Direction) -> &mut WaiterSlot {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }

    fn deadline(&mut self, direction: Direction) -> &mut Deadline {
        match direction {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }

    pub(crate) fn take_waiter(&mut self, direction: Direction) -> Option<Waker> {
        self.slot(direction).waker.take()
    }

    /// Puts `waker` in the direction's slot. Returns the waker it displaced
    /// (to be dropped outside the slab borrow), or an error if another
    /// operation of a shared socket already waits there.
    pub(crate) fn park(
        &mut self,
        direction: Direction,
        waker: &Waker,
        waiter: &mut Waiter,
    ) -> io::Result<Option<Waker>> {
        let slot = self.slot(direction);
        let ours = waiter.parked == Some(slot.parks);
        match &slot.waker {
            Some(current) if current.will_wake(waker) => {
                waiter.parked = Some(slot.parks);
                Ok(None)
            }
            Some(_) if waiter.shared && !ours => Err(io::Error::other(
                "another task is already waiting on this socket in the same direction",
            )),
            _ => {
                slot.parks = slot.parks.wrapping_add(1);
                waiter.parked = Some(slot.parks);
                Ok(slot.waker.replace(waker.clone()))
            }
        }
    }

    /// Sets a deadline; returns a timer to arm and a waiter to wake.
    pub(crate) fn set_deadline(
        &mut self,
        direction: Direction,
        at: Option<Instant>,
        now: Instant,
    ) -> (Option<(Instant, u32)>, Option<Waker>) {
        let deadline = self.deadline(direction);
        deadline.seq = deadline.seq.wrapping_add(1);
        deadline.at = at;
        deadline.expired = false;
        match at {
            None => (None, None),
            Some(at) if at <= now => {
                deadline.expired = true;
                (None, self.take_waiter(direction))
            }
            Some(at) => match deadline.armed {
                Some((armed_at, _)) if armed_at <= at => (None, None),
                _ => {
                    deadline.armed = Some((at, deadline.seq));
                    (Some((at, deadline.seq)), None)
                }
            },
        }
    }

    /// A deadline timer armed under `seq` fired at `now`.
    /// Whether the direction's deadline has passed: its operations fail.
    pub(crate) fn is_expired(&mut self, direction: Direction) -> bool {
        self.deadline(direction).expired
    }

    pub(crate) fn deadline_fired(&mut self, direction: Direction, seq: u32, now: Instant) -> Fired {
        let deadline = self.deadline(direction);
        if !matches!(deadline.armed, Some((_, armed)) if armed == seq) {
            return Fired::Nothing;
        }
        deadline.armed = None;
        match deadline.at {
            None => Fired::Nothing,
            Some(_) if deadline.expired => Fired::Nothing,
            Some(at) if at <= now => {
                deadline.expired = true;
                Fired::Expired(self.take_waiter(direction))
            }
            Some(at) => {
                deadline.armed = Some((at, deadline.seq));
                Fired::Rearm(at, deadline.seq)
            }
        }
    }
}

fn bit(direction: Direction) -> u8 {
    match direction {
        Direction::Read => READABLE,
        Direction::Write => WRITABLE,
    }
}

/// How an operation waits in its direction's slot.
#[derive(Default)]
pub(crate) struct Waiter {
    /// The slot's park count when this operation stored its waker.
    parked: Option<u32>,
    /// The socket is shared (`&self` operations): a second concurrent
    /// waiter is refused instead of silently displacing the first. Streams
    /// take `&mut self` for reads and writes, so their slots are exclusive
    /// and a newer waker simply replaces an older one of the same operation.
    shared: bool,
}

impl Waiter {
    /// Whether this operation's waker is in its slot.
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    pub(crate) fn shared() -> Waiter {
        Waiter {
            parked: None,
            shared: true,
        }
    }
}
/// Clears `waiter`'s registration; returns its waker for dropping outside
/// the borrow.
pub(crate) fn finish_wait(
    record: &mut ScheduledIo,
    direction: Direction,
    waiter: &mut Waiter,
) -> Option<Waker> {
    let parks = waiter.parked.take()?;
    let slot = record.slot(direction);
    // Only its own waker: another task may have parked since an event took it.
    if slot.parks == parks {
        slot.waker.take()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn stale_deadline_timer_does_nothing() {
        let now = Instant::now();
        let mut record = ScheduledIo::new(false);
        let (arm, _) =
            record.set_deadline(Direction::Read, Some(now + Duration::from_millis(10)), now);
        let (at, first) = arm.unwrap();
        // Moved earlier: a second timer; the first is now stale.
        let (arm, _) =
            record.set_deadline(Direction::Read, Some(now + Duration::from_millis(5)), now);
        let (_, second) = arm.unwrap();
        // Cleared before either fires.
        record.set_deadline(Direction::Read, None, now);
        assert!(matches!(
            record.deadline_fired(Direction::Read, second, at),
            Fired::Nothing
        ));
        assert!(matches!(
            record.deadline_fired(Direction::Read, first, at),
            Fired::Nothing
        ));
        assert!(!record.read.expired);
    }

    #[test]
    fn later_deadline_rearms_the_armed_timer() {
        let now = Instant::now();
        let mut record = ScheduledIo::new(false);
        let (arm, _) =
            record.set_deadline(Direction::Write, Some(now + Duration::from_millis(10)), now);
        let (at, seq) = arm.unwrap();
        let later = now + Duration::from_millis(50);
        let (arm, _) = record.set_deadline(Direction::Write, Some(later), now);
        assert!(arm.is_none(), "the earlier timer is reused");
        assert!(matches!(
            record.deadline_fired(Direction::Write, seq, at),
            Fired::Rearm(t, _) if t == later
        ));
        let Some((_, rearmed)) = record.write.armed else {
            panic!("re-armed")
        };
        assert!(matches!(
            record.deadline_fired(Direction::Write, rearmed, later),
            Fired::Expired(None)
        ));
        assert!(record.write.expired);
    }

    struct NoopWake;
    impl std::task::Wake for NoopWake {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn a_woken_waiter_finishing_leaves_a_later_waiter_parked() {
        let (a_waker, b_waker) = (
            Waker::from(Arc::new(NoopWake)),
            Waker::from(Arc::new(NoopWake)),
        );
        let mut record = ScheduledIo::new(false);
        record.clear_readiness(Direction::Read);
        let (mut a, mut b) = (Waiter::shared(), Waiter::shared());
        assert!(record.park(Direction::Read, &a_waker, &mut a).is_ok());
        assert!(
            record.park(Direction::Read, &b_waker, &mut b).is_err(),
            "a second concurrent waiter on a shared socket is refused"
        );
        // An event takes A's waker; B parks before A runs again.
        let [woken, _] = record.on_event(true, false, false, false);
        assert!(woken.is_some_and(|w| w.will_wake(&a_waker)));
        record.clear_readiness(Direction::Read);
        assert!(record.park(Direction::Read, &b_waker, &mut b).is_ok());
        // A completes (or is dropped): B's waker must stay.
        assert!(finish_wait(&mut record, Direction::Read, &mut a).is_none());
        assert_eq!(record.parked_waiters(), 1);
        let ours = finish_wait(&mut record, Direction::Read, &mut b);
        assert!(ours.is_some_and(|w| w.will_wake(&b_waker)));
        assert_eq!(record.parked_waiters(), 0);
    }

    #[test]
    fn sticky_bits_keep_readiness() {
        let mut record = ScheduledIo::new(false);
        record.clear_readiness(Direction::Read);
        assert!(!record.is_ready(Direction::Read));
        record.on_event(true, false, true, false);
        record.clear_readiness(Direction::Read);
        assert!(record.is_ready(Direction::Read), "EOF stays readable");
    }
}
