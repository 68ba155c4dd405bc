//! Socket syscalls whose macOS and FreeBSD form differs from Linux's.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::check;
use crate::sys::unix::socket::{recv_each, send_each};
use crate::{Addr, PeerCred};

/// A non-blocking, close-on-exec socket on which writing to a closed peer
/// fails with `EPIPE` instead of raising SIGPIPE (`SO_NOSIGPIPE`).
pub(crate) fn new_socket(
    domain: Domain,
    ty: Type,
    protocol: Option<Protocol>,
) -> io::Result<Socket> {
    #[cfg(target_os = "freebsd")]
    let socket = {
        let socket = Socket::new(domain, ty.nonblocking().cloexec(), protocol)?;
        set_no_sigpipe(socket.as_raw_fd())?;
        socket
    };
    // macOS has no SOCK_NONBLOCK; socket2 sets close-on-exec and SO_NOSIGPIPE.
    #[cfg(target_os = "macos")]
    let socket = {
        let socket = Socket::new(domain, ty, protocol)?;
        socket.set_nonblocking(true)?;
        socket
    };
    Ok(socket)
}

fn set_no_sigpipe(fd: RawFd) -> io::Result<()> {
    crate::sys::socket::set_int_option(fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)
}

/// Accepts a connection as a non-blocking, close-on-exec socket that does
/// not raise SIGPIPE: `accept4` on FreeBSD, `accept` then `fcntl` on macOS.
/// Works for every stream listener (TCP, Unix).
pub(crate) fn accept(listener: RawFd) -> io::Result<(Socket, Addr)> {
    // SAFETY: `try_init` hands us a zeroed sockaddr_storage and its length to
    // fill; accept(4) writes at most that many bytes.
    let (fd, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            #[cfg(target_os = "freebsd")]
            let fd = libc::accept4(
                listener,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            #[cfg(target_os = "macos")]
            let fd = libc::accept(listener, storage.cast(), len);
            check(fd)
        })
    }?;
    // SAFETY: `fd` is the new connection's descriptor, owned by nobody else.
    let stream = unsafe { Socket::from_raw_fd(fd) };
    #[cfg(target_os = "macos")]
    {
        stream.set_cloexec(true)?;
        stream.set_nonblocking(true)?;
    }
    set_no_sigpipe(stream.as_raw_fd())?;
    Ok((stream, Addr::from_sockaddr(&addr)))
}

/// Who is at the other end of a Unix domain socket: `LOCAL_PEERCRED` on
/// FreeBSD, `getpeereid` and `LOCAL_PEERPID` on macOS.
pub(crate) fn peer_cred(fd: RawFd) -> io::Result<PeerCred> {
    #[cfg(target_os = "freebsd")]
    {
        // SAFETY: xucred is plain C data; all-zero bytes are valid.
        let mut cred: libc::xucred = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xucred>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into the local `cred`.
        check(unsafe {
            libc::getsockopt(
                fd,
                0, // SOL_LOCAL
                libc::LOCAL_PEERCRED,
                (&mut cred as *mut libc::xucred).cast(),
                &mut len,
            )
        })?;
        if cred.cr_version != libc::XUCRED_VERSION || cred.cr_ngroups < 1 {
            return Err(io::Error::other("unexpected LOCAL_PEERCRED answer"));
        }
        Ok(PeerCred {
            // SAFETY: since FreeBSD 13 the kernel fills `cr_pid` (older
            // kernels leave the zeroed union: pid 0).
            pid: unsafe { cred.cr_pid__c_anonymous_union.cr_pid },
            uid: cred.cr_uid,
            gid: cred.cr_groups[0],
        })
    }
    #[cfg(target_os = "macos")]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: getpeereid writes one uid_t and one gid_t into the locals.
        check(unsafe { libc::getpeereid(fd, &mut uid, &mut gid) })?;
        let mut pid: libc::pid_t = 0;
        let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into the local `pid`.
        check(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_LOCAL,
                libc::LOCAL_PEERPID,
                (&mut pid as *mut libc::pid_t).cast(),
                &mut len,
            )
        })?;
        Ok(PeerCred { pid, uid, gid })
    }
}

/// Abstract Unix socket names exist on Linux only.
pub(crate) fn abstract_name(_addr: &SockAddr) -> Option<&[u8]> {
    None
}

/// Pins the calling thread to one CPU (FreeBSD's `cpuset_setaffinity`;
/// macOS has no pinning, which `Options` refuses at start-up).
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    #[cfg(target_os = "freebsd")]
    // SAFETY: cpuset_t is plain data; CPU_ZERO/CPU_SET only touch that value,
    // and cpuset_setaffinity reads `size_of::<cpuset_t>()` bytes from it.
    unsafe {
        let mut set: libc::cpuset_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        check(libc::cpuset_setaffinity(
            libc::CPU_LEVEL_WHICH,
            libc::CPU_WHICH_TID,
            -1,
            std::mem::size_of::<libc::cpuset_t>(),
            &set,
        ))?;
        Ok(())
    }
    #[cfg(target_os = "macos")]
    {
        let _ = cpu;
        Err(unsupported())
    }
}

/// The kernel's listen backlog limit (`kern.ipc.somaxconn`), 128 if unreadable.
pub(crate) fn somaxconn() -> i32 {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>();
    // SAFETY: the name is NUL-terminated; sysctlbyname writes at most `len`
    // bytes into the local `value` and reads no new value (null, 0).
    let rc = unsafe {
        libc::sysctlbyname(
            c"kern.ipc.somaxconn".as_ptr(),
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc == 0 && value > 0 {
        value
    } else {
        128
    }
}

/// Several sockets on one address: FreeBSD's `SO_REUSEPORT_LB` balances
/// connections and datagrams among them; macOS's `SO_REUSEPORT` does not (so
/// TCP listeners there use the acceptor).
pub(crate) fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    #[cfg(target_os = "freebsd")]
    return socket.set_reuse_port_lb(true);
    #[cfg(target_os = "macos")]
    return socket.set_reuse_port(true);
}

/// Traffic only through the interface `name`: macOS's `IP_BOUND_IF` /
/// `IPV6_BOUND_IF`. FreeBSD has none, which `Options` refuses at start-up.
pub(crate) fn bind_device(socket: &Socket, name: &str, ipv6: bool) -> io::Result<()> {
    #[cfg(target_os = "macos")]
    {
        let name = std::ffi::CString::new(name)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `name` is a live NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        let index = std::num::NonZeroU32::new(index).ok_or_else(io::Error::last_os_error)?;
        if ipv6 {
            socket.bind_device_by_index_v6(Some(index))
        } else {
            socket.bind_device_by_index_v4(Some(index))
        }
    }
    #[cfg(target_os = "freebsd")]
    {
        let _ = (socket, name, ipv6);
        Err(unsupported())
    }
}

/// `TCP_DEFER_ACCEPT` is Linux's; `Options` refuses it at start-up here.
pub(crate) fn set_defer_accept(_socket: &Socket, _secs: i32) -> io::Result<()> {
    Err(unsupported())
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("not supported on {}", crate::sys::PLATFORM),
    )
}

/// The BSD kernels do not report a truncated datagram's real length.
pub(crate) const RECV_REAL_LENGTH: libc::c_int = 0;

/// `struct mmsghdr` as Linux and FreeBSD define it (macOS has none): a
/// message header and the length received or sent.
#[repr(C)]
pub(crate) struct MmsgHdr {
    pub(crate) msg_hdr: libc::msghdr,
    pub(crate) msg_len: libc::c_uint,
}

/// Up to `hdrs.len()` datagrams, one `recvmsg` each: what FreeBSD's
/// `recvmmsg` does in its libc anyway, and all macOS offers.
///
/// # Safety
/// Every header must point at its own live iovec and address storage.
pub(crate) unsafe fn recv_batch(
    fd: RawFd,
    hdrs: &mut [MmsgHdr],
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: the caller's guarantee, passed on.
    unsafe { recv_each(fd, hdrs, flags) }
}

/// Up to `hdrs.len()` datagrams, one `sendmsg` each (as FreeBSD's libc
/// `sendmmsg` does).
///
/// # Safety
/// Every header must point at a live address and iovec.
pub(crate) unsafe fn send_batch(fd: RawFd, hdrs: &mut [MmsgHdr]) -> io::Result<usize> {
    // SAFETY: the caller's guarantee, passed on.
    unsafe { send_each(fd, hdrs) }
}
