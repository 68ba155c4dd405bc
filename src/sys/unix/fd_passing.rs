//! Descriptors passed between processes: `SCM_RIGHTS` over a Unix stream
//! socket (unix(7)), the close-on-exec flag and the socket facts an
//! inherited descriptor is checked against.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{check, check_size};

/// Most descriptors one `SCM_RIGHTS` message may carry on Linux
/// (`SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_MESSAGE: usize = 253;

/// Sends `data` (at least one byte) with `fds` attached, in one `sendmsg`.
///
/// # Errors
/// `InvalidInput` for more than [`MAX_FDS_PER_MESSAGE`] descriptors or no
/// data; the kernel's error otherwise (a short write is an error too: the
/// peer would see the descriptors with a partial payload).
pub(crate) fn send_fds(socket: &impl AsRawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS_PER_MESSAGE || data.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot pass {} descriptors in one message", fds.len()),
        ));
    }
    let fds_len = std::mem::size_of_val(fds) as libc::c_uint;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fds_len) } as usize;
    // u64 words keep the buffer aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8).max(1)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` bytes, enough for one header
        // with `fds_len` bytes of data (CMSG_SPACE), so CMSG_FIRSTHDR is
        // non-null and CMSG_DATA has room for the descriptors.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(fds_len) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(header),
                fds_len as usize,
            );
        }
    }
    let sent = retry_interrupted(|| {
        // SAFETY: msg points at the live iovec and control buffer above;
        // sendmsg only reads them.
        check_size(unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) })
    })?;
    if sent != data.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the descriptors' message was cut short",
        ));
    }
    Ok(())
}

/// Runs `call` again while it fails with `EINTR`. A socket with a
/// timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`) is not restarted by the kernel
/// after a signal or a task-work notification: the call fails instead.
fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Receives one message of up to `buf.len()` bytes and the descriptors
/// attached to it (close-on-exec), in one `recvmsg`. Returns the number of
/// bytes; 0 with no descriptors at end of stream.
///
/// # Errors
/// The kernel's error; `InvalidData` when the sender passed more than
/// [`MAX_FDS_PER_MESSAGE`] descriptors (those that arrived are closed).
pub(crate) fn recv_fds(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let max_len = (MAX_FDS_PER_MESSAGE * std::mem::size_of::<RawFd>()) as libc::c_uint;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(max_len) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = retry_interrupted(|| {
        // SAFETY: msg points at the live iovec and control buffer above,
        // which recvmsg fills within their lengths.
        check_size(unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) })
    })?;
    let mut fds = Vec::new();
    // SAFETY: after a successful recvmsg the control buffer holds
    // `msg_controllen` bytes of well-formed headers, which CMSG_FIRSTHDR and
    // CMSG_NXTHDR walk; an SCM_RIGHTS header's data is an array of
    // descriptors now owned by this process, each taken exactly once.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&msg);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header);
                let bytes = (*header).cmsg_len as usize - (data as usize - header as usize);
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            header = libc::CMSG_NXTHDR(&msg, header);
        }
    }
    for fd in &fds {
        set_cloexec(fd.as_raw_fd())?;
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more descriptors than one message carries",
        ));
    }
    Ok((n, fds))
}

/// Sets `FD_CLOEXEC`, so that programs this process starts do not inherit
/// the descriptor.
pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFD/F_SETFD) on a descriptor number has no memory
    // effects; a closed one is EBADF.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    Ok(())
}

/// What `fd` is open on, as `(st_dev, st_ino)`: tells a descriptor from a
/// later one that reuses its number.
pub(crate) fn identity(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `stat` into the local value.
    check(unsafe { libc::fstat(fd, &mut stat) })?;
    #[allow(clippy::unnecessary_cast)] // the field types differ by platform
    Ok((stat.st_dev as u64, stat.st_ino as u64))
}

/// `getsockopt` of an `int` option (`SO_ACCEPTCONN`).
pub(crate) fn get_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the local value.
    check(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn descriptors_cross_a_socket_pair_close_on_exec() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut near, far) = UnixStream::pair().unwrap();
        send_fds(&a, b"x", &[far.as_raw_fd(), far.as_raw_fd()]).unwrap();
        drop(far);
        let mut buf = [0u8; 8];
        let (n, fds) = recv_fds(&b, &mut buf).unwrap();
        assert_eq!((n, &buf[..1], fds.len()), (1, &b"x"[..], 2));
        for fd in &fds {
            assert!(get_flags(fd.as_raw_fd()) & libc::FD_CLOEXEC != 0);
        }
        // The received descriptor is the same socket.
        let mut received = UnixStream::from(fds.into_iter().next().unwrap());
        received.write_all(b"through").unwrap();
        let mut got = [0u8; 7];
        near.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"through");
    }

    #[test]
    fn too_many_descriptors_and_empty_data_are_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        let many = vec![a.as_raw_fd(); MAX_FDS_PER_MESSAGE + 1];
        assert_eq!(
            send_fds(&a, b"x", &many).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            send_fds(&a, b"", &[]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    fn get_flags(fd: RawFd) -> libc::c_int {
        // SAFETY: F_GETFD on an open descriptor.
        unsafe { libc::fcntl(fd, libc::F_GETFD) }
    }
}
