//! Engine settings: one plain value that the engine, the client and the
//! runtime read their configuration from.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::reactor::balancer::LoadBalancer;
use crate::sys::{Feature, Platform};
use crate::{Error, Result};

/// Engine settings. Every setter returns the options, so they chain.
///
/// ```
/// use std::time::Duration;
/// let options = netloom::Options::default()
///     .loops(2)
///     .reuseport(true)
///     .idle_timeout(Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) loops: usize,
    pub(crate) reuseport: bool,
    pub(crate) load_balancer: LoadBalancer,
    pub(crate) pin_loops: bool,
    pub(crate) ticker: bool,
    pub(crate) stop_on_signals: bool,
    pub(crate) read_buffer_size: usize,
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) async_write_cap: usize,
    pub(crate) max_inbound: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) half_open_timeout: Duration,
    pub(crate) tls_handshake_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) tcp_nodelay: bool,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) tcp_keepalive_interval: Option<Duration>,
    pub(crate) tcp_keepalive_retries: Option<u32>,
    pub(crate) backlog: Option<i32>,
    pub(crate) reuse_address: bool,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) send_buffer_size: Option<usize>,
    pub(crate) linger: Option<Duration>,
    pub(crate) bind_device: Option<String>,
    pub(crate) ipv6_only: Option<bool>,
    pub(crate) tcp_fastopen: Option<u32>,
    pub(crate) tcp_defer_accept: Option<Duration>,
    pub(crate) ip_tos: Option<u32>,
    pub(crate) unix_socket_mode: Option<u32>,
    pub(crate) udp_batch: usize,
    pub(crate) broadcast: bool,
    pub(crate) multicast_interface: Option<MulticastInterface>,
    pub(crate) multicast_loop: Option<bool>,
    pub(crate) multicast_ttl: Option<u32>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) backend: Backend,
}

/// The kernel interface the event loops wait on.
///
/// `Auto` (the default) uses io_uring when a start-up probe finds it usable
/// (Linux 6.1 or later with `IORING_SETUP_SINGLE_ISSUER` and
/// `IORING_SETUP_DEFER_TASKRUN`, not disabled by `kernel.io_uring_disabled`
/// or a seccomp filter) and falls back to epoll otherwise, with one log
/// line. The environment variable `NETLOOM_BACKEND` (`epoll`, `io-uring` or
/// `auto`) replaces `Auto` only: a backend chosen in code is never
/// overridden. On macOS and FreeBSD, `Epoll` and `Auto` mean kqueue and
/// `IoUring` is refused.
///
/// ```
/// use netloom::{Backend, Options};
/// let options = Options::default().backend(Backend::Epoll);
/// assert_eq!("io-uring".parse::<Backend>().unwrap(), Backend::IoUring);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// io_uring if the kernel offers it, else epoll (kqueue on macOS and FreeBSD).
    #[default]
    Auto,
    /// The readiness poller: epoll on Linux, kqueue on macOS and FreeBSD.
    Epoll,
    /// io_uring; starting fails with [`Error::BackendUnavailable`] where the
    /// kernel does not offer it.
    IoUring,
}

impl std::str::FromStr for Backend {
    type Err = Error;

    /// Parses `auto`, `epoll` or `io-uring` (also `io_uring`, `iouring`).
    ///
    /// ```
    /// use netloom::Backend;
    /// assert_eq!("epoll".parse::<Backend>().unwrap(), Backend::Epoll);
    /// assert!("select".parse::<Backend>().is_err());
    /// ```
    fn from_str(name: &str) -> Result<Backend> {
        match name {
            "auto" => Ok(Backend::Auto),
            "epoll" => Ok(Backend::Epoll),
            "io-uring" | "io_uring" | "iouring" => Ok(Backend::IoUring),
            other => Err(Error::InvalidOption(format!(
                "backend `{other}`: expected epoll, io-uring or auto"
            ))),
        }
    }
}

/// The network interface multicast uses: the one a group is joined on, and
/// the one multicast datagrams leave by.
///
/// ```
/// use netloom::{MulticastInterface, Options};
/// let on_loopback = Options::default().multicast_interface(Some(MulticastInterface::Index(1)));
/// let by_address = Options::default()
///     .multicast_interface(Some(MulticastInterface::Addr("127.0.0.1".parse().unwrap())));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MulticastInterface {
    /// By interface index (`ip link` shows it; `lo` is usually 1). IPv4 and IPv6.
    Index(u32),
    /// By one of the interface's IPv4 addresses. IPv4 only.
    Addr(Ipv4Addr),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            loops: 0,
            reuseport: false,
            load_balancer: LoadBalancer::RoundRobin,
            pin_loops: false,
            ticker: false,
            stop_on_signals: false,
            read_buffer_size: 64 * 1024,
            high_water: 256 * 1024,
            low_water: 64 * 1024,
            async_write_cap: 4 * 1024 * 1024,
            max_inbound: 16 * 1024 * 1024,
            idle_timeout: None,
            close_timeout: Duration::from_secs(10),
            half_open_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            tcp_nodelay: true,
            tcp_keepalive: None,
            tcp_keepalive_interval: None,
            tcp_keepalive_retries: None,
            backlog: None,
            reuse_address: true,
            recv_buffer_size: None,
            send_buffer_size: None,
            linger: None,
            bind_device: None,
            ipv6_only: None,
            tcp_fastopen: None,
            tcp_defer_accept: None,
            ip_tos: None,
            unix_socket_mode: None,
            udp_batch: 32,
            broadcast: false,
            multicast_interface: None,
            multicast_loop: None,
            multicast_ttl: None,
            connect_timeout: Some(Duration::from_secs(10)),
            backend: Backend::Auto,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl Options {
    setter!(
        /// Number of event loops; 0 (the default) means one per available core.
        loops: usize
    );
    setter!(
        /// The kernel interface the loops wait on (see [`Backend`]; default
        /// `Auto`).
        ///
        /// ```
        /// use netloom::{Backend, Options};
        /// let options = Options::default().backend(Backend::IoUring);
        /// ```
        backend: Backend
    );
    setter!(
        /// One listener per loop with `SO_REUSEPORT` (the kernel spreads
        /// connections) instead of one acceptor on loop 0 that hands them
        /// out; the port may then be shared with other `SO_REUSEPORT`
        /// sockets (another engine with this option). Unix sockets always
        /// use the acceptor. UDP always has one socket per loop in a
        /// `SO_REUSEPORT` group (one peer's datagrams stay on one loop);
        /// without this option the port must be free ([`Error::AddrInUse`]
        /// otherwise), and only a socket that asks for `SO_REUSEPORT`
        /// itself could still join the group. FreeBSD uses
        /// `SO_REUSEPORT_LB`; macOS has no kernel balancing, so there the
        /// acceptor serves (and the load balancer picks the loop) whatever
        /// this says.
        reuseport: bool
    );
    setter!(
        /// How the acceptor picks a loop (acceptor topology only).
        load_balancer: LoadBalancer
    );
    setter!(
        /// Pins loop `i` to core `i % cores` (Linux, FreeBSD; macOS has no
        /// pinning: [`Error::InvalidOption`] at start-up).
        pin_loops: bool
    );
    setter!(
        /// Calls [`Handler::on_tick`](crate::Handler::on_tick) on loop 0, first right after start.
        ticker: bool
    );
    setter!(
        /// Stops the engine gracefully on SIGINT or SIGTERM, watched on loop
        /// 0. Linux: both signals are blocked in the starting thread and the
        /// loops and read from a signalfd. macOS, FreeBSD: both are ignored
        /// process-wide and watched with kqueue's `EVFILT_SIGNAL`. On Linux,
        /// [`Engine::wait`](crate::Engine::wait) returning on the starting
        /// thread unblocks them there again, discarding one that arrived
        /// after the loops stopped.
        stop_on_signals: bool
    );
    setter!(
        /// Size of each loop's shared read buffer: the most one read takes,
        /// and for UDP the largest datagram delivered whole (longer ones
        /// arrive cut, see `Conn::truncated`). The default, 64 KiB, holds
        /// any UDP datagram.
        read_buffer_size: usize
    );
    setter!(
        /// Outbound bytes above which the loop stops reading the connection.
        high_water: usize
    );
    setter!(
        /// Outbound bytes at or below which reading resumes.
        low_water: usize
    );
    setter!(
        /// Hard cap on a connection's pending bytes for `ConnHandle` writes.
        async_write_cap: usize
    );
    setter!(
        /// Most unconsumed inbound bytes a connection may hold; past it the
        /// connection closes with [`Error::InboundOverflow`].
        max_inbound: usize
    );
    setter!(
        /// Closes connections with no traffic (read or written) for this long.
        idle_timeout: Option<Duration>
    );
    setter!(
        /// How long a closing connection may take to flush before it is dropped.
        close_timeout: Duration
    );
    setter!(
        /// How long a half-open connection (the peer sent its FIN and
        /// `Handler::on_eof` kept it open) may go without handing a byte to
        /// the kernel before it is closed with [`Error::HalfOpenTimeout`]:
        /// it bounds a peer that half-closes and then stops reading. Checked
        /// once per period, so such a connection closes between one and two
        /// periods after its last progress. Default 30 s.
        half_open_timeout: Duration
    );
    setter!(
        /// How long a TLS connection's handshake may take (listeners bound
        /// with `EngineBuilder::bind_tls`, `Client::dial_tls`); a peer
        /// that stalls, or sends its handshake a byte at a time, is closed
        /// with [`Error::TlsHandshakeTimeout`] passed to `on_close`.
        /// Default 10 s.
        ///
        /// ```
        /// let options = netloom::Options::default().tls_handshake_timeout(std::time::Duration::from_secs(3));
        /// ```
        tls_handshake_timeout: Duration
    );
    setter!(
        /// How long [`Engine::stop`](crate::Engine::stop) waits for outbound data to flush,
        /// and [`Engine::drain`](crate::Engine::drain) for connections to finish.
        shutdown_grace: Duration
    );
    setter!(
        /// `TCP_NODELAY` on accepted connections (default on).
        tcp_nodelay: bool
    );
    setter!(
        /// TCP keep-alive on accepted connections: idle time before the first
        /// probe (`TCP_KEEPIDLE`, whole seconds, 1 to 32,767). Keep-alive is
        /// on when this, `tcp_keepalive_interval` or `tcp_keepalive_retries`
        /// is set (the unset ones keep the kernel's defaults); default off.
        tcp_keepalive: Option<Duration>
    );
    setter!(
        /// TCP keep-alive: time between probes (`TCP_KEEPINTVL`, whole
        /// seconds, 1 to 32,767).
        tcp_keepalive_interval: Option<Duration>
    );
    setter!(
        /// TCP keep-alive: unanswered probes before the connection is
        /// dropped (`TCP_KEEPCNT`, 1 to 127).
        tcp_keepalive_retries: Option<u32>
    );
    setter!(
        /// The listen backlog; `None` uses the kernel's `somaxconn`.
        backlog: Option<i32>
    );
    setter!(
        /// `SO_REUSEADDR` on TCP listeners, and on UDP sockets that share
        /// their port ([`Options::reuseport`], multicast groups) (default on:
        /// a restarted server can bind while old connections sit in
        /// TIME_WAIT). A UDP port bound without `reuseport` never sets it:
        /// for UDP it would let another socket share the port.
        reuse_address: bool
    );
    setter!(
        /// `SO_RCVBUF` in bytes, on TCP listeners (accepted connections
        /// inherit it), accepted Unix connections and UDP sockets. The kernel
        /// doubles the value for its bookkeeping and caps it at
        /// `net.core.rmem_max`. `None`: the kernel's autotuning.
        recv_buffer_size: Option<usize>
    );
    setter!(
        /// `SO_SNDBUF` in bytes, where `recv_buffer_size` applies
        /// (`net.core.wmem_max` caps it).
        send_buffer_size: Option<usize>
    );
    setter!(
        /// `SO_LINGER` on accepted TCP connections: how long the kernel's
        /// close may keep unsent bytes; `Some(Duration::ZERO)` resets the
        /// connection on close. `None` (default): the kernel's usual close.
        linger: Option<Duration>
    );
    setter!(
        /// `SO_BINDTODEVICE`: TCP listeners and UDP sockets only take traffic
        /// of this interface (e.g. `"eth0"`, at most 15 bytes). macOS:
        /// `IP_BOUND_IF`; FreeBSD has none ([`Error::InvalidOption`]).
        bind_device: Option<String>
    );
    setter!(
        /// `IPV6_V6ONLY` on IPv6 sockets. `None` (default): on for `tcp6://`
        /// and `udp6://`, off for `tcp://` and `udp://` (which then also
        /// serve IPv4-mapped addresses).
        ipv6_only: Option<bool>
    );
    setter!(
        /// `TCP_FASTOPEN` on TCP listeners: the queue length of pending Fast
        /// Open requests (the kernel's `net.ipv4.tcp_fastopen` must allow the
        /// server side). macOS and FreeBSD only switch it on; their kernel
        /// sizes the queue.
        tcp_fastopen: Option<u32>
    );
    setter!(
        /// `TCP_DEFER_ACCEPT` on TCP listeners: a connection is accepted only
        /// once its first bytes arrive, waiting at most this long (whole
        /// seconds, at least 1). Linux only ([`Error::InvalidOption`] on
        /// macOS and FreeBSD).
        tcp_defer_accept: Option<Duration>
    );
    setter!(
        /// `IP_TOS` (IPv6: `IPV6_TCLASS`), 0 to 255, on TCP listeners
        /// (accepted connections inherit it) and UDP sockets.
        ip_tos: Option<u32>
    );
    setter!(
        /// UDP: datagrams moved per `recvmmsg` and per `sendmmsg` (default
        /// 32, at most 1024). 1 makes one `recvmsg`/`sendmsg` per datagram.
        /// A UDP loop's receive area is `udp_batch * read_buffer_size` bytes
        /// of address space; only the pages datagrams touch become memory.
        udp_batch: usize
    );
    setter!(
        /// UDP: `SO_BROADCAST`, so datagrams may be sent to broadcast
        /// addresses (default off: the kernel refuses them with `EACCES`).
        broadcast: bool
    );
    setter!(
        /// UDP multicast: the interface groups are joined on and multicast
        /// datagrams leave by (`IP_MULTICAST_IF`, `IPV6_MULTICAST_IF`).
        /// `None`: the kernel's choice by route. A group is joined by binding
        /// its address, e.g. `udp4://239.1.2.3:5000`.
        multicast_interface: Option<MulticastInterface>
    );
    setter!(
        /// UDP multicast: whether our own multicast datagrams are looped back
        /// to local listeners (`IP_MULTICAST_LOOP`; the kernel's default is on).
        multicast_loop: Option<bool>
    );
    setter!(
        /// UDP multicast: the TTL (IPv6: hop limit) of multicast datagrams,
        /// 0 to 255 (the kernel's default is 1: this link only).
        multicast_ttl: Option<u32>
    );
    setter!(
        /// Permission bits of Unix socket files (`unix:///path`), set before
        /// the socket listens, e.g. `Some(0o600)`; `None` leaves what the
        /// umask gives. Abstract names have no file and ignore it.
        unix_socket_mode: Option<u32>
    );
    setter!(
        /// How long an outbound connect may take before it fails with
        /// `Error::ConnectTimeout` (default 10 s; `None`: the kernel's own
        /// limit, minutes). Applies to `Client::dial`.
        ///
        /// ```
        /// # use std::time::Duration;
        /// let options = netloom::Options::default().connect_timeout(Some(Duration::from_secs(2)));
        /// ```
        connect_timeout: Option<Duration>
    );

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidOption(what.to_string()));
        if self.loops > 4096 {
            return bad("loops must be at most 4096");
        }
        if self.read_buffer_size < 512 {
            return bad("read_buffer_size must be at least 512 bytes");
        }
        if self.high_water == 0 || self.low_water > self.high_water {
            return bad("need 0 < high_water and low_water <= high_water");
        }
        if self.max_inbound == 0 {
            return bad("max_inbound must be positive");
        }
        if self.async_write_cap == 0 {
            return bad("async_write_cap must be positive");
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return bad("idle_timeout must be positive (None disables it)");
        }
        if self.half_open_timeout.is_zero() {
            return bad("half_open_timeout must be positive");
        }
        if self.tls_handshake_timeout.is_zero() {
            return bad("tls_handshake_timeout must be positive");
        }
        if matches!(self.backlog, Some(b) if b <= 0) {
            return bad("backlog must be positive");
        }
        let whole_seconds = |d: Option<Duration>, max: u64| {
            d.is_none_or(|d| d.subsec_nanos() == 0 && (1..=max).contains(&d.as_secs()))
        };
        if !whole_seconds(self.tcp_keepalive, 32_767) {
            return bad("tcp_keepalive must be 1 to 32,767 whole seconds");
        }
        if !whole_seconds(self.tcp_keepalive_interval, 32_767) {
            return bad("tcp_keepalive_interval must be 1 to 32,767 whole seconds");
        }
        if matches!(self.tcp_keepalive_retries, Some(n) if !(1..=127).contains(&n)) {
            return bad("tcp_keepalive_retries must be 1 to 127");
        }
        let c_int_size =
            |size: Option<usize>| size.is_none_or(|n| (1..=i32::MAX as usize).contains(&n));
        if !c_int_size(self.recv_buffer_size) || !c_int_size(self.send_buffer_size) {
            return bad("socket buffer sizes must be 1 to 2,147,483,647 bytes");
        }
        if matches!(self.linger, Some(d) if d.as_secs() > i32::MAX as u64) {
            return bad("linger is too long");
        }
        if let Some(dev) = &self.bind_device {
            if dev.is_empty() || dev.len() >= libc::IFNAMSIZ || dev.contains('\0') {
                return bad("bind_device must be an interface name of 1 to 15 bytes");
            }
        }
        if matches!(self.tcp_fastopen, Some(q) if q == 0 || q > i32::MAX as u32) {
            return bad("tcp_fastopen must be a positive queue length");
        }
        if !whole_seconds(self.tcp_defer_accept, i32::MAX as u64) {
            return bad("tcp_defer_accept must be at least 1 whole second");
        }
        if matches!(self.ip_tos, Some(t) if t > 255) {
            return bad("ip_tos must be at most 255");
        }
        if !(1..=1024).contains(&self.udp_batch) {
            return bad("udp_batch must be 1 to 1024");
        }
        if matches!(self.multicast_ttl, Some(t) if t > 255) {
            return bad("multicast_ttl must be at most 255");
        }
        if matches!(self.unix_socket_mode, Some(m) if m > 0o7777) {
            return bad("unix_socket_mode must be permission bits (at most 0o7777)");
        }
        Platform::CURRENT.refuse_missing(&[
            (self.pin_loops, Feature::CpuPinning, "pin_loops"),
            (
                self.bind_device.is_some(),
                Feature::BindDevice,
                "bind_device",
            ),
            (
                self.tcp_defer_accept.is_some(),
                Feature::DeferAccept,
                "tcp_defer_accept",
            ),
        ])?;
        Ok(())
    }
}
