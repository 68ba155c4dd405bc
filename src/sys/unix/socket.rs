//! Socket syscalls std and socket2 do not expose in the form the loops need,
//! written once for every Unix; what differs per OS is in `linux/socket.rs`
//! and `bsd/socket.rs`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{check, check_size};
use crate::sys::os::socket::{new_socket, recv_batch, send_batch, MmsgHdr, RECV_REAL_LENGTH};
use crate::Addr;

/// A fresh non-blocking, close-on-exec TCP socket for `addr`'s family, to be
/// connected by a loop.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<Socket> {
    new_socket(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )
}

/// A fresh non-blocking stream socket to connect to `addr`: TCP for an
/// internet address, a Unix domain socket otherwise.
pub(crate) fn stream_socket(addr: &Addr) -> io::Result<Socket> {
    match addr {
        Addr::Inet(inet) => tcp_socket(inet),
        Addr::Unix(_) => new_socket(Domain::UNIX, Type::STREAM, None),
    }
}

/// `recv(MSG_PEEK)`: reads without consuming, on any socket type.
pub(crate) fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which the kernel writes
    // at most `buf.len()` bytes into.
    check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) })
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
    hdrs: Vec<MmsgHdr>,
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
        self.point_at(buf, slot_len);
        let flags = libc::MSG_DONTWAIT | RECV_REAL_LENGTH;
        if self.hdrs.len() == 1 {
            // SAFETY: each header points at its own live iovec (into distinct
            // `slot_len` ranges of `buf`) and address storage, set up above.
            return unsafe { recv_each(fd, &mut self.hdrs, flags) };
        }
        // SAFETY: as above.
        unsafe { recv_batch(fd, &mut self.hdrs, flags) }
    }

    /// Points slot `i`'s header at `buf[i * slot_len..][..slot_len]` and at
    /// its address storage.
    fn point_at(&mut self, buf: &mut [u8], slot_len: usize) {
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
    }

    /// Datagram `i` of the last [`RecvSlots::recv`]. Where the kernel does
    /// not report a truncated datagram's real length (macOS, FreeBSD),
    /// `truncated_from` is the length that was kept.
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
    hdrs: Vec<MmsgHdr>,
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
        self.point_at(datagrams);
        match self.hdrs.len() {
            0 => Ok(0),
            // SAFETY: the header points at a live address in `names` and an
            // iovec in `iovs`, and the iovec at the caller's datagram.
            1 => unsafe { send_each(fd, &mut self.hdrs) },
            // SAFETY: as above, for each header.
            _ => unsafe { send_batch(fd, &mut self.hdrs) },
        }
    }

    /// Sets up a header for each of the first `slots` datagrams.
    fn point_at<'a>(&mut self, datagrams: impl Iterator<Item = (SocketAddr, &'a [u8])>) {
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
            let mut hdr: MmsgHdr = unsafe { std::mem::zeroed() };
            hdr.msg_hdr.msg_name = name.as_ptr() as *mut libc::c_void;
            hdr.msg_hdr.msg_namelen = name.len();
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(hdr);
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

/// `recvmmsg`'s contract from one `recvmsg` per header, for a single slot and
/// for kernels without `recvmmsg`: stops at the first error, which is
/// returned only when no datagram arrived (a later call sees it again).
///
/// # Safety
/// Every header must point at its own live iovec and address storage.
pub(crate) unsafe fn recv_each(
    fd: RawFd,
    hdrs: &mut [MmsgHdr],
    flags: libc::c_int,
) -> io::Result<usize> {
    for (i, hdr) in hdrs.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the header points at live iovec and
        // address storage; recvmsg writes within them.
        match check_size(unsafe { libc::recvmsg(fd, &mut hdr.msg_hdr, flags) }) {
            Ok(n) => hdr.msg_len = n as _,
            Err(e) if i == 0 => return Err(e),
            Err(_) => return Ok(i),
        }
    }
    Ok(hdrs.len())
}

/// `sendmmsg`'s contract from one `sendmsg` per header: returns how many
/// were sent; an error is returned only when the first one failed.
///
/// # Safety
/// Every header must point at a live address and iovec.
pub(crate) unsafe fn send_each(fd: RawFd, hdrs: &mut [MmsgHdr]) -> io::Result<usize> {
    for (i, hdr) in hdrs.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the header points at a live address
        // and iovec; sendmsg only reads them.
        match check_size(unsafe { libc::sendmsg(fd, &hdr.msg_hdr, 0) }) {
            Ok(n) => hdr.msg_len = n as _,
            Err(e) if i == 0 => return Err(e),
            Err(_) => return Ok(i),
        }
    }
    Ok(hdrs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

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

    #[test]
    fn one_syscall_per_datagram_keeps_the_batch_contract() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Blocking with a timeout: a receive past the last datagram fails
        // (EAGAIN) after 200 ms instead of racing the datagrams in flight.
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let to = rx.local_addr().unwrap();
        let wrong_family: SocketAddr = "[::1]:9".parse().unwrap();
        let mut send = SendSlots::new(8);

        // An error is returned only when the first datagram fails.
        send.point_at([(wrong_family, &b"x"[..]), (to, &b"y"[..])].into_iter());
        // SAFETY: `point_at` set up every header.
        assert!(unsafe { send_each(tx.as_raw_fd(), &mut send.hdrs) }.is_err());
        let long = b"second, and too long for a slot";
        let datagrams = [
            (to, &b"first"[..]),
            (to, &long[..]),
            (wrong_family, &b"never sent"[..]),
            (to, &b"not reached"[..]),
        ];
        send.point_at(datagrams.into_iter());
        // SAFETY: as above.
        let sent = unsafe { send_each(tx.as_raw_fd(), &mut send.hdrs) };
        assert_eq!(sent.unwrap(), 2);

        let slot = 8;
        let mut recv = RecvSlots::new(4);
        let mut buf = vec![0u8; 4 * slot];
        recv.point_at(&mut buf, slot);
        // SAFETY: `point_at` set up every header into `buf`.
        let got = unsafe { recv_each(rx.as_raw_fd(), &mut recv.hdrs, RECV_REAL_LENGTH) };
        assert_eq!(got.unwrap(), 2, "stops at the first failed receive");
        let first = recv.received(0, slot);
        assert_eq!(first.from, Some(tx.local_addr().unwrap()));
        assert_eq!((first.len, first.truncated_from), (5, None));
        assert_eq!(&buf[..5], b"first");
        let second = recv.received(1, slot);
        assert_eq!(second.len, slot);
        let real = if RECV_REAL_LENGTH == 0 {
            slot
        } else {
            long.len()
        };
        assert_eq!(second.truncated_from, Some(real));
        assert_eq!(&buf[slot..2 * slot], &long[..slot]);

        recv.point_at(&mut buf, slot);
        // SAFETY: as above.
        let none = unsafe { recv_each(rx.as_raw_fd(), &mut recv.hdrs, RECV_REAL_LENGTH) };
        assert_eq!(none.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    }
}
