//! Socket addresses of every transport netloom serves, and the transports.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use socket2::SockAddr;

/// The address of a socket: an IP address and port (TCP, UDP), or a Unix
/// domain socket name.
///
/// It is an ordinary owned value: keep it, hash it, compare it, send it to
/// another thread. Inet addresses are `Copy`-cheap to clone; only a named
/// Unix address owns a heap allocation.
///
/// ```
/// use netloom::{Addr, UnixAddr};
/// let inet: Addr = "127.0.0.1:9000".parse::<std::net::SocketAddr>().unwrap().into();
/// assert_eq!(inet.inet().map(|a| a.port()), Some(9000));
/// assert_eq!(inet.to_string(), "127.0.0.1:9000");
/// let abstract_name = Addr::Unix(UnixAddr::Abstract(b"netloom".to_vec()));
/// assert_eq!(abstract_name.to_string(), "@netloom");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix domain socket address.
    Unix(UnixAddr),
}

/// The name of a Unix domain socket.
///
/// ```
/// use netloom::UnixAddr;
/// let file = UnixAddr::Path("/run/app.sock".into());
/// assert_eq!(file.to_string(), "/run/app.sock");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A socket file in the file system (`unix:///path`).
    Path(PathBuf),
    /// A name in Linux's abstract namespace (`unix://@name`), without the
    /// leading NUL byte. Other platforms have none: binding or dialing one
    /// there is an error.
    Abstract(Vec<u8>),
    /// A socket bound to no name: what a connecting client usually is.
    Unnamed,
}

impl Addr {
    /// The IP address and port, if this is an Inet address.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// if let Some(ip) = conn.peer_addr().inet().map(|a| a.ip()) {
    ///     println!("client at {ip}");
    /// }
    /// # }
    /// ```
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Addr::Inet(a) => Some(*a),
            Addr::Unix(_) => None,
        }
    }

    /// Converts a kernel address; families netloom does not serve become an
    /// unnamed Unix address (they cannot occur on sockets netloom created).
    pub(crate) fn from_sockaddr(addr: &SockAddr) -> Addr {
        if let Some(inet) = addr.as_socket() {
            return Addr::Inet(inet);
        }
        if let Some(path) = addr.as_pathname() {
            return Addr::Unix(UnixAddr::Path(path.to_path_buf()));
        }
        if let Some(name) = crate::sys::socket::abstract_name(addr) {
            return Addr::Unix(UnixAddr::Abstract(name.to_vec()));
        }
        Addr::Unix(UnixAddr::Unnamed)
    }
}

impl From<SocketAddr> for Addr {
    fn from(addr: SocketAddr) -> Addr {
        Addr::Inet(addr)
    }
}

impl PartialEq<SocketAddr> for Addr {
    fn eq(&self, other: &SocketAddr) -> bool {
        matches!(self, Addr::Inet(a) if a == other)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(a) => a.fmt(f),
            Addr::Unix(u) => u.fmt(f),
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => p.display().fmt(f),
            UnixAddr::Abstract(name) => {
                write!(
                    f,
                    "@{}",
                    std::ffi::OsStr::from_bytes(name).to_string_lossy()
                )
            }
            UnixAddr::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

/// The transport of a listener or connection.
///
/// ```
/// # fn f(conn: &netloom::Conn<'_, ()>) {
/// if conn.transport() == netloom::Transport::Udp {
///     // one datagram per on_traffic
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (`tcp://`, `tcp4://`, `tcp6://`).
    Tcp,
    /// UDP (`udp://`, `udp4://`, `udp6://`).
    Udp,
    /// Unix domain stream sockets (`unix:///path`, `unix://@name`).
    Unix,
}

impl Transport {
    /// Whether the transport carries datagrams rather than a byte stream.
    ///
    /// ```
    /// assert!(netloom::Transport::Udp.is_datagram());
    /// assert!(!netloom::Transport::Unix.is_datagram());
    /// ```
    pub fn is_datagram(self) -> bool {
        self == Transport::Udp
    }
}

/// The credentials of the process at the other end of a Unix domain socket,
/// as the kernel recorded them when it connected (`SO_PEERCRED`).
///
/// ```
/// # fn f(conn: &netloom::Conn<'_, ()>) -> netloom::Result<()> {
/// let cred = conn.peer_cred()?;
/// if cred.uid != 0 { /* not root: refuse admin commands */ }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerCred {
    /// The peer's process id.
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses_convert() {
        let inet: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(Addr::from_sockaddr(&SockAddr::from(inet)), inet);
        let path = SockAddr::unix("/tmp/x.sock").unwrap();
        assert_eq!(
            Addr::from_sockaddr(&path),
            Addr::Unix(UnixAddr::Path("/tmp/x.sock".into()))
        );
        #[cfg(target_os = "linux")]
        {
            let name = SockAddr::unix("\0abc").unwrap();
            assert_eq!(
                Addr::from_sockaddr(&name),
                Addr::Unix(UnixAddr::Abstract(b"abc".to_vec()))
            );
            assert_eq!(Addr::from_sockaddr(&name).to_string(), "@abc");
        }
    }
}
