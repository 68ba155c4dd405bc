//! The sockets the front-ends bind, in one place: listen URLs
//! (`tcp://`, `udp://`, `unix://`, and `systemd://`, `fd://` for inherited
//! sockets), binding TCP and Unix listeners (one per loop with
//! SO_REUSEPORT, or one for the acceptor; stale Unix socket files) and UDP
//! sockets, taking over inherited ones, and the socket options of
//! [`Options`] applied to listeners and to every connection.

mod addr;
mod bind;
mod inherit;
mod options;
mod sockopt;

pub(crate) use addr::{unix_sockaddr, ListenAddr};
pub(crate) use bind::{bind_stream, bind_tcp, bind_udp, bind_unix, Listener, SocketFile};
pub(crate) use inherit::{classify, take as take_inherited, take_single, InheritedSocket};
pub use options::ListenerOptions;
pub(crate) use sockopt::StreamOptions;

use crate::Error;

/// A binding error as the `io::Error` the async front-end's listeners
/// return (std's convention), its kind kept where there is one.
pub(crate) fn io_error(err: Error) -> std::io::Error {
    match err {
        Error::Io(e) => e,
        Error::AddrInUse(_) => std::io::Error::new(std::io::ErrorKind::AddrInUse, err.to_string()),
        other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
    }
}
