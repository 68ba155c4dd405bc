//! Socket syscalls std and socket2 do not expose in the form the loops need.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, RawFd};

use socket2::SockAddr;

use super::check;

/// `accept4(NONBLOCK | CLOEXEC)`: one syscall per connection instead of three.
pub(crate) fn accept(listener: RawFd) -> io::Result<(TcpStream, SocketAddr)> {
    // SAFETY: `try_init` hands us a zeroed sockaddr_storage and its length to
    // fill; accept4 writes at most that many bytes.
    let (fd, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let fd = check(libc::accept4(
                listener,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            ))?;
            Ok(fd)
        })
    }?;
    // SAFETY: `fd` is the new connection's descriptor, owned by nobody else.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // An accepted TCP socket always has an inet address; fall back to the
    // socket's own view if the kernel handed back something unexpected.
    let peer = match addr.as_socket() {
        Some(a) => a,
        None => stream.peer_addr()?,
    };
    Ok((stream, peer))
}

/// A fresh non-blocking, close-on-exec TCP socket for `addr`'s family, to be
/// connected by a loop.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(*addr),
        socket2::Type::STREAM.nonblocking().cloexec(),
        Some(socket2::Protocol::TCP),
    )?;
    Ok(socket.into())
}

/// Pins the calling thread to one CPU.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only touch that value,
    // and sched_setaffinity reads `size_of::<cpu_set_t>()` bytes from it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        check(libc::sched_setaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        ))?;
    }
    Ok(())
}

/// The kernel's listen backlog limit (`net.core.somaxconn`), 4096 if unreadable.
pub(crate) fn somaxconn() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// True for accept errors caused by running out of descriptors or memory:
/// the listener stays readable, so retrying at once would spin.
pub(crate) fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
