//! Sleeps, timeouts and intervals on the loop's own timer heap.
//!
//! A sleep takes a slot in the loop's sleep slab and one heap entry keyed by
//! the slot's [`Token`]. The timer frees the slot when it fires; a dropped
//! sleep frees it early, and its heap entry then names a stale token and
//! does nothing (the heap's lazy cancel).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::executor::with_core;
use crate::reactor::token::Token;

/// Completes after `duration`, measured on the current loop's timers.
///
/// # Panics
/// When polled off a runtime loop.
///
/// ```
/// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// rt.block_on(netloom::rt::sleep(std::time::Duration::from_millis(5)));
/// # Ok::<(), netloom::Error>(())
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Completes at `deadline` (at once if it has passed).
///
/// # Panics
/// When polled off a runtime loop.
///
/// ```
/// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let at = std::time::Instant::now() + std::time::Duration::from_millis(5);
/// rt.block_on(netloom::rt::sleep_until(at));
/// assert!(std::time::Instant::now() >= at);
/// # Ok::<(), netloom::Error>(())
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        entry: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`]. `Send`, `Unpin`.
///
/// ```
/// let sleep: netloom::rt::Sleep = netloom::rt::sleep(std::time::Duration::from_secs(1));
/// assert!(sleep.deadline() > std::time::Instant::now());
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    /// The loop (by id) and sleep slot, once registered.
    entry: Option<(usize, Token)>,
}

impl Sleep {
    /// When it completes.
    ///
    /// ```
    /// let sleep = netloom::rt::sleep(std::time::Duration::ZERO);
    /// let _at = sleep.deadline();
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        with_core(|core| match this.entry {
            None => {
                if this.deadline <= Instant::now() {
                    return Poll::Ready(());
                }
                let token = core.add_sleep(this.deadline, cx.waker().clone());
                this.entry = Some((core.id(), token));
                Poll::Pending
            }
            Some((_, token)) => {
                if core.renew_sleep(token, cx.waker()) {
                    return Poll::Pending;
                }
                // The timer fired and freed the slot.
                this.entry = None;
                this.deadline = Instant::now().min(this.deadline);
                Poll::Ready(())
            }
        })
        .expect("netloom: sleep polled off a runtime loop")
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let Some((home, token)) = self.entry else {
            return;
        };
        // Off its loop the slot is freed when the timer fires instead.
        with_core(|core| {
            if core.id() == home {
                core.cancel_sleep(token);
            }
        });
    }
}

/// The error of [`timeout`]: the time ran out first.
///
/// ```
/// let err: std::io::Error = netloom::rt::Elapsed::default().into();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed(());

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `future` for at most `duration`; dropping it if the time runs out.
///
/// # Panics
/// When polled off a runtime loop.
///
/// ```
/// use std::time::Duration;
/// use netloom::rt::{sleep, timeout};
/// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// let slow = rt.block_on(timeout(Duration::from_millis(5), sleep(Duration::from_secs(9))));
/// assert!(slow.is_err());
/// let fast = rt.block_on(timeout(Duration::from_secs(9), async { 1 }));
/// assert_eq!(fast, Ok(1));
/// # Ok::<(), netloom::Error>(())
/// ```
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = std::pin::pin!(future);
    let mut timer = sleep(duration);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Ticks every `period`, the first tick at once. A tick that is late by more
/// than a period is skipped, as Go's `time.Ticker` drops ticks for a slow
/// receiver.
///
/// # Panics
/// If `period` is zero.
///
/// ```
/// use std::time::Duration;
/// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
/// rt.block_on(async {
///     let mut every = netloom::rt::interval(Duration::from_millis(2));
///     for _ in 0..3 {
///         every.tick().await;
///     }
/// });
/// # Ok::<(), netloom::Error>(())
/// ```
pub fn interval(period: Duration) -> Interval {
    assert!(
        period > Duration::ZERO,
        "netloom: interval period must be positive"
    );
    Interval {
        period,
        next: Instant::now(),
    }
}

/// The ticker of [`interval`].
///
/// ```
/// let every: netloom::rt::Interval = netloom::rt::interval(std::time::Duration::from_secs(1));
/// assert_eq!(every.period(), std::time::Duration::from_secs(1));
/// ```
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    next: Instant,
}

impl Interval {
    /// Waits for the next tick; returns the instant it was due.
    ///
    /// # Panics
    /// When polled off a runtime loop.
    ///
    /// ```
    /// # let rt = netloom::rt::Runtime::builder().loops(1).build()?;
    /// let mut every = netloom::rt::interval(std::time::Duration::from_millis(1));
    /// let first = rt.block_on(every.tick());
    /// # Ok::<(), netloom::Error>(())
    /// ```
    pub async fn tick(&mut self) -> Instant {
        let due = self.next;
        sleep_until(due).await;
        let now = Instant::now();
        self.next = due + self.period;
        if self.next <= now {
            self.next = now + self.period;
        }
        due
    }

    /// The period.
    ///
    /// ```
    /// let every = netloom::rt::interval(std::time::Duration::from_millis(3));
    /// assert_eq!(every.period(), std::time::Duration::from_millis(3));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }
}
