//! floor-echo: the epoll floor of the echo scenarios. One thread, one mio
//! poll (edge-triggered epoll), one read buffer shared by every connection:
//! read, write the same bytes back, nothing else. What it spends per message
//! is about what any echo server on one epoll thread must spend, so the
//! suite's `floor` server shows how far netloom is from the bare syscalls.
//!
//! `floor-echo --addr 127.0.0.1:7000`
//!
//! Every byte is echoed, in order: a write that takes only part of a read
//! keeps the rest with its connection (at most one read's worth: reading
//! stops until it is written) and asks for WRITABLE until it is flushed.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use netloom_bench::flags::Flags;

const LISTENER: Token = Token(usize::MAX);
/// The one read buffer: a 4 KiB message (or a few) takes one read.
const READ_BUF: usize = 64 * 1024;

struct Conn {
    socket: TcpStream,
    /// Echoed bytes the socket has not taken yet; reading waits until empty.
    unwritten: Vec<u8>,
}

/// What the connection needs after an event.
#[derive(PartialEq)]
enum Next {
    /// Wait for the next edge.
    Wait,
    /// Bytes are left over: wait until the socket is writable.
    WaitWritable,
    /// The peer closed or the socket failed.
    Close,
}

impl Conn {
    /// Writes `bytes`, keeping what the socket does not take.
    fn send(&mut self, bytes: &[u8]) -> Next {
        let mut done = 0;
        while done < bytes.len() {
            match self.socket.write(&bytes[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.unwritten.extend_from_slice(&bytes[done..]);
                    return Next::WaitWritable;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        Next::Wait
    }

    /// Echoes what is readable. `read_closed`: the event already reported
    /// the peer's FIN, so read on to the end of the stream; otherwise a short
    /// read means the socket is drained (a later arrival is a new edge) and
    /// saves the read that would say `WouldBlock`.
    fn echo(&mut self, buf: &mut [u8], read_closed: bool) -> Next {
        loop {
            let n = match self.socket.read(buf) {
                Ok(0) => return Next::Close,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close,
            };
            let next = self.send(&buf[..n]);
            if next != Next::Wait || (n < buf.len() && !read_closed) {
                return next;
            }
        }
    }

    /// Writes the bytes left over; `true` once none are.
    fn flush(&mut self) -> io::Result<bool> {
        while !self.unwritten.is_empty() {
            match self.socket.write(&self.unwritten) {
                Ok(n) => {
                    self.unwritten.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Handles one event of connection `token`; `false`: close it.
fn serve(
    registry: &Registry,
    conn: &mut Conn,
    token: Token,
    event: &mio::event::Event,
    buf: &mut [u8],
) -> io::Result<bool> {
    let read_closed = event.is_read_closed() || event.is_error();
    let next = if !conn.unwritten.is_empty() {
        if !conn.flush()? {
            return Ok(true);
        }
        registry.reregister(&mut conn.socket, token, Interest::READABLE)?;
        // Bytes that arrived while reading waited brought no new edge: read
        // until `WouldBlock`.
        conn.echo(buf, true)
    } else if event.is_readable() || read_closed {
        conn.echo(buf, read_closed)
    } else {
        Next::Wait
    };
    match next {
        Next::Wait => Ok(true),
        Next::WaitWritable => {
            registry.reregister(
                &mut conn.socket,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(true)
        }
        Next::Close => Ok(false),
    }
}

fn main() -> io::Result<()> {
    let flags = Flags::parse("floor-echo", "--addr 127.0.0.1:7000");
    let addr: SocketAddr = flags
        .text("addr", "127.0.0.1:7000")
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "--addr takes HOST:PORT"))?;
    netloom_bench::raise_fd_limit();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("floor-echo: listening on {}", listener.local_addr()?);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&listener, poll.registry(), &mut conns, &mut free)?;
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns[slot].as_mut() else {
                continue;
            };
            if !serve(poll.registry(), conn, event.token(), event, &mut buf).unwrap_or(false) {
                // Dropping the socket closes it, which also removes it from
                // the epoll set.
                conns[slot] = None;
                free.push(slot);
            }
        }
    }
}

/// Accepts every pending connection (the listener is edge-triggered too).
fn accept_all(
    listener: &TcpListener,
    registry: &Registry,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
) -> io::Result<()> {
    loop {
        let mut socket = match listener.accept() {
            Ok((socket, _)) => socket,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue
            }
            // Out of descriptors and the like: keep the connections we have
            // (the rest of the backlog waits for the next edge).
            Err(e) => {
                eprintln!("floor-echo: accept: {e}");
                return Ok(());
            }
        };
        // As the peers do: a reply leaves at once.
        let _ = socket.set_nodelay(true);
        let slot = free.pop().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        registry.register(&mut socket, Token(slot), Interest::READABLE)?;
        conns[slot] = Some(Conn {
            socket,
            unwritten: Vec::new(),
        });
    }
}
