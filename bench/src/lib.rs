//! Shared pieces of the benchmark suite: flag parsing, the latency histogram,
//! `/proc` readers, a system-call counter and the tokio runtime the peers
//! run on.

pub mod flags;
pub mod hist;
pub mod procfs;
pub mod syscalls;
pub mod tls;

/// Builds the tokio runtime a peer runs on: `threads == 0` is the
/// current-thread scheduler (everything on the calling thread), otherwise the
/// multi-thread scheduler with that many workers.
pub fn tokio_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .enable_time()
            .build()
    }
}

/// Raises the soft open-file limit to the hard one (the idle-connection
/// scenario holds 9,000 sockets on each side); returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}
