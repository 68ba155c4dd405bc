//! A UDP socket's record in its loop ([`DatagramRecord`]): not a
//! connection, so it has no lifecycle, outbound byte stream, TLS or PROXY
//! stage, only the sender of the datagram being handled and the queue of
//! datagrams waiting for `sendmmsg` ([`DatagramIo`]).
//!
//! Datagrams written in a callback are copied into one byte arena and sent
//! together when the batch of received datagrams has been handled (or when
//! the handler calls `flush`), so one wake-up costs one `recvmmsg` and one
//! `sendmmsg`. The kernel either takes a datagram whole or not at all; a
//! datagram the kernel refuses for a reason of its own (no route, too big,
//! broadcast not allowed, ...) is dropped and logged, as UDP would lose it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use socket2::Socket;

use crate::conn::{ConnShared, DrainWaiter};
use crate::sys::socket::SendSlots;
use crate::sys::Interest;
use crate::{Addr, Error, Result};

/// Largest UDP payloads: 65,535 minus the IP and UDP headers.
const MAX_PAYLOAD_V4: usize = 65_507;
const MAX_PAYLOAD_V6: usize = 65_527;
/// An emptied arena larger than this is freed rather than kept.
const KEEP_ARENA: usize = 1024 * 1024;

/// What a loop keeps per UDP socket: the loop's slab holds it beside the
/// stream connections' records (`Entry::Datagram`), and a callback's
/// `Conn` sees it through the same view.
pub(crate) struct DatagramRecord<C> {
    pub(crate) socket: Socket,
    pub(crate) io: DatagramIo,
    /// The sender of the datagram being handled, as `Conn::peer_addr`
    /// shows it (the same address as `io.sender`).
    pub(crate) peer: Addr,
    /// The readiness the poller watches the socket for.
    pub(crate) interest: Interest,
    /// Queued for an extra `on_traffic` this turn (`wake`).
    pub(crate) woken: bool,
    /// Allocated only when a handle is first asked for.
    pub(crate) shared: Option<Arc<ConnShared>>,
    /// A connection to resume once the queued datagrams drain.
    pub(crate) drain_waiter: Option<Box<DrainWaiter<C>>>,
    /// Per socket and loop: every peer's datagrams see the same one.
    pub(crate) ctx: C,
}

impl<C> DatagramRecord<C> {
    /// The record of a loop's UDP socket; `batch`: datagrams per `sendmmsg`.
    pub(crate) fn new(socket: Socket, batch: usize, ctx: C) -> Self {
        let ipv6 = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.is_ipv6());
        let io = DatagramIo::new(batch, ipv6);
        DatagramRecord {
            socket,
            peer: Addr::Inet(io.sender),
            io,
            interest: Interest::READABLE,
            woken: false,
            shared: None,
            drain_waiter: None,
            ctx,
        }
    }

    /// The state handles share, made when the first handle is.
    pub(crate) fn shared(&mut self) -> Arc<ConnShared> {
        ConnShared::get_or_make(&mut self.shared, self.io.pending())
    }

    /// Makes `to` the sender that replies go to.
    pub(crate) fn reply_to(&mut self, to: SocketAddr) {
        self.io.sender = to;
        self.peer = Addr::Inet(to);
    }
}

/// Per-socket datagram state: where replies go and what waits to be sent.
pub(crate) struct DatagramIo {
    /// Where `write` replies go: the sender of the datagram being handled.
    pub(crate) sender: SocketAddr,
    /// The real length of the datagram being handled, if it was cut to the
    /// read buffer.
    pub(crate) truncated_from: Option<usize>,
    arena: Vec<u8>,
    queue: Vec<Pending>,
    /// First queue entry not sent yet.
    head: usize,
    slots: SendSlots,
    /// The socket is AF_INET6: IPv4 destinations are sent v4-mapped.
    ipv6: bool,
}

struct Pending {
    to: SocketAddr,
    start: usize,
    len: usize,
}

impl DatagramIo {
    /// `batch`: datagrams per `sendmmsg` (1: one `sendmsg` each); `ipv6`:
    /// the socket's family.
    pub(crate) fn new(batch: usize, ipv6: bool) -> DatagramIo {
        DatagramIo {
            sender: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            truncated_from: None,
            arena: Vec::new(),
            queue: Vec::new(),
            head: 0,
            slots: SendSlots::new(batch),
            ipv6,
        }
    }

    /// Bytes queued and not yet sent.
    pub(crate) fn pending(&self) -> usize {
        match self.queue.get(self.head) {
            Some(first) => self.arena.len() - first.start,
            None => 0,
        }
    }

    /// Queues the concatenation of `parts` as one datagram to the sender
    /// of the datagram being handled.
    pub(crate) fn reply(&mut self, parts: &[&[u8]]) -> Result<()> {
        self.push(self.sender, parts)
    }

    /// Queues the concatenation of `parts` as one datagram to `to`.
    pub(crate) fn push(&mut self, to: SocketAddr, parts: &[&[u8]]) -> Result<()> {
        let to = self.in_family(to);
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let max = if to.is_ipv4() {
            MAX_PAYLOAD_V4
        } else {
            MAX_PAYLOAD_V6
        };
        if len > max {
            return Err(Error::Io(io::Error::from_raw_os_error(libc::EMSGSIZE)));
        }
        let start = self.arena.len();
        for part in parts {
            self.arena.extend_from_slice(part);
        }
        self.queue.push(Pending { to, start, len });
        Ok(())
    }

    /// `to` in the socket's family where it has a form there: an IPv6
    /// socket reaches IPv4 peers by v4-mapped addresses, and an IPv4 socket
    /// can take a v4-mapped destination as plain IPv4.
    fn in_family(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V4(v4) if self.ipv6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            SocketAddr::V6(v6) if !self.ipv6 => match v6.ip().to_ipv4_mapped() {
                Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, v6.port())),
                None => to,
            },
            _ => to,
        }
    }

    /// Sends queued datagrams until none is left or the socket's send buffer
    /// is full. Returns true if any was sent.
    pub(crate) fn flush(&mut self, socket: &Socket) -> bool {
        let mut progressed = false;
        while self.head < self.queue.len() {
            let arena = &self.arena;
            let batch = self.queue[self.head..]
                .iter()
                .map(|p| (p.to, &arena[p.start..p.start + p.len]));
            match self.slots.send(socket.as_raw_fd(), batch) {
                Ok(n) => {
                    self.head += n;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let dropped = &self.queue[self.head];
                    log::warn!(
                        "netloom: datagram of {} bytes to {} dropped: {e}",
                        dropped.len,
                        dropped.to
                    );
                    self.head += 1;
                }
            }
        }
        self.compact();
        progressed
    }

    /// Forgets what was sent; frees a large arena once it is empty.
    fn compact(&mut self) {
        if self.head == self.queue.len() {
            self.queue.clear();
            self.arena.clear();
            self.head = 0;
            if self.arena.capacity() > KEEP_ARENA {
                self.arena = Vec::new();
                self.queue = Vec::new();
            }
        } else if self.head > 0 && self.head * 2 >= self.queue.len() {
            let offset = self.queue[self.head].start;
            self.arena.drain(..offset);
            self.queue.drain(..self.head);
            for p in &mut self.queue {
                p.start -= offset;
            }
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn queued_datagrams_arrive_whole_and_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let tx = Socket::from(UdpSocket::bind("127.0.0.1:0").unwrap());
        tx.set_nonblocking(true).unwrap();
        for batch in [1, 4] {
            let mut io = DatagramIo::new(batch, false);
            for i in 0..10u8 {
                io.push(to, &[&[i], &vec![i; i as usize * 100]]).unwrap();
            }
            assert_eq!(io.pending(), 10 + (0..10).map(|i| i * 100).sum::<usize>());
            assert!(io.flush(&tx));
            assert_eq!(io.pending(), 0);
            let mut buf = [0u8; 2000];
            for i in 0..10u8 {
                let n = rx.recv(&mut buf).unwrap();
                assert_eq!(n, 1 + i as usize * 100);
                assert!(buf[..n].iter().all(|&b| b == i));
            }
        }
    }

    #[test]
    fn oversized_and_refused_datagrams_are_reported_not_sent() {
        let mut io = DatagramIo::new(8, false);
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let big = vec![0u8; MAX_PAYLOAD_V4 + 1];
        assert!(matches!(io.push(to, &[&big]), Err(Error::Io(_))));
        assert_eq!(io.pending(), 0);
        // Broadcast without SO_BROADCAST: EACCES for that datagram only.
        let tx = Socket::from(UdpSocket::bind("127.0.0.1:0").unwrap());
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        io.push("127.255.255.255:9".parse().unwrap(), &[b"x"])
            .unwrap();
        io.push(rx.local_addr().unwrap(), &[b"kept"]).unwrap();
        io.flush(&tx);
        assert_eq!(io.pending(), 0);
        let mut buf = [0u8; 16];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"kept");
    }

    #[test]
    fn destinations_are_put_in_the_socket_family() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let v4 = rx.local_addr().unwrap();
        let mapped = SocketAddr::from((Ipv4Addr::LOCALHOST.to_ipv6_mapped(), v4.port()));
        // A dual-stack socket reaches an IPv4 peer given as plain IPv4.
        let dual = Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
        dual.set_only_v6(false).unwrap();
        dual.bind(&"[::]:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let mut io = DatagramIo::new(4, true);
        io.push(v4, &[b"to v4"]).unwrap();
        io.flush(&dual);
        // An IPv4 socket takes a v4-mapped destination.
        let plain = Socket::from(UdpSocket::bind("127.0.0.1:0").unwrap());
        let mut io = DatagramIo::new(4, false);
        io.push(mapped, &[b"mapped"]).unwrap();
        io.flush(&plain);
        let mut buf = [0u8; 16];
        let mut got: Vec<Vec<u8>> = (0..2)
            .map(|_| {
                let n = rx.recv(&mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect();
        got.sort();
        assert_eq!(got, vec![b"mapped".to_vec(), b"to v4".to_vec()]);
    }
}
