//! Socket syscalls std and socket2 do not expose in the form the loops need.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};

use socket2::{SockAddr, Socket};

use super::{check, check_size};
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

/// A fresh non-blocking, close-on-exec TCP socket for `addr`'s family, to be
/// connected by a loop.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<Socket> {
    Socket::new(
        socket2::Domain::for_address(*addr),
        socket2::Type::STREAM.nonblocking().cloexec(),
        Some(socket2::Protocol::TCP),
    )
}

/// A fresh non-blocking stream socket to connect to `addr`: TCP for an
/// internet address, a Unix domain socket otherwise.
pub(crate) fn stream_socket(addr: &Addr) -> io::Result<Socket> {
    match addr {
        Addr::Inet(inet) => tcp_socket(inet),
        Addr::Unix(_) => Socket::new(
            socket2::Domain::UNIX,
            socket2::Type::STREAM.nonblocking().cloexec(),
            None,
        ),
    }
}

/// `recv(MSG_PEEK)`: reads without consuming, on any socket type.
pub(crate) fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which the kernel writes
    // at most `buf.len()` bytes into.
    check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) })
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

/// True for accept errors that concern one connection or one call, not the
/// listener: the peer gave up before it was accepted (`ECONNABORTED`,
/// `EPROTO`), a firewall rule refused it (`EPERM`), a signal interrupted the
/// call (`EINTR`). The next accept may well succeed: try it at once.
pub(crate) fn is_transient_accept_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR)
    )
}

/// True for accept errors caused by running out of descriptors or memory:
/// the listener stays readable, so retrying at once would spin.
pub(crate) fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Reusable `recvmmsg` state: a header, an iovec and a source address per
/// slot. Datagram `i` lands in slot `i` of the caller's buffer.
pub(crate) struct RecvSlots {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
}

/// One datagram taken by [`RecvSlots::recv`].
pub(crate) struct Received {
    pub(crate) from: Option<SocketAddr>,
    /// Bytes in the slot.
    pub(crate) len: usize,
    /// The datagram's real length when it was longer than the slot.
    pub(crate) truncated_from: Option<usize>,
}

impl RecvSlots {
    /// `slots` datagrams per call; 1 uses plain `recvmsg`.
    pub(crate) fn new(slots: usize) -> RecvSlots {
        RecvSlots {
            // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C structs
            // for which all-zero bytes (null pointers, zero lengths) are valid.
            hdrs: (0..slots).map(|_| unsafe { std::mem::zeroed() }).collect(),
            // SAFETY: as above.
            iovs: (0..slots).map(|_| unsafe { std::mem::zeroed() }).collect(),
            // SAFETY: as above.
            names: (0..slots).map(|_| unsafe { std::mem::zeroed() }).collect(),
        }
    }

    /// Receives the datagrams waiting on `fd`, at most one per slot, without
    /// blocking: datagram `i` goes to `buf[i * slot_len..][..slot_len]`.
    /// Returns how many arrived (`WouldBlock` when none).
    pub(crate) fn recv(&mut self, fd: RawFd, buf: &mut [u8], slot_len: usize) -> io::Result<usize> {
        let slots = self.hdrs.len();
        assert!(buf.len() >= slots * slot_len, "receive buffer too small");
        for i in 0..slots {
            self.iovs[i] = libc::iovec {
                iov_base: buf[i * slot_len..].as_mut_ptr().cast(),
                iov_len: slot_len,
            };
            let hdr = &mut self.hdrs[i];
            hdr.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            hdr.msg_hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
        // MSG_TRUNC makes the kernel report a datagram's real length even
        // when the slot was too small for it.
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
        if slots == 1 {
            // SAFETY: the header points at live iovec and address storage set
            // up above; the iovec covers `slot_len` bytes of `buf`.
            let n = check_size(unsafe { libc::recvmsg(fd, &mut self.hdrs[0].msg_hdr, flags) })?;
            self.hdrs[0].msg_len = n as u32;
            return Ok(1);
        }
        // SAFETY: `slots` headers, each pointing at its own live iovec (into
        // distinct `slot_len` ranges of `buf`) and address storage.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                slots as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        check(n).map(|n| n as usize)
    }

    /// Datagram `i` of the last [`RecvSlots::recv`].
    pub(crate) fn received(&self, i: usize, slot_len: usize) -> Received {
        let hdr = &self.hdrs[i];
        let real = hdr.msg_len as usize;
        // SAFETY: the kernel filled `names[i]` and set `msg_namelen` to the
        // length of what it wrote.
        let from = unsafe { SockAddr::new(self.names[i], hdr.msg_hdr.msg_namelen) }.as_socket();
        let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        Received {
            from,
            len: real.min(slot_len),
            truncated_from: truncated.then_some(real),
        }
    }
}

/// Reusable `sendmmsg` state.
pub(crate) struct SendSlots {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<SockAddr>,
    slots: usize,
}

impl SendSlots {
    /// At most `slots` datagrams per call; 1 uses plain `sendmsg`.
    pub(crate) fn new(slots: usize) -> SendSlots {
        SendSlots {
            hdrs: Vec::new(),
            iovs: Vec::new(),
            names: Vec::new(),
            slots,
        }
    }

    /// Sends up to `slots` of `datagrams` with one syscall; returns how many
    /// the kernel took. An error concerns the first datagram.
    pub(crate) fn send<'a>(
        &mut self,
        fd: RawFd,
        datagrams: impl Iterator<Item = (SocketAddr, &'a [u8])>,
    ) -> io::Result<usize> {
        self.names.clear();
        self.iovs.clear();
        self.hdrs.clear();
        for (to, data) in datagrams.take(self.slots) {
            self.names.push(SockAddr::from(to));
            self.iovs.push(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
        }
        // Headers last: `names` and `iovs` no longer move.
        for (name, iov) in self.names.iter().zip(&mut self.iovs) {
            // SAFETY: all-zero bytes are a valid mmsghdr.
            let mut hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
            hdr.msg_hdr.msg_name = name.as_ptr() as *mut libc::c_void;
            hdr.msg_hdr.msg_namelen = name.len();
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(hdr);
        }
        match self.hdrs.len() {
            0 => Ok(0),
            1 => {
                // SAFETY: the header points at a live address and iovec, and
                // the iovec at the caller's datagram; the kernel only reads them.
                check_size(unsafe { libc::sendmsg(fd, &self.hdrs[0].msg_hdr, 0) }).map(|_| 1)
            }
            n => {
                // SAFETY: as above, for each of the `n` headers.
                let sent =
                    unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
                check(sent).map(|n| n as usize)
            }
        }
    }
}

/// `IP_MULTICAST_IF` by interface index (socket2 takes only an address).
pub(crate) fn set_multicast_if_index_v4(fd: RawFd, index: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: index as libc::c_int,
    };
    // SAFETY: setsockopt reads `size_of::<ip_mreqn>()` bytes from the local value.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&mreqn as *const libc::ip_mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `setsockopt` of an `int` option socket2 has no setter for
/// (`TCP_FASTOPEN`, `TCP_DEFER_ACCEPT`).
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from the local value.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_retried_paused_or_reported() {
        let os = io::Error::from_raw_os_error;
        for code in [libc::ECONNABORTED, libc::EPROTO, libc::EPERM, libc::EINTR] {
            assert!(is_transient_accept_error(&os(code)), "{code}");
            assert!(!is_resource_exhaustion(&os(code)), "{code}");
        }
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_resource_exhaustion(&os(code)), "{code}");
            assert!(!is_transient_accept_error(&os(code)), "{code}");
        }
        for code in [libc::EBADF, libc::EINVAL, libc::EAGAIN] {
            assert!(!is_transient_accept_error(&os(code)), "{code}");
        }
    }
}
