//! Tasks: wake-ups from other threads, remote spawns, cancellation leaving
//! no waker behind, aborts, panics, and shutdown with tasks in flight.

mod util;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use netloom::rt::net::{TcpListener, TcpStream};
use netloom::rt::{self, JoinError, Runtime};

/// A one-shot flag set from any thread (a minimal cross-thread channel).
#[derive(Default)]
struct Flag {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Flag {
    fn set(&self) {
        let waker = {
            let mut s = self.state.lock().unwrap();
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> impl Future<Output = ()> {
        let flag = self.clone();
        std::future::poll_fn(move |cx| {
            let mut s = flag.state.lock().unwrap();
            if s.0 {
                Poll::Ready(())
            } else {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

fn runtime(loops: usize) -> Runtime {
    Runtime::builder()
        .loops(loops)
        .shutdown_grace(Duration::from_millis(200))
        .build()
        .unwrap()
}

#[test]
fn tasks_woken_from_other_threads_run_on_their_loop() {
    let rt = runtime(2);
    let flags: Vec<Arc<Flag>> = (0..1000).map(|_| Arc::new(Flag::default())).collect();
    let handles: Vec<_> = flags
        .iter()
        .enumerate()
        .map(|(i, flag)| {
            let flag = flag.clone();
            rt.spawn(async move {
                let before = std::thread::current().id();
                flag.wait().await;
                assert_eq!(std::thread::current().id(), before, "no stealing");
                i
            })
        })
        .collect();
    // Wake them from four plain threads at once.
    std::thread::scope(|s| {
        for chunk in flags.chunks(250) {
            s.spawn(move || {
                for flag in chunk {
                    flag.set();
                }
            });
        }
    });
    let outputs = rt.block_on(async {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    assert_eq!(outputs, (0..1000).collect::<Vec<_>>());
}

#[test]
fn spawns_from_many_threads_all_run() {
    let rt = runtime(2);
    let done = Arc::new(AtomicUsize::new(0));
    let handle = rt.handle();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (handle, done) = (handle.clone(), done.clone());
            s.spawn(move || {
                for _ in 0..500 {
                    let done = done.clone();
                    handle.spawn(async move {
                        rt::sleep(Duration::from_millis(1)).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
    });
    assert!(util::wait_until(Duration::from_secs(30), || done
        .load(Ordering::Relaxed)
        == 2000));
}

#[test]
fn spawn_local_keeps_non_send_tasks_on_the_loop() {
    let rt = runtime(1);
    let out = rt.block_on(async {
        let shared = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut handles = Vec::new();
        for i in 0..10 {
            let shared = shared.clone();
            handles.push(rt::spawn_local(async move {
                rt::sleep(Duration::from_millis(i)).await;
                shared.set(shared.get() + 1);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        shared.get()
    });
    assert_eq!(out, 10);
}

/// Polls `fut` exactly once.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx: &mut Context<'_>| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

#[test]
fn dropping_a_read_future_leaves_no_waker_behind() {
    runtime(1).block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let base = rt::metrics().unwrap();
        assert_eq!(base.parked_waiters, 0);

        let mut buf = [0; 8];
        let mut read = Box::pin(server.read(&mut buf));
        assert!(poll_once(&mut read).await.is_pending());
        assert_eq!(rt::metrics().unwrap().parked_waiters, 1);
        drop(read);
        assert_eq!(rt::metrics().unwrap().parked_waiters, 0);

        // The same through a timeout, and for a write parked on a full buffer.
        let timed = rt::timeout(Duration::from_millis(10), server.read(&mut buf)).await;
        assert!(timed.is_err());
        assert_eq!(rt::metrics().unwrap().parked_waiters, 0);
        let big = vec![0u8; 64 << 20];
        let timed = rt::timeout(Duration::from_millis(50), server.write_all(&big)).await;
        assert!(timed.is_err(), "the client reads nothing");
        assert_eq!(rt::metrics().unwrap().parked_waiters, 0);

        // The connection still works afterwards.
        let mut sleep = Box::pin(rt::sleep(Duration::from_secs(60)));
        assert!(poll_once(&mut sleep).await.is_pending());
        assert_eq!(rt::metrics().unwrap().sleeps, 1);
        drop(sleep);
        assert_eq!(rt::metrics().unwrap().sleeps, 0);
        drop(server);
        let n = client.read(&mut [0; 1 << 16]).await;
        assert!(n.is_ok());
    });
}

#[test]
fn dropped_sockets_release_their_records() {
    runtime(1).block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let before = rt::metrics().unwrap().io_records;
        for _ in 0..50 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let (mut s, _) = listener.accept().await.unwrap();
            c.write_all(b"x").await.unwrap();
            s.read(&mut [0; 1]).await.unwrap();
        }
        // The listener stays registered; every stream has gone.
        assert_eq!(rt::metrics().unwrap().io_records, before.max(1));
    });
}

#[test]
fn a_panicking_task_reports_and_the_loop_keeps_serving() {
    let rt = runtime(1);
    let err = rt.block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
    assert_eq!(err, JoinError::Panicked("boom".into()));
    assert_eq!(rt.block_on(rt.spawn(async { 1 })), Ok(1));
}

/// Panics when dropped, as a buggy destructor does.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("drop boom");
    }
}

#[test]
fn a_destructor_that_panics_as_a_task_finishes_is_the_tasks_panic() {
    let rt = runtime(1);
    // Ready at once; the field drops with the future, after its last poll.
    struct Finished {
        _field: PanicsOnDrop,
    }
    impl Future for Finished {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            Poll::Ready(7)
        }
    }
    let handle = rt.spawn(Finished {
        _field: PanicsOnDrop,
    });
    // As tokio: the output is lost with the future, the handle hears the panic.
    assert_eq!(
        rt.block_on(handle),
        Err(JoinError::Panicked("drop boom".into()))
    );
    assert_eq!(rt.block_on(rt.spawn(async { 1 })), Ok(1));
}

#[test]
fn shutdown_lets_tasks_finish_within_the_grace_then_drops_the_rest() {
    let before_fds = util::open_fds();
    // A grace that tasks due in 20 ms meet even on a stalled machine.
    let rt = Runtime::builder()
        .loops(2)
        .shutdown_grace(Duration::from_secs(2))
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let finishing: Vec<_> = (0..20)
        .map(|i| {
            rt.spawn(async move {
                rt::sleep(Duration::from_millis(20)).await;
                i
            })
        })
        .collect();
    // Tasks blocked on reads that never complete: they hold connections.
    let stuck: Vec<_> = (0..20)
        .map(|_| {
            rt.spawn(async move {
                let mut s = TcpStream::connect(addr).await?;
                s.read(&mut [0; 8]).await
            })
        })
        .collect();
    let accepted: Vec<_> = (0..20).map(|_| listener.accept().unwrap()).collect();
    let start = Instant::now();
    rt.shutdown();
    let took = start.elapsed();
    // The stuck tasks held the shutdown for the grace, and no longer.
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(60),
        "{took:?}"
    );
    let check = Runtime::builder().loops(1).build().unwrap();
    check.block_on(async {
        for (i, h) in finishing.into_iter().enumerate() {
            assert_eq!(h.await, Ok(i));
        }
        for h in stuck {
            assert_eq!(h.await.unwrap_err(), JoinError::Cancelled);
        }
    });
    drop(check);
    // The dropped tasks closed their sockets: the peers see EOF.
    for (mut s, _) in accepted {
        use std::io::Read;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        assert_eq!(s.read(&mut [0; 8]).unwrap(), 0);
    }
    drop(listener);
    assert!(util::wait_until(
        Duration::from_secs(30),
        || util::open_fds() <= before_fds
    ));
}

#[test]
fn stop_fails_pending_accepts_at_once() {
    // "At once": long before a grace that outlasts any stall.
    let rt = Runtime::builder()
        .loops(1)
        .shutdown_grace(Duration::from_secs(120))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let acceptor = rt.spawn(async move { listener.accept().await.map(drop) });
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    rt.stop();
    let check = Runtime::builder().loops(1).build().unwrap();
    let outcome = check.block_on(acceptor).unwrap();
    assert!(outcome.is_err());
    assert!(start.elapsed() < Duration::from_secs(60));
    let handle = rt.handle();
    assert!(handle.is_stopping());
    check.block_on(handle.stopped());
    rt.shutdown();
}

#[test]
fn spawns_after_the_loops_exit_are_cancelled() {
    let rt = runtime(1);
    let handle = rt.handle();
    rt.shutdown();
    let check = Runtime::builder().loops(1).build().unwrap();
    assert_eq!(
        check.block_on(handle.spawn(async { 1 })),
        Err(JoinError::Cancelled)
    );
}

/// Reads from `peer` until EOF or `limit`; true on EOF.
fn sees_eof(peer: &mut std::net::TcpStream, limit: Duration) -> bool {
    use std::io::Read;
    peer.set_read_timeout(Some(limit)).unwrap();
    matches!(peer.read(&mut [0; 8]), Ok(0))
}

#[test]
fn abort_cancels_a_task_parked_on_a_read_and_closes_its_socket() {
    let rt = runtime(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = rt.spawn(async move {
        let mut s = TcpStream::connect(addr).await?;
        s.read(&mut [0; 8]).await
    });
    let (mut peer, _) = listener.accept().unwrap();
    // Let the task park on its read (the peer never sends).
    std::thread::sleep(Duration::from_millis(50));
    assert!(!reader.is_finished());
    reader.abort();
    let outcome = rt.block_on(rt::timeout(Duration::from_secs(30), reader));
    assert!(outcome
        .expect("resolved in time")
        .unwrap_err()
        .is_cancelled());
    assert!(sees_eof(&mut peer, Duration::from_secs(30)), "fd released");
    // The loop keeps serving.
    assert_eq!(rt.block_on(rt.spawn(async { 3 })), Ok(3));
}

#[test]
fn abort_from_another_thread_wakes_the_tasks_loop() {
    let rt = runtime(2);
    let (started, parked) = std::sync::mpsc::channel();
    let handle = rt.spawn(async move {
        started.send(()).unwrap();
        std::future::pending::<()>().await
    });
    let abort = handle.abort_handle();
    let aborter = std::thread::spawn(move || {
        parked.recv_timeout(Duration::from_secs(30)).unwrap();
        abort.abort();
        abort
    });
    let outcome = rt.block_on(rt::timeout(Duration::from_secs(30), handle));
    assert_eq!(
        outcome.expect("resolved in time"),
        Err(JoinError::Cancelled)
    );
    let abort = aborter.join().unwrap();
    assert!(abort.is_finished());
    // An abort handle is cheap to share.
    fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
    shareable(&abort);
}

#[test]
fn abort_after_completion_keeps_the_output() {
    let rt = runtime(1);
    let handle = rt.spawn(async { 5 });
    assert!(util::wait_until(Duration::from_secs(30), || handle.is_finished()));
    handle.abort();
    handle.abort_handle().abort();
    assert_eq!(rt.block_on(handle), Ok(5));
    // A panicked task stays panicked.
    let handle = rt.spawn(async { panic!("late") });
    assert!(util::wait_until(Duration::from_secs(30), || handle.is_finished()));
    handle.abort();
    assert!(rt.block_on(handle).unwrap_err().is_panic());
}

#[test]
fn abort_cancels_a_sleeping_task_and_frees_its_timer() {
    let rt = runtime(1);
    let reached = Arc::new(AtomicUsize::new(0));
    let after = reached.clone();
    rt.block_on(async move {
        let sleeper = rt::spawn_local(async move {
            rt::sleep(Duration::from_secs(60)).await;
            after.fetch_add(1, Ordering::Relaxed);
        });
        rt::sleep(Duration::from_millis(20)).await;
        assert_eq!(rt::metrics().unwrap().sleeps, 1);
        sleeper.abort();
        let outcome = rt::timeout(Duration::from_secs(30), sleeper).await;
        assert_eq!(
            outcome.expect("resolved in time"),
            Err(JoinError::Cancelled)
        );
        let m = rt::metrics().unwrap();
        assert_eq!((m.tasks, m.sleeps), (0, 0));
    });
    assert_eq!(
        reached.load(Ordering::Relaxed),
        0,
        "never ran past the sleep"
    );
}

#[test]
fn abort_before_the_first_poll_never_runs_the_task() {
    let rt = runtime(1);
    let ran = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let counter = ran.clone();
        let handle = rt::spawn_local(async move {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        handle.abort();
        assert!(handle.await.unwrap_err().is_cancelled());
    });
    assert_eq!(ran.load(Ordering::Relaxed), 0);
}
