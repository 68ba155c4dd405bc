//! What the async examples share: flags, listeners (one acceptor, or one
//! `SO_REUSEPORT` listener per loop), the accept loop, TLS (`--tls-cert`,
//! `--tls-key`, `--tls-self-signed`: the handshake runs in the
//! connection's task, bounded by `HANDSHAKE_TIMEOUT`) and a clean stop on
//! Ctrl-C or SIGTERM. Included by `echo_async.rs` and `http_async.rs` with
//! `#[path]`, next to `usage.rs` and `tls_flags.rs`; each passes its name,
//! default address, ALPN protocols and per-connection task.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use netloom::rt::net::{TcpListener, TcpStream};
use netloom::rt::{self, Handle, Runtime};

use crate::tls_flags::{Acceptor, TlsFlags, TLS_USAGE};

/// First and longest pause of the accept loop after an accept error.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a TLS client has to complete its handshake.
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A served connection: plain TCP, or TLS over it.
pub enum Served {
    /// A plain TCP stream.
    Plain(TcpStream),
    /// A TLS stream whose handshake has completed.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    Tls(Box<netloom::rt::net::TlsStream<TcpStream>>),
}

#[allow(dead_code, reason = "each async example uses a part of it")]
impl Served {
    /// Waits until a read would not block.
    pub async fn readable(&mut self) -> io::Result<()> {
        match self {
            Served::Plain(s) => s.readable().await,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            Served::Tls(s) => s.readable().await,
        }
    }

    /// Reads plaintext; 0 at the end of the stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Served::Plain(s) => s.read(buf).await,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            Served::Tls(s) => s.read(buf).await,
        }
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Served::Plain(s) => s.write_all(buf).await,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            Served::Tls(s) => s.write_all(buf).await,
        }
    }

    /// Ends the sending side (TLS: close_notify, then FIN); reading goes on.
    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Served::Plain(s) => s.shutdown(Shutdown::Write),
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            Served::Tls(s) => s.shutdown().await,
        }
    }

    /// The client's address (the TCP stream's peer).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Sets the read deadline of the TCP stream underneath.
    pub fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        self.tcp().set_read_deadline(at)
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Served::Plain(s) => s,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            Served::Tls(s) => s.get_ref(),
        }
    }
}

/// What one `--addr` asks for.
enum ListenOn {
    /// An address to bind.
    Bind(SocketAddr),
    /// An inherited listener: `systemd://`, `systemd://NAME` or `fd://N`.
    Inherit(String),
}

/// An example server: what it prints and how it serves one connection.
pub struct AsyncServer<F> {
    /// The example's name, for messages and usage.
    pub name: &'static str,
    /// The address served when no `--addr` is given.
    pub default_addr: &'static str,
    /// The ALPN protocols a TLS listener offers.
    pub alpn: &'static [&'static [u8]],
    /// For an example that closes idle connections: the default of its
    /// `--idle-timeout-ms` flag. `None`: no such flag.
    pub idle_timeout: Option<Duration>,
    /// The task run for each accepted connection, with the idle timeout
    /// (`None` when there is none or `--idle-timeout-ms 0` turned it off).
    pub serve: F,
}

impl<F, Fut> AsyncServer<F>
where
    F: Fn(Served, Option<Duration>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    /// Parses the flags (`--addr` repeatable, `--loops`, `--reuseport`,
    /// `--pin`, the TLS flags, and `--idle-timeout-ms` where offered),
    /// serves until a stop signal, then shuts down gracefully.
    pub fn run(self) {
        let mut tls = TlsFlags::default();
        let mut idle_timeout = self.idle_timeout;
        let mut addrs = Vec::new();
        let mut loops = 0;
        let mut reuseport = false;
        let mut pin = false;
        let mut backend = netloom::Backend::Auto;
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| self.usage(&format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--addr" => addrs.push(self.parse_addr(&value())),
                "--loops" => {
                    loops = value()
                        .parse()
                        .unwrap_or_else(|_| self.usage("--loops takes a number"))
                }
                "--idle-timeout-ms" if self.idle_timeout.is_some() => {
                    let ms: u64 = value()
                        .parse()
                        .unwrap_or_else(|_| self.usage("--idle-timeout-ms takes a number"));
                    idle_timeout = Some(Duration::from_millis(ms));
                }
                "--reuseport" => reuseport = true,
                "--pin" => pin = true,
                "--backend" => backend = crate::usage::parse_backend(&value(), |p| self.usage(p)),
                "-h" | "--help" => self.usage(""),
                other if tls.take(other, &mut value) => {}
                other => self.usage(&format!("unknown flag {other}")),
            }
        }
        if addrs.is_empty() {
            addrs.push(self.parse_addr(self.default_addr));
        }
        let acceptor = tls
            .acceptor(self.name, self.alpn)
            .unwrap_or_else(|e| self.fail(&e));
        let rt = Runtime::builder()
            .loops(loops)
            .pin_loops(pin)
            .backend(backend)
            .stop_on_signals(true)
            .shutdown_grace(Duration::from_secs(1))
            .build()
            .unwrap_or_else(|e| self.fail(&e.to_string()));
        let handle = rt.handle();
        rt.block_on(async {
            // Bound inside block_on, so that the address is printed once every
            // descriptor of the runtime (this thread's poller too) exists.
            for listen_on in addrs {
                let addr = match listen_on {
                    ListenOn::Bind(addr) => addr,
                    ListenOn::Inherit(url) => {
                        // One inherited socket: one acceptor, spreading connections.
                        let listener = TcpListener::inherit(&url)
                            .unwrap_or_else(|e| self.fail(&e.to_string()));
                        let bound = listener
                            .local_addr()
                            .unwrap_or_else(|e| self.fail(&e.to_string()));
                        rt::spawn_local(self.accept_loop(
                            listener,
                            false,
                            idle_timeout,
                            acceptor.clone(),
                        ));
                        println!("{}: listening on {bound} ({url})", self.name);
                        continue;
                    }
                };
                let first = self.bind(addr, reuseport);
                let bound = first
                    .local_addr()
                    .unwrap_or_else(|e| self.fail(&e.to_string()));
                if reuseport {
                    rt.spawn_on(
                        0,
                        self.accept_loop(first, true, idle_timeout, acceptor.clone()),
                    );
                    for i in 1..rt.loops() {
                        let listener = self.bind(bound, true);
                        rt.spawn_on(
                            i,
                            self.accept_loop(listener, true, idle_timeout, acceptor.clone()),
                        );
                    }
                } else {
                    rt::spawn_local(self.accept_loop(first, false, idle_timeout, acceptor.clone()));
                }
                println!(
                    "{}: listening on {bound} with {} loops",
                    self.name,
                    rt.loops()
                );
            }
            handle.stopped().await;
        });
        rt.shutdown();
    }

    /// Accepts until the runtime stops; `local` keeps each connection on the
    /// acceptor's loop (per-loop listeners), otherwise they are spread.
    fn accept_loop(
        &self,
        listener: TcpListener,
        local: bool,
        idle_timeout: Option<Duration>,
        acceptor: Option<Acceptor>,
    ) -> impl Future<Output = ()> {
        let (name, serve) = (self.name, self.serve);
        let idle_timeout = idle_timeout.filter(|t| !t.is_zero());
        async move {
            let handle = Handle::current();
            let mut backoff = ACCEPT_BACKOFF_MIN / 2;
            loop {
                match listener.accept().await {
                    Ok((stream, _peer)) => {
                        backoff = ACCEPT_BACKOFF_MIN / 2;
                        if let Err(e) = stream.set_nodelay(true) {
                            eprintln!("{name}: TCP_NODELAY: {e}");
                        }
                        let task = connection(stream, acceptor.clone(), name, serve, idle_timeout);
                        if local {
                            rt::spawn_local(task);
                        } else {
                            rt::spawn(task);
                        }
                    }
                    Err(_) if handle.is_stopping() => return,
                    Err(e) => {
                        // EMFILE and the like leave the listener ready: pause,
                        // not spin, and longer each time it fails again, as
                        // the callback engine's acceptor does, so that a
                        // descriptor shortage logs a line a second at most.
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                        eprintln!("{name}: accept: {e}; pausing it for {backoff:?}");
                        rt::sleep(backoff).await;
                    }
                }
            }
        }
    }

    /// `tcp://host:port` (also `tcp4://`, `tcp6://`, or a bare `host:port`),
    /// or an inherited listener (`systemd://`, `systemd://NAME`, `fd://N`).
    fn parse_addr(&self, url: &str) -> ListenOn {
        use std::net::ToSocketAddrs;
        let (family, rest) = match url.split_once("://") {
            Some(("systemd" | "fd", _)) => return ListenOn::Inherit(url.to_string()),
            Some(("tcp", rest)) => (None, rest),
            Some(("tcp4", rest)) => (Some(true), rest),
            Some(("tcp6", rest)) => (Some(false), rest),
            Some((scheme, _)) => self.usage(&format!("unknown scheme {scheme}")),
            None => (None, url),
        };
        rest.to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.find(|a| family.is_none_or(|v4| a.is_ipv4() == v4)))
            .map(ListenOn::Bind)
            .unwrap_or_else(|| self.usage(&format!("cannot resolve {url}")))
    }

    fn bind(&self, addr: SocketAddr, reuseport: bool) -> TcpListener {
        let bound = if reuseport {
            TcpListener::bind_reuseport(addr)
        } else {
            TcpListener::bind(addr)
        };
        bound.unwrap_or_else(|e| self.fail(&format!("cannot listen on {addr}: {e}")))
    }

    fn fail(&self, problem: &str) -> ! {
        eprintln!("{}: {problem}", self.name);
        std::process::exit(1);
    }

    fn usage(&self, problem: &str) -> ! {
        let idle_flag = if self.idle_timeout.is_some() {
            " [--idle-timeout-ms MS]"
        } else {
            ""
        };
        let text = format!(
            "usage: {} [--addr tcp://HOST:PORT|systemd://[NAME]|fd://N]... [--loops N] [--reuseport] [--pin]{idle_flag} {TLS_USAGE} {}",
            self.name,
            crate::usage::BACKEND_USAGE
        );
        crate::usage::exit_with_usage(self.name, &text, problem)
    }
}

/// One connection's task: the TLS handshake when `acceptor` is given
/// (bounded by `HANDSHAKE_TIMEOUT`; a failed one is logged and ends the
/// connection), then `serve`.
async fn connection<F, Fut>(
    stream: TcpStream,
    acceptor: Option<Acceptor>,
    name: &'static str,
    serve: F,
    idle_timeout: Option<Duration>,
) -> io::Result<()>
where
    F: Fn(Served, Option<Duration>) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let served = match acceptor {
        None => Served::Plain(stream),
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        Some(acceptor) => {
            stream.set_read_deadline(Some(Instant::now() + HANDSHAKE_TIMEOUT))?;
            match acceptor.accept(stream).await {
                Ok(tls) => {
                    tls.get_ref().set_read_deadline(None)?;
                    Served::Tls(Box::new(tls))
                }
                Err(e) => {
                    eprintln!("{name}: TLS handshake: {e}");
                    return Ok(());
                }
            }
        }
        #[cfg(not(any(feature = "tls-aws-lc-rs", feature = "tls-ring")))]
        Some(never) => {
            let _ = name;
            match never {}
        }
    };
    serve(served, idle_timeout).await
}
