//! Listen addresses: `tcp://host:port`, `tcp4://…`, `tcp6://…`.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::{Error, Result};

/// A parsed listen address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListenAddr {
    pub(crate) addr: SocketAddr,
    /// `tcp6://`: the socket serves IPv6 only (`IPV6_V6ONLY`).
    pub(crate) v6_only: bool,
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
            reason: "expected scheme://host:port".into(),
        })?;
        let family = match scheme {
            "tcp" => Family::Any,
            "tcp4" => Family::V4,
            "tcp6" => Family::V6,
            _ => return Err(Error::UnknownScheme(url.to_string())),
        };
        let invalid = |reason: String| Error::InvalidAddress {
            addr: url.to_string(),
            reason,
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
        Ok(ListenAddr {
            addr,
            v6_only: family == Family::V6,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_families() {
        let a = ListenAddr::parse("tcp://127.0.0.1:9000").unwrap();
        assert_eq!(a.addr, "127.0.0.1:9000".parse().unwrap());
        assert!(!a.v6_only);
        let b = ListenAddr::parse("tcp6://[::1]:0").unwrap();
        assert!(b.addr.is_ipv6() && b.v6_only);
        assert!(ListenAddr::parse("tcp4://localhost:1")
            .unwrap()
            .addr
            .is_ipv4());
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
            ListenAddr::parse("tcp://300.0.0.1:80"),
            Err(Error::InvalidAddress { .. })
        ));
    }
}
