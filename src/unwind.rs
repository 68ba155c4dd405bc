//! Living with panics in user code, one policy for the whole crate.
//!
//! Callbacks, tasks and pool jobs run under `catch_unwind`; a panic becomes
//! a message ([`panic_message`]) for a log line or an error. Locks never
//! turn such a panic into a second one: every mutex is taken with [`lock`]
//! (and waited on with [`wait`] / [`wait_timeout`]), which takes the data of
//! a poisoned mutex as it is. Netloom's own critical sections do not run
//! user code, so a poisoned lock never guards a half-made change.

use std::any::Any;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The message of a panic's payload (`panic!` gives `&str` or `String`).
/// Pass the payload itself (`&*boxed`), not the `Box`, which is an `Any` too.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Locks `mutex`, poisoned or not.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar`, poisoned or not.
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` for at most `limit`, poisoned or not.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    limit: Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, limit)
        .unwrap_or_else(PoisonError::into_inner)
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic;

    #[test]
    fn panic_message_handles_str_string_and_other_payloads() {
        let message = |f: fn()| panic_message(&*panic::catch_unwind(f).unwrap_err());
        assert_eq!(message(|| panic!("static")), "static");
        assert_eq!(message(|| panic!("formatted {}", 7)), "formatted 7");
        assert_eq!(
            message(|| panic::panic_any(7_u8)),
            "non-string panic payload"
        );
    }

    #[test]
    fn a_poisoned_mutex_is_still_locked_and_waited_on() {
        let mutex = Mutex::new(1);
        let poisoned = panic::catch_unwind(|| {
            let mut guard = mutex.lock().unwrap();
            *guard = 2;
            panic!("while holding the lock");
        });
        assert!(poisoned.is_err() && mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 2);
        let condvar = Condvar::new();
        let guard = wait_timeout(&condvar, lock(&mutex), Duration::from_millis(1));
        assert_eq!(*guard, 2);
    }
}
