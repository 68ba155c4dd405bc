//! Binding the sockets an engine serves: listeners of the stream transports
//! (TCP, Unix) and the UDP sockets.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::addr::{unix_sockaddr, ListenAddr};
use super::options::ListenerOptions;
use super::sockopt;
use crate::sys::{self, socket, Feature};
use crate::{Addr, Error, Result, UnixAddr};
use crate::{MulticastInterface, Options};

/// A listening stream socket, owned by one loop.
pub(crate) struct Listener {
    pub(crate) socket: Socket,
    /// The acceptor hands connections to loops with the load balancer; false
    /// when the kernel spreads them (SO_REUSEPORT, a listener per loop) and
    /// each loop keeps what it accepts.
    pub(crate) balanced: bool,
    /// Removed when the listener is dropped (Unix socket files only).
    socket_file: Option<SocketFile>,
    /// What accepted connections go through before `on_open`: a PROXY
    /// header, a TLS handshake (`EngineBuilder::bind_with`).
    pub(crate) options: ListenerOptions,
}

impl Listener {
    /// A listener this process inherited (systemd, a handoff): it never
    /// removes a socket file, which belongs to whoever bound it.
    pub(crate) fn inherited(socket: Socket, balanced: bool) -> Listener {
        Listener {
            socket,
            balanced,
            socket_file: None,
            options: ListenerOptions::default(),
        }
    }

    /// The socket and the guard that removes its socket file when dropped.
    pub(crate) fn into_parts(self) -> (Socket, Option<SocketFile>) {
        (self.socket, self.socket_file)
    }

    /// Takes the guard of its socket file, if it has one: the engine keeps
    /// it, so that a listener handed to another process leaves the file.
    pub(crate) fn take_socket_file(&mut self) -> Option<SocketFile> {
        self.socket_file.take()
    }
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
            if kernel_balanced(options) {
                for _ in 1..loops {
                    sockets.push(bind_tcp(bound, *v6_only, options)?);
                }
            } else if options.reuseport {
                log::info!(
                    "netloom: {} does not balance SO_REUSEPORT listeners; {bound} uses the acceptor",
                    sys::PLATFORM
                );
            }
            let listeners = sockets
                .into_iter()
                .map(|socket| Listener {
                    socket,
                    balanced: !kernel_balanced(options),
                    socket_file: None,
                    options: ListenerOptions::default(),
                })
                .collect();
            Ok((listeners, Addr::Inet(bound)))
        }
        // SO_REUSEPORT does not spread AF_UNIX connections: one acceptor,
        // whatever `Options::reuseport` says.
        ListenAddr::Unix(name) => Ok((vec![bind_unix(name, options)?], Addr::Unix(name.clone()))),
        ListenAddr::Inherited(_) => Err(Error::Unsupported(
            "an inherited socket is taken over, not bound",
        )),
    }
}

/// Whether TCP listeners are one per loop with the kernel balancing
/// connections among them: asked for, and the platform can (not macOS).
fn kernel_balanced(options: &Options) -> bool {
    options.reuseport && sys::supports(Feature::BalancedReuseport)
}

/// A TCP listener on `at`; with `Options::reuseport` it may share the port
/// (the kernel balances only where `kernel_balanced`).
pub(crate) fn bind_tcp(at: SocketAddr, v6_only: bool, options: &Options) -> Result<Socket> {
    let socket = socket::new_socket(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    if options.reuseport {
        socket::set_reuse_port(&socket)?;
    }
    sockopt::before_bind(&socket, at.is_ipv6(), v6_only, options)?;
    let shown = at.to_string();
    socket.bind(&at.into()).map_err(|e| bind_error(&shown, e))?;
    sockopt::before_listen(&socket, options)?;
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

pub(crate) fn bind_unix(name: &UnixAddr, options: &Options) -> Result<Listener> {
    let shown = name.to_string();
    let sockaddr = unix_sockaddr(name).map_err(|e| Error::InvalidAddress {
        addr: shown.clone(),
        reason: e.to_string(),
    })?;
    let socket = socket::new_socket(Domain::UNIX, Type::STREAM, None)?;
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
        socket_file,
        options: ListenerOptions::default(),
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
    let probe = socket::new_socket(Domain::UNIX, Type::STREAM, None)?;
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
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The socket file at `path`, which this process now answers for.
    pub(crate) fn claim(path: &Path) -> Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl SocketFile {
    /// Leaves the file in place: another process serves the socket now.
    pub(crate) fn keep(mut self) {
        self.path = PathBuf::new();
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
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

/// How a UDP socket shares its port.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PortSharing {
    /// Neither SO_REUSEADDR nor SO_REUSEPORT: the bind fails if any socket
    /// holds the port, and no later socket can join it.
    Exclusive,
    /// SO_REUSEPORT, SO_REUSEADDR as `Options::reuse_address` says: the
    /// engine's own sockets, or whoever else asks to share.
    Shared,
}

/// Binds a UDP address: one socket per loop in a SO_REUSEPORT group so the
/// kernel spreads datagrams (by source address and port, so one peer's
/// datagrams stay in order on one loop).
///
/// Without `Options::reuseport` the port is the engine's alone: an
/// exclusive socket (no SO_REUSEADDR, no SO_REUSEPORT) first checks that
/// nobody holds it ([`Error::AddrInUse`] otherwise, as for TCP); then, with
/// several loops, it makes way for the group, whose sockets set
/// SO_REUSEPORT but not SO_REUSEADDR, so that another engine's exclusive
/// check, or any socket that does not ask for SO_REUSEPORT, finds the port
/// in use instead of silently taking a share of the datagrams.
///
/// A multicast group address is joined and served by a single socket, on
/// loop 0, that shares its port (subscribers of a group usually do): the
/// kernel copies a multicast datagram to *every* socket of a SO_REUSEPORT
/// group, so one socket per loop would handle each datagram once per loop.
pub(crate) fn bind_udp(
    addr: &ListenAddr,
    loops: usize,
    options: &Options,
) -> Result<(Vec<Socket>, Addr)> {
    let ListenAddr::Inet {
        addr: at, v6_only, ..
    } = addr
    else {
        return Err(Error::Unsupported("UDP needs an IP address"));
    };
    let (at, v6_only) = (*at, *v6_only);
    if at.ip().is_multicast() {
        let socket = udp_socket(at, v6_only, options, PortSharing::Shared)?;
        let bound = inet_addr(&socket)?;
        return Ok((vec![socket], Addr::Inet(bound)));
    }
    if options.reuseport {
        let sockets = udp_group(at, v6_only, loops, options)?;
        let bound = inet_addr(&sockets[0])?;
        return Ok((sockets, Addr::Inet(bound)));
    }
    // Port 0: another socket may take the port the check found between the
    // check and the group's bind; the kernel then picks another.
    let attempts = if at.port() == 0 { 3 } else { 1 };
    let mut attempt = 1;
    loop {
        let exclusive = udp_socket(at, v6_only, options, PortSharing::Exclusive)?;
        let bound = inet_addr(&exclusive)?;
        if loops == 1 {
            return Ok((vec![exclusive], Addr::Inet(bound)));
        }
        drop(exclusive);
        match udp_group(bound, v6_only, loops, &options.clone().reuse_address(false)) {
            Err(Error::AddrInUse(_)) if attempt < attempts => attempt += 1,
            group => return group.map(|sockets| (sockets, Addr::Inet(bound))),
        }
    }
}

/// `loops` sockets sharing `at` with SO_REUSEPORT (port 0 resolved by the
/// first).
fn udp_group(
    at: SocketAddr,
    v6_only: bool,
    loops: usize,
    options: &Options,
) -> Result<Vec<Socket>> {
    let first = udp_socket(at, v6_only, options, PortSharing::Shared)?;
    let bound = inet_addr(&first)?;
    let mut sockets = vec![first];
    for _ in 1..loops {
        sockets.push(udp_socket(bound, v6_only, options, PortSharing::Shared)?);
    }
    Ok(sockets)
}

fn inet_addr(socket: &Socket) -> Result<SocketAddr> {
    Ok(socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("a UDP socket without an inet address"))?)
}

fn udp_socket(
    mut at: SocketAddr,
    v6_only: bool,
    options: &Options,
    sharing: PortSharing,
) -> Result<Socket> {
    let socket = socket::new_socket(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
    sockopt::before_bind(&socket, at.is_ipv6(), v6_only, options)?;
    match sharing {
        PortSharing::Shared => socket::set_reuse_port(&socket)?,
        // For UDP, SO_REUSEADDR on both sides is enough to share a port.
        PortSharing::Exclusive => socket.set_reuse_address(false)?,
    }
    if options.broadcast {
        socket.set_broadcast(true)?;
    }
    set_multicast_options(&socket, at.ip(), options)?;
    if let (SocketAddr::V6(v6), Some(MulticastInterface::Index(index))) =
        (&mut at, options.multicast_interface)
    {
        // A link-scope group (ff02::...) can only be bound with its interface.
        if v6.ip().is_multicast() && v6.scope_id() == 0 {
            v6.set_scope_id(index);
        }
    }
    let shown = at.to_string();
    socket.bind(&at.into()).map_err(|e| bind_error(&shown, e))?;
    if at.ip().is_multicast() {
        join_group(&socket, at.ip(), options)?;
    }
    Ok(socket)
}

/// The sending side of multicast: interface, loopback, TTL.
fn set_multicast_options(socket: &Socket, ip: IpAddr, options: &Options) -> Result<()> {
    let invalid = |what: &str, e: io::Error| Error::InvalidOption(format!("{what}: {e}"));
    match ip {
        IpAddr::V4(_) => {
            match options.multicast_interface {
                Some(MulticastInterface::Index(index)) => {
                    socket::set_multicast_if_index_v4(socket.as_raw_fd(), index)
                        .map_err(|e| invalid("multicast_interface", e))?
                }
                Some(MulticastInterface::Addr(addr)) => socket
                    .set_multicast_if_v4(&addr)
                    .map_err(|e| invalid("multicast_interface", e))?,
                None => {}
            }
            if let Some(on) = options.multicast_loop {
                socket
                    .set_multicast_loop_v4(on)
                    .map_err(|e| invalid("multicast_loop", e))?;
            }
            if let Some(ttl) = options.multicast_ttl {
                socket
                    .set_multicast_ttl_v4(ttl)
                    .map_err(|e| invalid("multicast_ttl", e))?;
            }
        }
        IpAddr::V6(_) => {
            match options.multicast_interface {
                Some(MulticastInterface::Index(index)) => socket
                    .set_multicast_if_v6(index)
                    .map_err(|e| invalid("multicast_interface", e))?,
                Some(MulticastInterface::Addr(_)) => {
                    return Err(Error::InvalidOption(
                        "multicast_interface: IPv6 needs an interface index".into(),
                    ))
                }
                None => {}
            }
            if let Some(on) = options.multicast_loop {
                socket
                    .set_multicast_loop_v6(on)
                    .map_err(|e| invalid("multicast_loop", e))?;
            }
            if let Some(hops) = options.multicast_ttl {
                socket
                    .set_multicast_hops_v6(hops)
                    .map_err(|e| invalid("multicast_ttl", e))?;
            }
        }
    }
    Ok(())
}

fn join_group(socket: &Socket, group: IpAddr, options: &Options) -> Result<()> {
    use socket2::InterfaceIndexOrAddress as Iface;
    let joined = match (group, options.multicast_interface) {
        (IpAddr::V4(g), Some(MulticastInterface::Index(i))) => {
            socket.join_multicast_v4_n(&g, &Iface::Index(i))
        }
        (IpAddr::V4(g), Some(MulticastInterface::Addr(a))) => {
            socket.join_multicast_v4_n(&g, &Iface::Address(a))
        }
        (IpAddr::V4(g), None) => socket.join_multicast_v4(&g, &std::net::Ipv4Addr::UNSPECIFIED),
        (IpAddr::V6(g), Some(MulticastInterface::Index(i))) => socket.join_multicast_v6(&g, i),
        (IpAddr::V6(g), _) => socket.join_multicast_v6(&g, 0),
    };
    joined.map_err(|e| Error::InvalidAddress {
        addr: group.to_string(),
        reason: format!("cannot join the multicast group: {e}"),
    })
}
