//! Socket syscalls std and socket2 do not expose in the form the loops need.

use std::io;
use std::os::fd::{FromRawFd, RawFd};

use socket2::{SockAddr, Socket};

use super::check;
use crate::{Addr, PeerCred};

/// `accept4(NONBLOCK | CLOEXEC)`: one syscall per connection instead of three.
/// Works for every stream listener (TCP, Unix).
pub(crate) fn accept(listener: RawFd) -> io::Result<(Socket, Addr)> {
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
    let stream = unsafe { Socket::from_raw_fd(fd) };
    Ok((stream, Addr::from_sockaddr(&addr)))
}

/// `SO_PEERCRED`: who is at the other end of a Unix domain socket.
pub(crate) fn peer_cred(fd: RawFd) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the local `cred`.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
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
