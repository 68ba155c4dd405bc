//! Listen addresses: `tcp://host:port` (`tcp4`, `tcp6`), `udp://host:port`
//! (`udp4`, `udp6`), `unix:///path`, `unix://@abstract-name`, and the
//! inherited sockets `systemd://`, `systemd://NAME` and `fd://N`.

use std::ffi::OsStr;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use socket2::SockAddr;

use super::inherit::Inherit;
use crate::sys::{self, Feature};
use crate::{Error, Result, Transport, UnixAddr};

/// A parsed listen address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListenAddr {
    /// TCP or UDP.
    Inet {
        transport: Transport,
        addr: SocketAddr,
        /// `tcp6://` and `udp6://`: the socket serves IPv6 only (`IPV6_V6ONLY`).
        v6_only: bool,
    },
    /// A Unix domain stream socket: a file path or an abstract name.
    Unix(UnixAddr),
    /// Sockets the process inherited (systemd socket activation, `fd://`):
    /// their transport is what the kernel says they are.
    Inherited(Inherit),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Any,
    V4,
    V6,
}

impl ListenAddr {
    /// Parses and resolves `url`. A host name resolves to its first address of
    /// the requested family.
    pub(crate) fn parse(url: &str) -> Result<ListenAddr> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::InvalidAddress {
            addr: url.to_string(),
            reason: "expected scheme://host:port or unix:///path".into(),
        })?;
        let invalid = |reason: String| Error::InvalidAddress {
            addr: url.to_string(),
            reason,
        };
        let (transport, family) = match scheme {
            "tcp" => (Transport::Tcp, Family::Any),
            "tcp4" => (Transport::Tcp, Family::V4),
            "tcp6" => (Transport::Tcp, Family::V6),
            "udp" => (Transport::Udp, Family::Any),
            "udp4" => (Transport::Udp, Family::V4),
            "udp6" => (Transport::Udp, Family::V6),
            "unix" => return parse_unix(rest).map(ListenAddr::Unix).map_err(invalid),
            "systemd" | "fd" => {
                return Inherit::parse(scheme, rest)
                    .map(ListenAddr::Inherited)
                    .map_err(invalid)
            }
            _ => return Err(Error::UnknownScheme(url.to_string())),
        };
        let candidates = rest.to_socket_addrs().map_err(|e| invalid(e.to_string()))?;
        let addr = candidates
            .into_iter()
            .find(|a| match family {
                Family::Any => true,
                Family::V4 => a.is_ipv4(),
                Family::V6 => a.is_ipv6(),
            })
            .ok_or_else(|| invalid("no address of the requested family".into()))?;
        Ok(ListenAddr::Inet {
            transport,
            addr,
            v6_only: family == Family::V6,
        })
    }

    /// The transport and address of a socket bound at this address, as a
    /// handed-off socket is matched (`None` for an inherited one).
    pub(crate) fn bound(&self) -> Option<(Transport, crate::Addr)> {
        match self {
            ListenAddr::Inet {
                transport, addr, ..
            } => Some((*transport, crate::Addr::Inet(*addr))),
            ListenAddr::Unix(name) => Some((Transport::Unix, crate::Addr::Unix(name.clone()))),
            ListenAddr::Inherited(_) => None,
        }
    }
}

/// `/path` (from `unix:///path`), a relative `path`, or `@name` (abstract).
fn parse_unix(rest: &str) -> std::result::Result<UnixAddr, String> {
    let addr = match rest.strip_prefix('@') {
        Some("") => return Err("empty abstract socket name".into()),
        Some(name) => UnixAddr::Abstract(name.as_bytes().to_vec()),
        None if rest.is_empty() => return Err("empty socket path".into()),
        None => UnixAddr::Path(PathBuf::from(rest)),
    };
    // Checks the length limit of sockaddr_un now, as a typed error.
    unix_sockaddr(&addr).map_err(|e| e.to_string())?;
    Ok(addr)
}

/// The kernel form of a named Unix address.
pub(crate) fn unix_sockaddr(addr: &UnixAddr) -> std::io::Result<SockAddr> {
    match addr {
        UnixAddr::Path(path) => SockAddr::unix(path),
        UnixAddr::Abstract(_) if !sys::supports(Feature::AbstractUnixSockets) => {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "abstract socket names (unix://@name) exist on Linux only, not on {}",
                    sys::PLATFORM
                ),
            ))
        }
        UnixAddr::Abstract(name) => {
            // socket2 treats a leading NUL byte as the abstract namespace.
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0);
            bytes.extend_from_slice(name);
            SockAddr::unix(OsStr::from_bytes(&bytes))
        }
        UnixAddr::Unnamed => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an unnamed Unix address cannot be bound or connected to",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(url: &str) -> (Transport, SocketAddr, bool) {
        match ListenAddr::parse(url).unwrap() {
            ListenAddr::Inet {
                transport,
                addr,
                v6_only,
            } => (transport, addr, v6_only),
            other => panic!("{url} parsed as {other:?}"),
        }
    }

    #[test]
    fn schemes_and_families() {
        let (t, a, v6) = inet("tcp://127.0.0.1:9000");
        assert_eq!(
            (t, a, v6),
            (Transport::Tcp, "127.0.0.1:9000".parse().unwrap(), false)
        );
        let (t, a, v6) = inet("tcp6://[::1]:0");
        assert!(t == Transport::Tcp && a.is_ipv6() && v6);
        assert!(inet("tcp4://localhost:1").1.is_ipv4());
        let (t, a, v6) = inet("udp6://[::1]:5");
        assert!(t == Transport::Udp && a.is_ipv6() && v6);
        assert_eq!(inet("udp4://127.0.0.1:5").0, Transport::Udp);
        assert!(matches!(
            ListenAddr::parse("tcp4://[::1]:1"),
            Err(Error::InvalidAddress { .. })
        ));
        assert!(matches!(
            ListenAddr::parse("quic://1.2.3.4:5"),
            Err(Error::UnknownScheme(_))
        ));
        assert!(matches!(
            ListenAddr::parse("127.0.0.1:9000"),
            Err(Error::InvalidAddress { .. })
        ));
        assert!(matches!(
            ListenAddr::parse("tcp://127.0.0.1"),
            Err(Error::InvalidAddress { .. })
        ));
        assert!(matches!(
            ListenAddr::parse("udp://300.0.0.1:80"),
            Err(Error::InvalidAddress { .. })
        ));
    }

    #[test]
    fn inherited_sockets() {
        assert_eq!(
            ListenAddr::parse("systemd://").unwrap(),
            ListenAddr::Inherited(Inherit::Systemd(None))
        );
        assert_eq!(
            ListenAddr::parse("systemd://web").unwrap(),
            ListenAddr::Inherited(Inherit::Systemd(Some("web".into())))
        );
        assert_eq!(
            ListenAddr::parse("fd://3").unwrap(),
            ListenAddr::Inherited(Inherit::Fd(3))
        );
    }

    #[test]
    fn unix_paths_and_abstract_names() {
        assert_eq!(
            ListenAddr::parse("unix:///tmp/a.sock").unwrap(),
            ListenAddr::Unix(UnixAddr::Path("/tmp/a.sock".into()))
        );
        assert_eq!(
            ListenAddr::parse("unix://rel.sock").unwrap(),
            ListenAddr::Unix(UnixAddr::Path("rel.sock".into()))
        );
        let abstract_name = ListenAddr::parse("unix://@netloom");
        if sys::supports(Feature::AbstractUnixSockets) {
            assert_eq!(
                abstract_name.unwrap(),
                ListenAddr::Unix(UnixAddr::Abstract(b"netloom".to_vec()))
            );
        } else {
            let err = abstract_name.unwrap_err().to_string();
            assert!(err.contains("exist on Linux only"), "{err}");
        }
        for bad in ["unix://", "unix://@", "fd://x", "systemd://a:b"] {
            assert!(matches!(
                ListenAddr::parse(bad),
                Err(Error::InvalidAddress { .. })
            ));
        }
        let too_long = format!("unix:///{}", "x".repeat(200));
        assert!(matches!(
            ListenAddr::parse(&too_long),
            Err(Error::InvalidAddress { .. })
        ));
    }
}
