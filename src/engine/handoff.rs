//! Zero-downtime restart: a running engine hands its listening sockets to a
//! new process over a Unix socket (`SCM_RIGHTS`), then drains.
//!
//! Descriptor passing rather than re-exec: the new process is started by
//! whoever deploys (a supervisor, a script, another binary version), asks
//! for the sockets itself, and the old one serves until the new one says it
//! serves. The listening sockets are never closed in between (both
//! processes hold them), so no connection attempt is refused: what arrives
//! while the new engine starts waits in the kernel's accept queue.
//!
//! The exchange on the handoff socket:
//!
//! | step | who | what |
//! |------|-----|------|
//! | 1 | new | connects to the path ([`EngineBuilder::inherit_from`](super::EngineBuilder::inherit_from)) |
//! | 2 | old | sends `netloom-handoff/1` with every listening and UDP socket attached |
//! | 3 | new | starts its engine; a socket whose bound address and transport match a `bind` is served instead of binding |
//! | 4 | new | sends `S` (serving) |
//! | 5 | old | removes the handoff socket file, sends `D` (done) and drains ([`Engine::drain`]) |
//! | 6 | new | reads `D`; the path is free for it to offer its own sockets |
//!
//! A new process that fails before step 4 closes the connection: the old
//! one keeps serving and offers its sockets again to the next.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::Socket;

use super::Engine;
use crate::listen::{self, InheritedSocket, SocketFile};
use crate::sys::fd_passing;
use crate::unwind::lock;
use crate::{Addr, Error, Options, Result, Transport, UnixAddr};

/// What the old process sends with the sockets: protocol and version.
const HELLO: &[u8] = b"netloom-handoff/1";
/// New to old: the new engine serves the sockets.
const SERVING: u8 = b'S';
/// Old to new: the old engine stopped offering and drains.
const DONE: u8 = b'D';
/// How long the old process waits for the new one to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Any other step of the exchange.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the offering thread looks for a new process or a stop.
const OFFER_POLL: Duration = Duration::from_millis(50);

/// Copies of an engine's listening and UDP sockets, kept for a handoff
/// (the loops own the originals), and the guards of the socket files the
/// engine created. Released when the engine stops.
#[derive(Default)]
pub(crate) struct EngineSockets {
    sockets: Vec<Socket>,
    socket_files: Vec<SocketFile>,
    /// The socket file of the handoff offer (`Engine::serve_handoff`).
    offer_file: Option<SocketFile>,
}

/// An engine's sockets; `None` once it stopped or handed them off.
pub(crate) type SharedSockets = Arc<Mutex<Option<EngineSockets>>>;

impl EngineSockets {
    /// Keeps a copy (`dup`, close-on-exec) of `socket`.
    pub(crate) fn keep(&mut self, socket: &Socket) -> Result<()> {
        self.sockets.push(socket.try_clone()?);
        Ok(())
    }

    /// Keeps the guard of a socket file the engine created.
    pub(crate) fn keep_file(&mut self, file: SocketFile) {
        self.socket_files.push(file);
    }

    /// Sends the sockets over `conn` (step 2).
    fn send(&self, conn: &UnixStream) -> io::Result<()> {
        let fds: Vec<RawFd> = self.sockets.iter().map(AsRawFd::as_raw_fd).collect();
        fd_passing::send_fds(conn, HELLO, &fds)
    }

    /// After a handoff: the new process serves the socket files; the
    /// offer's goes.
    fn handed_off(self) {
        self.socket_files.into_iter().for_each(SocketFile::keep);
    }
}

/// `Engine::serve_handoff`: binds `path` and offers `engine`'s sockets on
/// a thread until one new process takes them or the engine stops.
pub(crate) fn offer(engine: &Engine, path: &Path) -> Result<()> {
    let name = UnixAddr::Path(path.to_path_buf());
    let (socket, file) = listen::bind_unix(&name, &Options::default())?.into_parts();
    {
        // The engine removes the file when it stops, drains or hands off.
        let mut sockets = lock(&engine.sockets);
        let Some(sockets) = sockets.as_mut() else {
            return Err(Error::EngineStopped);
        };
        if sockets.offer_file.is_some() {
            return Err(Error::InvalidOption(
                "the engine already offers its sockets".into(),
            ));
        }
        sockets.offer_file = file;
    }
    let engine = engine.clone();
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("netloom-handoff".into())
        .spawn(move || offer_until_taken(&engine, &path, socket))?;
    Ok(())
}

fn offer_until_taken(engine: &Engine, path: &Path, listener: Socket) {
    while !engine.is_stopping() && !engine.is_draining() {
        let conn = match listener.accept() {
            Ok((conn, _)) => UnixStream::from(std::os::fd::OwnedFd::from(conn)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(OFFER_POLL);
                continue;
            }
            Err(e) => {
                log::warn!("netloom: handoff at {}: accept: {e}", path.display());
                std::thread::sleep(OFFER_POLL);
                continue;
            }
        };
        match hand_off(engine, &conn) {
            Ok(()) => {
                log::info!(
                    "netloom: sockets handed off at {}; draining",
                    path.display()
                );
                return;
            }
            Err(e) => log::warn!(
                "netloom: handoff at {} failed, still serving: {e}",
                path.display()
            ),
        }
    }
}

/// Steps 2 to 5 on the old process's side.
fn hand_off(engine: &Engine, conn: &UnixStream) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_write_timeout(Some(STEP_TIMEOUT))?;
    {
        let sockets = lock(&engine.sockets);
        let Some(sockets) = sockets.as_ref() else {
            return Err(io::Error::other("the engine has stopped"));
        };
        sockets.send(conn)?;
    }
    conn.set_read_timeout(Some(START_TIMEOUT))?;
    let mut answer = [0u8];
    (&*conn).read_exact(&mut answer)?;
    if answer[0] != SERVING {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the new process answered something else than `serving`",
        ));
    }
    // The offer's path is free before the new process hears `done`.
    if let Some(sockets) = lock(&engine.sockets).take() {
        sockets.handed_off();
    }
    // Draining before `done`: the new process's start returns to a drain.
    engine.drain();
    if let Err(e) = (&*conn).write_all(&[DONE]) {
        log::warn!("netloom: handoff: telling the new process we are done: {e}");
    }
    Ok(())
}

/// Sockets received from a running engine (steps 1 and 2 on the new
/// process's side), until [`Received::confirm`].
pub(crate) struct Received {
    conn: UnixStream,
    path: PathBuf,
    sockets: Vec<InheritedSocket>,
    /// Socket files of the Unix listeners taken: the new engine removes
    /// them when it stops, once it serves (not if it fails to start).
    socket_files: Vec<PathBuf>,
}

impl Received {
    /// Connects to `path` and takes the sockets offered there. `None` when
    /// no engine offers any (no socket file, or nobody listens on it).
    ///
    /// # Errors
    /// [`Error::InvalidAddress`] naming `path` when the exchange fails or the
    /// sockets are not what a netloom engine sends.
    pub(crate) fn from_path(path: &Path) -> Result<Option<Received>> {
        let shown = path.display().to_string();
        let invalid = |reason: String| Error::InvalidAddress {
            addr: shown.clone(),
            reason: format!("handoff: {reason}"),
        };
        let conn = match UnixStream::connect(path) {
            Ok(conn) => conn,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                log::info!("netloom: no engine offers its sockets at {shown}; binding");
                return Ok(None);
            }
            Err(e) => return Err(invalid(e.to_string())),
        };
        conn.set_read_timeout(Some(STEP_TIMEOUT))?;
        let mut hello = [0u8; 64];
        let (n, fds) =
            fd_passing::recv_fds(&conn, &mut hello).map_err(|e| invalid(e.to_string()))?;
        if &hello[..n] != HELLO {
            return Err(invalid(
                "the peer is not a netloom engine offering sockets".into(),
            ));
        }
        let sockets = fds
            .into_iter()
            .map(listen::classify)
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(invalid)?;
        Ok(Some(Received {
            conn,
            path: path.to_path_buf(),
            sockets,
            socket_files: Vec::new(),
        }))
    }

    /// Takes the received sockets bound to `addr` over `transport` (several
    /// for a `SO_REUSEPORT` group).
    pub(crate) fn take(&mut self, transport: Transport, addr: &Addr) -> Vec<InheritedSocket> {
        let (matched, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sockets)
            .into_iter()
            .partition(|s| s.transport == transport && s.addr == *addr);
        self.sockets = rest;
        match addr {
            Addr::Unix(UnixAddr::Path(path)) if !matched.is_empty() => {
                self.socket_files.push(path.clone())
            }
            _ => {}
        }
        matched
    }

    /// Steps 4 and 6, once `engine` serves: the old process stops
    /// offering and drains. Sockets no `bind` asked for are closed.
    pub(crate) fn confirm(mut self, engine: &Engine) {
        if let Some(sockets) = lock(&engine.sockets).as_mut() {
            for path in &self.socket_files {
                match SocketFile::claim(path) {
                    Ok(file) => sockets.keep_file(file),
                    Err(e) => log::warn!("netloom: handoff: {}: {e}", path.display()),
                }
            }
        }
        for unused in &self.sockets {
            log::warn!(
                "netloom: handed-off {:?} socket on {} is not bound here; closing it",
                unused.transport,
                unused.addr
            );
        }
        self.sockets.clear();
        let done = (&self.conn).write_all(&[SERVING]).and_then(|()| {
            let mut answer = [0u8];
            (&self.conn).read_exact(&mut answer)?;
            if answer[0] == DONE {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "unexpected answer",
                ))
            }
        });
        if let Err(e) = done {
            log::warn!(
                "netloom: handoff at {}: the old engine did not confirm: {e}",
                self.path.display()
            );
        }
    }
}
