//! 9,000 concurrent tasks, each holding a connection, client and server in
//! one process (18,000 sockets: the soft open-file limit is raised to the
//! hard 20,000, so this test has a binary of its own).

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use netloom::rt::net::{TcpListener, TcpStream};
use netloom::rt::{self, Runtime};

const CONNS: usize = 9_000;

/// Opens once every client is connected; woken from whichever loop
/// connects the last one.
#[derive(Default)]
struct Gate {
    open: Mutex<(bool, Vec<Waker>)>,
}

impl Gate {
    fn open(&self) {
        let waiters = {
            let mut g = self.open.lock().unwrap();
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        waiters.into_iter().for_each(Waker::wake);
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut g = self.open.lock().unwrap();
            if g.0 {
                Poll::Ready(())
            } else {
                g.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[test]
fn nine_thousand_tasks_each_hold_a_connection() {
    let limit = util::raise_fd_limit();
    assert!(limit >= 2 * CONNS as u64 + 500, "fd limit {limit} too low");
    let rt = Runtime::builder()
        .loops(2)
        .shutdown_grace(Duration::from_secs(2))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = Arc::new(AtomicUsize::new(0));
    let served = serving.clone();
    rt.spawn_on(0, async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let served = served.clone();
            rt::spawn(async move {
                served.fetch_add(1, Ordering::Relaxed);
                let mut buf = [0u8; 256];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            });
        }
    });

    let gate = Arc::new(Gate::default());
    let connected = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let (gate, connected) = (gate.clone(), connected.clone());
            rt.spawn(async move {
                let mut stream = loop {
                    // A burst of connects can overflow the backlog: retry.
                    match rt::timeout(Duration::from_secs(30), TcpStream::connect(addr)).await {
                        Ok(Ok(s)) => break s,
                        _ => rt::sleep(Duration::from_millis(10)).await,
                    }
                };
                if connected.fetch_add(1, Ordering::AcqRel) + 1 == CONNS {
                    gate.open();
                }
                // Every connection is open at once before any traffic.
                gate.wait().await;
                let data = util::pattern(i as u64, 64);
                stream.write_all(&data).await?;
                let mut got = [0u8; 64];
                let mut n = 0;
                while n < got.len() {
                    let m = stream.read(&mut got[n..]).await?;
                    if m == 0 {
                        return Ok(false);
                    }
                    n += m;
                }
                Ok::<_, std::io::Error>(got[..] == data[..])
            })
        })
        .collect();

    let all_exact = rt.block_on(async {
        let mut exact = 0;
        for c in clients {
            if rt::timeout(Duration::from_secs(60), c)
                .await
                .expect("client finishes")
                .expect("client task")
                .expect("client i/o")
            {
                exact += 1;
            }
        }
        exact
    });
    assert_eq!(all_exact, CONNS);
    assert_eq!(serving.load(Ordering::Relaxed), CONNS);
    rt.shutdown();
}
