//! The backend an engine or a runtime is asked for is the one its loops
//! wait on (seen in `/proc/self/fd`: an io_uring ring or an epoll
//! instance), both carry byte-exact traffic, and stopping releases every
//! descriptor. One test: descriptor counts are per process.

#![cfg(target_os = "linux")]

mod util;

use std::io::Read;
use std::time::Duration;

use netloom::rt::net::TcpListener;
use netloom::{rt, Backend, Options};
use util::{connect, echo_roundtrip, open_fds, pattern, start, stop, wait_until, Echo};

/// How many of this process's descriptors are anonymous inodes of `kind`
/// (`io_uring`, `eventpoll`).
fn anon_inodes(kind: &str) -> usize {
    let wanted = format!("anon_inode:[{kind}]");
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy() == wanted)
        .count()
}

/// (rings, epoll descriptors) one loop of `backend` holds; an engine's
/// loop hosts an executor, which registers through a second handle: the same
/// ring, a duplicated epoll descriptor.
fn poller_of(backend: Backend, hosts_executor: bool) -> (usize, usize) {
    match backend {
        Backend::IoUring => (1, 0),
        _ if hosts_executor => (0, 2),
        _ => (0, 1),
    }
}

#[test]
fn each_backend_serves_and_releases_its_descriptors() {
    let baseline = open_fds();
    let (rings, epolls) = (anon_inodes("io_uring"), anon_inodes("eventpoll"));
    for backend in [Backend::Epoll, Backend::IoUring] {
        let (ring, epoll) = poller_of(backend, true);

        // The callback engine, two loops.
        let (engine, addr) = start(Echo, Options::default().loops(2).backend(backend));
        assert_eq!(anon_inodes("io_uring"), rings + 2 * ring, "{backend:?}");
        assert_eq!(anon_inodes("eventpoll"), epolls + 2 * epoll, "{backend:?}");
        let mut streams: Vec<_> = (0..4).map(|_| connect(addr)).collect();
        for (i, stream) in streams.iter().enumerate() {
            echo_roundtrip(stream, &pattern(i as u64, 256 * 1024));
        }
        // Two connections stay open, their polls armed, while the engine
        // stops: it closes them, and no armed request keeps a socket open.
        streams.truncate(2);
        assert!(wait_until(Duration::from_secs(10), || engine.conn_count() == 2));
        stop(engine);
        for mut stream in &streams {
            let mut byte = [0u8; 1];
            assert_eq!(
                stream.read(&mut byte).unwrap(),
                0,
                "{backend:?}: EOF at stop"
            );
        }
        drop(streams);
        assert!(
            wait_until(Duration::from_secs(10), || open_fds() == baseline),
            "{backend:?}: {} descriptors, {baseline} before",
            open_fds()
        );

        // The async front-end: a runtime loop and block_on's own poller.
        let runtime = rt::Runtime::builder()
            .loops(1)
            .backend(backend)
            .build()
            .unwrap();
        let listener = runtime
            .block_on(async { TcpListener::bind("127.0.0.1:0") })
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = runtime.spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                stream.write_all(&buf[..n]).await?;
            }
        });
        let client = std::thread::spawn(move || {
            let stream = connect(addr);
            echo_roundtrip(&stream, &pattern(9, 1024 * 1024));
        });
        client.join().unwrap();
        runtime.block_on(server).unwrap().unwrap();
        let (ring, epoll) = poller_of(backend, false);
        assert_eq!(anon_inodes("io_uring"), rings + ring, "{backend:?} runtime");
        assert_eq!(
            anon_inodes("eventpoll"),
            epolls + epoll,
            "{backend:?} runtime"
        );
        runtime.shutdown();
        assert!(
            wait_until(Duration::from_secs(10), || open_fds() == baseline),
            "{backend:?} runtime: {} descriptors, {baseline} before",
            open_fds()
        );
    }
}
