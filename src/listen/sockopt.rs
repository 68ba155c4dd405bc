//! Applying [`Options`]' socket options: to listeners and UDP sockets before
//! they bind, to listeners once they listen, and to each accepted connection.
//!
//! A value the kernel refuses at start-up is an [`Error::InvalidOption`]
//! naming the option; on an accepted connection the failure is logged and the
//! connection served anyway (the peer is not to blame).

use std::io;
use std::os::fd::AsRawFd;

use socket2::{Socket, TcpKeepalive};

use crate::sys::socket;
use crate::Options;
use crate::{Addr, Error, Result};

fn invalid(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |e| Error::InvalidOption(format!("{what}: {e}"))
}

/// Before `bind`: TCP listeners and UDP sockets (`ipv6`: an AF_INET6 socket).
pub(crate) fn before_bind(
    socket: &Socket,
    ipv6: bool,
    v6_only: bool,
    options: &Options,
) -> Result<()> {
    socket
        .set_reuse_address(options.reuse_address)
        .map_err(invalid("reuse_address"))?;
    if ipv6 {
        socket
            .set_only_v6(options.ipv6_only.unwrap_or(v6_only))
            .map_err(invalid("ipv6_only"))?;
    }
    set_buffer_sizes(socket, options).map_err(|(what, e)| invalid(what)(e))?;
    if let Some(dev) = &options.bind_device {
        socket::bind_device(socket, dev, ipv6).map_err(invalid("bind_device"))?;
    }
    if let Some(tos) = options.ip_tos {
        if ipv6 {
            socket.set_tclass_v6(tos).map_err(invalid("ip_tos"))?;
        } else {
            socket.set_tos(tos).map_err(invalid("ip_tos"))?;
        }
    }
    Ok(())
}

/// TCP listeners, right before `listen`.
pub(crate) fn before_listen(socket: &Socket, options: &Options) -> Result<()> {
    let fd = socket.as_raw_fd();
    if let Some(queue) = options.tcp_fastopen {
        socket::set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_FASTOPEN, queue as i32)
            .map_err(invalid("tcp_fastopen"))?;
    }
    if let Some(wait) = options.tcp_defer_accept {
        socket::set_defer_accept(socket, wait.as_secs() as i32)
            .map_err(invalid("tcp_defer_accept"))?;
    }
    Ok(())
}

fn set_buffer_sizes(socket: &Socket, options: &Options) -> Result<(), (&'static str, io::Error)> {
    if let Some(size) = options.recv_buffer_size {
        socket
            .set_recv_buffer_size(size)
            .map_err(|e| ("recv_buffer_size", e))?;
    }
    if let Some(size) = options.send_buffer_size {
        socket
            .set_send_buffer_size(size)
            .map_err(|e| ("send_buffer_size", e))?;
    }
    Ok(())
}

/// The options every accepted or dialed stream gets: what a loop keeps of
/// [`Options`] to configure its connections. An accepted TCP connection
/// inherits buffer sizes and TOS from its listener; a Unix one inherits
/// nothing, so it gets the buffer sizes here.
#[derive(Clone, Debug)]
pub(crate) struct StreamOptions {
    nodelay: bool,
    keepalive: Option<TcpKeepalive>,
    linger: Option<std::time::Duration>,
    recv_buffer_size: Option<usize>,
    send_buffer_size: Option<usize>,
}

impl StreamOptions {
    pub(crate) fn new(options: &Options) -> StreamOptions {
        StreamOptions {
            nodelay: options.tcp_nodelay,
            keepalive: keepalive(options),
            linger: options.linger,
            recv_buffer_size: options.recv_buffer_size,
            send_buffer_size: options.send_buffer_size,
        }
    }

    /// Applies them to a new connection with `peer` (TCP or Unix).
    pub(crate) fn apply(&self, socket: &Socket, peer: &Addr) -> io::Result<()> {
        if matches!(peer, Addr::Unix(_)) {
            if let Some(size) = self.recv_buffer_size {
                socket.set_recv_buffer_size(size)?;
            }
            if let Some(size) = self.send_buffer_size {
                socket.set_send_buffer_size(size)?;
            }
            return Ok(());
        }
        if self.nodelay {
            socket.set_nodelay(true)?;
        }
        if let Some(keepalive) = &self.keepalive {
            socket.set_tcp_keepalive(keepalive)?;
        }
        if let Some(linger) = self.linger {
            socket.set_linger(Some(linger))?;
        }
        Ok(())
    }
}
fn keepalive(options: &Options) -> Option<TcpKeepalive> {
    let asked = options.tcp_keepalive.is_some()
        || options.tcp_keepalive_interval.is_some()
        || options.tcp_keepalive_retries.is_some();
    if !asked {
        return None;
    }
    let mut keepalive = TcpKeepalive::new();
    if let Some(idle) = options.tcp_keepalive {
        keepalive = keepalive.with_time(idle);
    }
    if let Some(interval) = options.tcp_keepalive_interval {
        keepalive = keepalive.with_interval(interval);
    }
    if let Some(retries) = options.tcp_keepalive_retries {
        keepalive = keepalive.with_retries(retries);
    }
    Some(keepalive)
}
