//! Socket syscalls whose Linux form differs from the other platforms'.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::check;
use crate::{Addr, PeerCred};

/// A non-blocking, close-on-exec socket in one syscall. (Linux has no
/// per-socket SIGPIPE switch; Rust programs ignore SIGPIPE, so a write to a
/// closed peer fails with `EPIPE`.)
pub(crate) fn new_socket(
    domain: Domain,
    ty: Type,
    protocol: Option<Protocol>,
) -> io::Result<Socket> {
    Socket::new(domain, ty.nonblocking().cloexec(), protocol)
}

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

/// The name of a Unix address in the abstract namespace, if it is one.
pub(crate) fn abstract_name(addr: &SockAddr) -> Option<&[u8]> {
    addr.as_abstract_namespace()
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

/// `SO_REUSEPORT`: the kernel balances connections and datagrams among the
/// sockets bound to one address.
pub(crate) fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

/// `SO_BINDTODEVICE`: traffic only through the interface `name`.
pub(crate) fn bind_device(socket: &Socket, name: &str, _ipv6: bool) -> io::Result<()> {
    socket.bind_device(Some(name.as_bytes()))
}

/// `TCP_DEFER_ACCEPT`: a connection is accepted only once data arrived, or
/// after `secs` seconds.
pub(crate) fn set_defer_accept(socket: &Socket, secs: i32) -> io::Result<()> {
    crate::sys::socket::set_int_option(
        socket.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        secs,
    )
}

/// `MSG_TRUNC` on receive: the kernel reports a datagram's real length even
/// when the buffer was too small for it.
pub(crate) const RECV_REAL_LENGTH: libc::c_int = libc::MSG_TRUNC;

/// The datagram header of `recvmmsg`/`sendmmsg`.
pub(crate) type MmsgHdr = libc::mmsghdr;

/// `recvmmsg`: receives up to `hdrs.len()` datagrams in one syscall.
///
/// # Safety
/// Every header must point at its own live iovec and address storage.
pub(crate) unsafe fn recv_batch(
    fd: RawFd,
    hdrs: &mut [MmsgHdr],
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: the caller guarantees every header points at its own live
    // iovec and address storage; the kernel writes within them.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            hdrs.len() as libc::c_uint,
            flags,
            std::ptr::null_mut(),
        )
    };
    check(n).map(|n| n as usize)
}

/// `sendmmsg`: sends up to `hdrs.len()` datagrams in one syscall.
///
/// # Safety
/// Every header must point at a live address and iovec.
pub(crate) unsafe fn send_batch(fd: RawFd, hdrs: &mut [MmsgHdr]) -> io::Result<usize> {
    // SAFETY: the caller guarantees every header points at a live address
    // and iovec; the kernel only reads them (and writes `msg_len`).
    let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as libc::c_uint, 0) };
    check(n).map(|n| n as usize)
}
