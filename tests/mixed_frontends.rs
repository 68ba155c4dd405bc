//! The callback engine and the async front-end on the same loops: tasks
//! spawned from callbacks, tasks using async sockets against the engine's own
//! listener, and one graceful stop for both.

mod util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use netloom::rt::{self, net::TcpStream, JoinError};
use netloom::{Action, Conn, Options};
use util::{connect, pattern, start, stop, Echo};

/// Answers each message after a short async sleep, from a task the
/// callback spawns on its own loop; records the threads both ran on.
#[derive(Default)]
struct DelayedEcho {
    mismatched_threads: Arc<AtomicUsize>,
    tasks_run: Arc<AtomicUsize>,
}

impl netloom::Handler for DelayedEcho {
    type Context = ();

    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        let data = conn.next(usize::MAX).to_vec();
        let handle = conn.handle();
        let callback_thread = std::thread::current().id();
        let (mismatched, run) = (self.mismatched_threads.clone(), self.tasks_run.clone());
        // Not `Send`: proves the task stays on this loop.
        let here = std::rc::Rc::new(callback_thread);
        rt::spawn_local(async move {
            rt::sleep(Duration::from_millis(5)).await;
            if *here != std::thread::current().id() {
                mismatched.fetch_add(1, Ordering::SeqCst);
            }
            run.fetch_add(1, Ordering::SeqCst);
            let _ = handle.async_write(data);
        });
        Action::None
    }
}

#[test]
fn callbacks_spawn_tasks_on_their_own_loop() {
    let handler = DelayedEcho::default();
    let (mismatched, run) = (
        handler.mismatched_threads.clone(),
        handler.tasks_run.clone(),
    );
    let (engine, addr) = start(handler, Options::default().loops(2));
    let clients: Vec<_> = (0..20)
        .map(|c| {
            std::thread::spawn(move || {
                let stream = connect(addr);
                for m in 0..25u64 {
                    let data = pattern(c * 1000 + m, 1 + (m as usize * 97) % 3000);
                    util::echo_roundtrip(&stream, &data);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client ok");
    }
    assert_eq!(run.load(Ordering::SeqCst), 20 * 25);
    assert_eq!(mismatched.load(Ordering::SeqCst), 0);
    stop(engine);
}

#[test]
fn engine_runtime_tasks_use_async_sockets_beside_callback_connections() {
    let (engine, addr) = start(Echo, Options::default().loops(2));
    let runtime = engine.runtime();
    assert_eq!(runtime.loops(), 2);
    let loop_threads = Arc::new(Mutex::new(Vec::<ThreadId>::new()));
    let tasks: Vec<_> = (0..10u64)
        .map(|i| {
            let threads = loop_threads.clone();
            runtime.spawn_on(i as usize, async move {
                threads.lock().unwrap().push(std::thread::current().id());
                let mut stream = TcpStream::connect(addr).await?;
                let data = pattern(i, 256 * 1024);
                let (mut reader, mut writer) = stream.split();
                let write = async {
                    writer.write_all(&data).await?;
                    Ok::<_, std::io::Error>(())
                };
                let read = async {
                    let mut back = vec![0; data.len()];
                    let mut got = 0;
                    while got < back.len() {
                        match reader.read(&mut back[got..]).await? {
                            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                            n => got += n,
                        }
                    }
                    Ok::<_, std::io::Error>(back)
                };
                let (w, back) = join(write, read).await;
                w?;
                Ok::<_, std::io::Error>(back? == data)
            })
        })
        .collect();
    let outcomes = runtime.block_on(async {
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await);
        }
        all
    });
    for (i, outcome) in outcomes.into_iter().enumerate() {
        assert!(
            matches!(outcome, Ok(Ok(true))),
            "task {i}: {outcome:?} (false: bytes differ)"
        );
    }
    let mut threads = loop_threads.lock().unwrap().clone();
    threads.sort_by_key(|t| format!("{t:?}"));
    threads.dedup();
    assert_eq!(threads.len(), 2, "tasks ran on both loops");
    assert!(!threads.contains(&std::thread::current().id()));
    stop(engine);
}

#[test]
fn engine_stop_gives_tasks_the_grace_period_then_cancels_them() {
    let options = Options::default()
        .loops(1)
        .shutdown_grace(Duration::from_secs(3));
    let (engine, _) = start(Echo, options);
    let runtime = engine.runtime();
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let short = runtime.spawn(async move {
        rt::sleep(Duration::from_millis(50)).await;
        done.store(true, Ordering::SeqCst);
    });
    let long = runtime.spawn(rt::sleep(Duration::from_secs(600)));
    let began = Instant::now();
    engine.stop();
    engine.wait().expect("clean stop");
    let took = began.elapsed();
    assert!(finished.load(Ordering::SeqCst), "the short task finished");
    // Cancelled after the grace, not after its sleep.
    assert!(took < Duration::from_secs(60), "stop took {took:?}");
    let (short, long) = std::thread::spawn(move || {
        let rt = rt::Runtime::builder().loops(1).build().unwrap();
        rt.block_on(async { (short.await, long.await) })
    })
    .join()
    .unwrap();
    assert_eq!(short, Ok(()));
    assert_eq!(long, Err(JoinError::Cancelled));
}

#[test]
fn a_task_stopping_the_runtime_stops_the_engine() {
    let (engine, addr) = start(Echo, Options::default().loops(2));
    let stream = connect(addr);
    util::echo_roundtrip(&stream, b"still served");
    engine.runtime().spawn(async {
        rt::sleep(Duration::from_millis(20)).await;
        rt::Handle::current().stop();
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(engine.wait()));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the engine stops within 10 s")
        .expect("clean stop");
}

/// Polls two futures together on the current task.
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(move |cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
