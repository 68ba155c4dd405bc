//! Binding the listening sockets of stream transports (TCP, Unix).

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::addr::{unix_sockaddr, ListenAddr};
use super::Options;
use crate::sys::socket;
use crate::{Addr, Error, Result, UnixAddr};

/// A listening stream socket, owned by one loop.
pub(crate) struct Listener {
    pub(crate) socket: Socket,
    /// The acceptor hands connections to loops with the load balancer; false
    /// when the kernel spreads them (SO_REUSEPORT, a listener per loop) and
    /// each loop keeps what it accepts.
    pub(crate) balanced: bool,
    /// Removed when the listener is dropped (Unix socket files only).
    _socket_file: Option<SocketFile>,
}

/// Binds `addr` for a stream transport. Returns the listeners, one per loop
/// with SO_REUSEPORT (TCP), otherwise one for the acceptor on loop 0, and
/// the bound address (port 0 resolved).
pub(crate) fn bind_stream(
    addr: &ListenAddr,
    loops: usize,
    options: &Options,
) -> Result<(Vec<Listener>, Addr)> {
    match addr {
        ListenAddr::Inet {
            addr: at, v6_only, ..
        } => {
            let first = bind_tcp(*at, *v6_only, options)?;
            let bound = first
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("a TCP listener without an inet address"))?;
            let mut sockets = vec![first];
            if options.reuseport {
                for _ in 1..loops {
                    sockets.push(bind_tcp(bound, *v6_only, options)?);
                }
            }
            let listeners = sockets
                .into_iter()
                .map(|socket| Listener {
                    socket,
                    balanced: !options.reuseport,
                    _socket_file: None,
                })
                .collect();
            Ok((listeners, Addr::Inet(bound)))
        }
        // SO_REUSEPORT does not spread AF_UNIX connections: one acceptor,
        // whatever `Options::reuseport` says.
        ListenAddr::Unix(name) => Ok((vec![bind_unix(name, options)?], Addr::Unix(name.clone()))),
    }
}

fn bind_tcp(at: SocketAddr, v6_only: bool, options: &Options) -> Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(at),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if options.reuseport {
        socket.set_reuse_port(true)?;
    }
    if at.is_ipv6() {
        socket.set_only_v6(v6_only)?;
    }
    let shown = at.to_string();
    socket.bind(&at.into()).map_err(|e| bind_error(&shown, e))?;
    socket
        .listen(options.backlog.unwrap_or_else(socket::somaxconn))
        .map_err(|e| bind_error(&shown, e))?;
    Ok(socket)
}

fn bind_error(addr: &str, err: io::Error) -> Error {
    if err.raw_os_error() == Some(libc::EADDRINUSE) {
        return Error::AddrInUse(addr.to_string());
    }
    Error::InvalidAddress {
        addr: addr.to_string(),
        reason: format!("cannot listen: {err}"),
    }
}

fn bind_unix(name: &UnixAddr, options: &Options) -> Result<Listener> {
    let shown = name.to_string();
    let sockaddr = unix_sockaddr(name).map_err(|e| Error::InvalidAddress {
        addr: shown.clone(),
        reason: e.to_string(),
    })?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
    let path = match name {
        UnixAddr::Path(path) => {
            remove_stale_socket_file(path, &sockaddr)?;
            Some(path)
        }
        _ => None,
    };
    socket.bind(&sockaddr).map_err(|e| bind_error(&shown, e))?;
    // From here on the file is ours: dropping it on an error below removes it.
    let socket_file = path.map(|p| SocketFile::claim(p)).transpose()?;
    if let (Some(path), Some(mode)) = (path, options.unix_socket_mode) {
        // Before listen(): nobody can connect while the mode is still the umask's.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    socket
        .listen(options.backlog.unwrap_or_else(socket::somaxconn))
        .map_err(|e| bind_error(&shown, e))?;
    Ok(Listener {
        socket,
        balanced: true,
        _socket_file: socket_file,
    })
}

/// A socket file left behind by a server that died is removed; one that a
/// live server still answers on is an [`Error::AddrInUse`], and anything
/// that is not a socket is never touched.
fn remove_stale_socket_file(path: &Path, sockaddr: &SockAddr) -> Result<()> {
    let shown = path.display().to_string();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::InvalidAddress {
                addr: shown,
                reason: format!("cannot inspect the socket file: {e}"),
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(Error::InvalidAddress {
            addr: shown,
            reason: "the path exists and is not a socket".into(),
        });
    }
    // Connecting is the only reliable liveness test. A non-blocking connect
    // to a Unix socket completes or fails at once; EAGAIN means the server's
    // backlog is full, so it is alive.
    let probe = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
    match probe.connect(sockaddr) {
        Ok(()) => Err(Error::AddrInUse(shown)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Err(Error::AddrInUse(shown)),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            log::info!("netloom: removing stale socket file {shown}");
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::InvalidAddress {
                    addr: shown,
                    reason: format!("cannot remove the stale socket file: {e}"),
                }),
                _ => Ok(()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::InvalidAddress {
            addr: shown,
            reason: format!("cannot tell whether a server is listening: {e}"),
        }),
    }
}

/// A socket file this process created; removed on drop unless something
/// else has replaced it since.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    fn claim(path: &Path) -> Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .map(|m| m.dev() == self.dev && m.ino() == self.ino)
            .unwrap_or(false);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!(
                    "netloom: cannot remove socket file {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}
