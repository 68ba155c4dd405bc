//! `stop_on_signals`: SIGINT and SIGTERM are blocked while the engine runs
//! (a signalfd on loop 0 reports them) and unblocked again once `wait`
//! returns on the thread that started it, with any stop signal that
//! arrived meanwhile discarded rather than delivered.
//!
//! Alone in its binary: signal masks and pending signals are process state.

mod util;

use netloom::{Engine, Options};
use util::Echo;

/// Whether `signal` is blocked in the calling thread.
fn blocked(signal: libc::c_int) -> bool {
    // SAFETY: sigset_t is plain data; a null new set only reads the mask.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask),
            0
        );
        libc::sigismember(&mask, signal) == 1
    }
}

/// Whether `signal` is pending for the calling thread or the process.
fn pending(signal: libc::c_int) -> bool {
    // SAFETY: sigpending fills a plain sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::sigpending(&mut set), 0);
        libc::sigismember(&set, signal) == 1
    }
}

fn start_with_signals() -> Engine {
    Engine::builder()
        .bind("tcp://127.0.0.1:0")
        .options(Options::default().loops(2).stop_on_signals(true))
        .start(Echo)
        .expect("engine starts")
}

#[test]
fn stop_signals_are_unblocked_after_wait_and_a_late_one_is_discarded() {
    // A fresh thread: its mask is the harness's default, nothing blocked.
    std::thread::spawn(|| {
        assert!(!blocked(libc::SIGINT) && !blocked(libc::SIGTERM));
        let engine = start_with_signals();
        assert!(blocked(libc::SIGINT) && blocked(libc::SIGTERM));
        engine.stop();
        // Aimed at this thread, where it stays pending: the signalfd on
        // loop 0 reads only that loop's and the process's signals.
        // SAFETY: pthread_kill on the calling thread with a blocked signal.
        let sent = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGINT) };
        assert_eq!(sent, 0);
        assert!(pending(libc::SIGINT));
        engine.wait().unwrap();
        // Delivered now, the SIGINT would have killed the test process.
        assert!(!pending(libc::SIGINT));
        assert!(!blocked(libc::SIGINT) && !blocked(libc::SIGTERM));
    })
    .join()
    .unwrap();
}

#[test]
fn a_mask_blocked_before_start_stays_blocked() {
    std::thread::spawn(|| {
        // SAFETY: blocks SIGTERM in this thread only, with a plain sigset_t.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        let engine = start_with_signals();
        engine.stop();
        engine.wait().unwrap();
        assert!(!blocked(libc::SIGINT));
        assert!(blocked(libc::SIGTERM), "the caller's own block is kept");
    })
    .join()
    .unwrap();
}
