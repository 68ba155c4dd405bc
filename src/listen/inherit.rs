//! Sockets a process inherits instead of binding them: systemd socket
//! activation (`systemd://` for all, `systemd://NAME` by `FileDescriptorName=`)
//! and `fd://N` (any descriptor a supervisor left open).
//!
//! systemd's protocol (sd_listen_fds(3)): descriptors 3, 4, ... are passed
//! open, `LISTEN_FDS` says how many, `LISTEN_PID` which process they are
//! meant for (a child that inherited the environment must not take them),
//! and `LISTEN_FDNAMES` names them, colon-separated. netloom reads the three
//! variables once, on the first inherited address, then removes them from
//! the environment so that programs it starts do not see them, and marks
//! the descriptors close-on-exec.
//!
//! Each descriptor is checked before it is served: its type (`SO_TYPE`),
//! its family (the bound address, what `SO_DOMAIN` reports) and, for a
//! stream, that it listens (`SO_ACCEPTCONN`). TCP and Unix stream
//! listeners and UDP sockets are served; anything else (a connected socket
//! from `Accept=yes`, a Unix datagram socket, a pipe) is refused with an
//! error naming the descriptor.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use socket2::{Socket, Type};

use crate::sys::fd_passing;
use crate::{Addr, Error, Result, Transport};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;
/// More passed descriptors than this is a corrupt environment.
const MAX_LISTEN_FDS: usize = 4096;

/// An address served by a socket this process inherited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Inherit {
    /// `systemd://` (every socket systemd passed, `None`) or
    /// `systemd://NAME` (those named `NAME`).
    Systemd(Option<String>),
    /// `fd://N`.
    Fd(RawFd),
}

impl Inherit {
    /// Parses the part after `systemd://` or `fd://`.
    pub(crate) fn parse(scheme: &str, rest: &str) -> std::result::Result<Inherit, String> {
        match scheme {
            "systemd" if rest.is_empty() => Ok(Inherit::Systemd(None)),
            "systemd" if rest.contains(':') => Err("a socket name has no `:`".into()),
            "systemd" => Ok(Inherit::Systemd(Some(rest.to_string()))),
            _ => match rest.parse::<RawFd>() {
                Ok(fd) if fd >= 0 => Ok(Inherit::Fd(fd)),
                _ => Err("expected fd://N with N a descriptor number".into()),
            },
        }
    }
}

/// A socket taken over from the process's parent, checked.
#[derive(Debug)]
pub(crate) struct InheritedSocket {
    /// Non-blocking and close-on-exec.
    pub(crate) socket: Socket,
    /// TCP or Unix (a listener) or UDP.
    pub(crate) transport: Transport,
    /// Its bound address.
    pub(crate) addr: Addr,
}

/// One descriptor systemd passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListenFd {
    pub(crate) fd: RawFd,
    /// Its `FileDescriptorName=` (`unknown` when unnamed, as systemd says).
    pub(crate) name: String,
}

/// The descriptors systemd passed to process `own_pid`, from the values of
/// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`. None when the variables
/// are absent or meant for another process (`LISTEN_PID`).
///
/// # Errors
/// A value that is not a number, too many descriptors, or a names list of
/// another length.
pub(crate) fn parse_listen_fds(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    listen_fdnames: Option<&str>,
    own_pid: u32,
) -> std::result::Result<Vec<ListenFd>, String> {
    let (Some(pid), Some(count)) = (listen_pid, listen_fds) else {
        return Ok(Vec::new());
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_PID={pid} is not a process id"))?;
    if pid != own_pid {
        return Ok(Vec::new());
    }
    let count: usize = count
        .trim()
        .parse()
        .ok()
        .filter(|&n| n <= MAX_LISTEN_FDS)
        .ok_or_else(|| format!("LISTEN_FDS={count} is not a descriptor count"))?;
    let names: Vec<String> = match listen_fdnames {
        None => vec!["unknown".to_string(); count],
        Some(names) => names.split(':').map(str::to_string).collect(),
    };
    if names.len() != count {
        return Err(format!(
            "LISTEN_FDNAMES has {} names for LISTEN_FDS={count}",
            names.len()
        ));
    }
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, name)| ListenFd {
            fd: LISTEN_FDS_START + i as RawFd,
            name,
        })
        .collect())
}

/// What this process inherited and has not served yet.
struct Inheritance {
    /// systemd's descriptors; `None` until the environment has been read.
    systemd: Option<Vec<ListenFd>>,
    /// Every descriptor taken so far, with what it is open on
    /// (`fd_passing::identity`): none is owned twice, while a later
    /// descriptor that reuses a closed one's number may be taken.
    taken: Vec<(RawFd, (u64, u64))>,
}

static INHERITANCE: Mutex<Inheritance> = Mutex::new(Inheritance {
    systemd: None,
    taken: Vec::new(),
});

/// The inheritance, with systemd's variables read (and removed) on the
/// first call.
fn inheritance() -> Result<MutexGuard<'static, Inheritance>> {
    let mut state = INHERITANCE.lock().unwrap_or_else(PoisonError::into_inner);
    if state.systemd.is_none() {
        let var = |name| std::env::var(name).ok();
        let fds = parse_listen_fds(
            var("LISTEN_PID").as_deref(),
            var("LISTEN_FDS").as_deref(),
            var("LISTEN_FDNAMES").as_deref(),
            std::process::id(),
        )
        .map_err(|reason| Error::InvalidAddress {
            addr: "systemd://".into(),
            reason,
        })?;
        if !fds.is_empty() {
            for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
                std::env::remove_var(name);
            }
        }
        for listen_fd in &fds {
            fd_passing::set_cloexec(listen_fd.fd)?;
        }
        state.systemd = Some(fds);
    }
    Ok(state)
}

/// Takes the sockets `spec` names, checked, each at most once per process.
///
/// # Errors
/// [`Error::InvalidAddress`] naming `shown` when there is no such socket, it
/// was taken already, or it is of a kind netloom does not serve.
pub(crate) fn take(spec: &Inherit, shown: &str) -> Result<Vec<InheritedSocket>> {
    let invalid = |reason: String| Error::InvalidAddress {
        addr: shown.to_string(),
        reason,
    };
    let mut state = inheritance()?;
    let state = &mut *state;
    let systemd = state.systemd.get_or_insert_with(Vec::new);
    let fds: Vec<RawFd> = match spec {
        Inherit::Systemd(name) => {
            let wanted = |f: &ListenFd| name.as_ref().is_none_or(|n| *n == f.name);
            let (matched, rest): (Vec<ListenFd>, Vec<ListenFd>) =
                std::mem::take(systemd).into_iter().partition(wanted);
            *systemd = rest;
            if matched.is_empty() {
                let left: Vec<&str> = systemd.iter().map(|f| f.name.as_str()).collect();
                return Err(invalid(if left.is_empty() && state.taken.is_empty() {
                    "no socket was passed (LISTEN_FDS/LISTEN_PID are not set for this process; \
                     start it from a systemd socket unit or systemd-socket-activate)"
                        .into()
                } else {
                    format!("no socket of that name left (still available: {left:?})")
                }));
            }
            matched.into_iter().map(|f| f.fd).collect()
        }
        Inherit::Fd(fd) => {
            let Ok(identity) = fd_passing::identity(*fd) else {
                return Err(invalid(format!("descriptor {fd} is not open")));
            };
            if state.taken.contains(&(*fd, identity)) {
                return Err(invalid(format!("descriptor {fd} is already served")));
            }
            systemd.retain(|f| f.fd != *fd);
            fd_passing::set_cloexec(*fd)?;
            vec![*fd]
        }
    };
    for &fd in &fds {
        let identity = fd_passing::identity(fd)?;
        state.taken.retain(|&(number, _)| number != fd);
        state.taken.push((fd, identity));
    }
    fds.into_iter()
        .map(|fd| {
            // SAFETY: `fd` is open (systemd passed it, or `identity` found
            // it) and owned by nothing else in this process: every descriptor
            // taken is recorded in `taken` and never taken again while open.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            classify(owned).map_err(invalid)
        })
        .collect()
}

/// The one inherited socket `url` (`systemd://`, `systemd://NAME`,
/// `fd://N`) names, which must be of `transport`: what the async
/// front-end's listeners take over.
///
/// # Errors
/// As [`take`], and an [`Error::InvalidAddress`] when `url` is no such
/// address, names several sockets, or one of another transport.
pub(crate) fn take_single(url: &str, transport: Transport) -> Result<Socket> {
    let invalid = |reason: String| Error::InvalidAddress {
        addr: url.to_string(),
        reason,
    };
    let spec = match url.split_once("://") {
        Some((scheme @ ("systemd" | "fd"), rest)) => {
            Inherit::parse(scheme, rest).map_err(invalid)?
        }
        _ => {
            return Err(invalid(
                "expected systemd://, systemd://NAME or fd://N".into(),
            ))
        }
    };
    let mut sockets = take(&spec, url)?;
    if sockets.len() != 1 {
        return Err(invalid(format!(
            "names {} sockets; name one (systemd://NAME or fd://N)",
            sockets.len()
        )));
    }
    let single = sockets.remove(0);
    if single.transport != transport {
        return Err(invalid(format!(
            "is a {:?} socket on {}, not {transport:?}",
            single.transport, single.addr
        )));
    }
    Ok(single.socket)
}

/// Checks what an inherited descriptor is and makes it non-blocking.
pub(crate) fn classify(fd: OwnedFd) -> std::result::Result<InheritedSocket, String> {
    let number = fd.as_raw_fd();
    let socket = Socket::from(fd);
    let kind = socket
        .r#type()
        .map_err(|e| format!("descriptor {number} is not a socket ({e})"))?;
    let local = socket
        .local_addr()
        .map_err(|e| format!("descriptor {number}: getsockname: {e}"))?;
    let family = libc::c_int::from(local.family());
    let inet = family == libc::AF_INET || family == libc::AF_INET6;
    let transport = match kind {
        Type::STREAM if inet => Transport::Tcp,
        Type::STREAM if family == libc::AF_UNIX => Transport::Unix,
        Type::DGRAM if inet => Transport::Udp,
        _ => {
            return Err(format!(
                "descriptor {number} is a {} socket of family {family}; netloom serves \
                 TCP and Unix stream listeners and UDP sockets",
                if kind == Type::DGRAM {
                    "datagram"
                } else {
                    "non-stream"
                }
            ))
        }
    };
    if transport != Transport::Udp {
        let listening = fd_passing::get_int_option(number, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)
            .map_err(|e| format!("descriptor {number}: SO_ACCEPTCONN: {e}"))?;
        if listening == 0 {
            return Err(format!(
                "descriptor {number} is a stream socket that does not listen (a connection: \
                 systemd's Accept=yes? netloom needs Accept=no)"
            ));
        }
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("descriptor {number}: {e}"))?;
    Ok(InheritedSocket {
        socket,
        transport,
        addr: Addr::from_sockaddr(&local),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    fn fds(list: &[(RawFd, &str)]) -> Vec<ListenFd> {
        list.iter()
            .map(|&(fd, name)| ListenFd {
                fd,
                name: name.into(),
            })
            .collect()
    }

    #[test]
    fn listen_fds_for_this_process_with_names() {
        let parsed = parse_listen_fds(Some("42"), Some("3"), Some("web:web:dns"), 42);
        assert_eq!(parsed.unwrap(), fds(&[(3, "web"), (4, "web"), (5, "dns")]));
        let unnamed = parse_listen_fds(Some("42"), Some("2"), None, 42).unwrap();
        assert_eq!(unnamed, fds(&[(3, "unknown"), (4, "unknown")]));
        assert_eq!(
            parse_listen_fds(Some("42"), Some("0"), None, 42),
            Ok(vec![])
        );
    }

    #[test]
    fn listen_fds_of_another_process_or_absent_are_none() {
        assert_eq!(
            parse_listen_fds(Some("41"), Some("2"), None, 42),
            Ok(vec![])
        );
        assert_eq!(parse_listen_fds(None, Some("2"), None, 42), Ok(vec![]));
        assert_eq!(parse_listen_fds(Some("42"), None, None, 42), Ok(vec![]));
    }

    #[test]
    fn corrupt_listen_variables_are_errors() {
        for (pid, count, names) in [
            ("x", "1", None),
            ("42", "-1", None),
            ("42", "two", None),
            ("42", "100000", None),
            ("42", "2", Some("web")),
            ("42", "1", Some("a:b")),
        ] {
            let parsed = parse_listen_fds(Some(pid), Some(count), names, 42);
            assert!(parsed.is_err(), "{pid} {count} {names:?}: {parsed:?}");
        }
    }

    #[test]
    fn address_forms() {
        assert_eq!(Inherit::parse("systemd", ""), Ok(Inherit::Systemd(None)));
        assert_eq!(
            Inherit::parse("systemd", "web"),
            Ok(Inherit::Systemd(Some("web".into())))
        );
        assert_eq!(Inherit::parse("fd", "7"), Ok(Inherit::Fd(7)));
        for (scheme, bad) in [("fd", ""), ("fd", "-3"), ("fd", "x"), ("systemd", "a:b")] {
            assert!(Inherit::parse(scheme, bad).is_err(), "{scheme}://{bad}");
        }
    }

    #[test]
    fn listeners_and_udp_are_served_the_rest_refused() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = tcp.local_addr().unwrap();
        let got = classify(OwnedFd::from(tcp)).unwrap();
        assert_eq!((got.transport, got.addr), (Transport::Tcp, Addr::Inet(at)));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(classify(udp.into()).unwrap().transport, Transport::Udp);

        let dir = std::env::temp_dir().join(format!("netloom-inherit-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let unix = std::os::unix::net::UnixListener::bind(&dir).unwrap();
        assert_eq!(classify(unix.into()).unwrap().transport, Transport::Unix);
        let _ = std::fs::remove_file(&dir);

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let conn = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let err = classify(conn.into()).unwrap_err();
        assert!(err.contains("does not listen"), "{err}");
        let (pair, _other) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let err = classify(pair.into()).unwrap_err();
        assert!(err.contains("datagram"), "{err}");
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = classify(file.into()).unwrap_err();
        assert!(err.contains("not a socket"), "{err}");
    }

    #[test]
    fn a_descriptor_is_taken_once_and_must_be_open() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = udp.into_raw_fd();
        let spec = Inherit::Fd(fd);
        let got = take(&spec, "fd://").unwrap();
        assert_eq!(got.len(), 1);
        let err = take(&spec, "fd://").unwrap_err().to_string();
        assert!(err.contains("already served"), "{err}");
        drop(got);
        let err = take(&Inherit::Fd(1 << 20), "fd://")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not open"), "{err}");
    }
}
