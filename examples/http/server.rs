//! The netloom side of the HTTP server: the handler that feeds each read to
//! the connection's [`Session`], the cached `Date`, and the timeouts.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netloom::{Action, Conn, Engine, Handler, Options};

use crate::date::{cached_http_date, HTTP_DATE_LEN};
use crate::parse::Limits;
use crate::session::{serve, Answer, Reply, Session};

/// How long a connection that was told it closes keeps reading (and
/// discarding) what the client still sends, so the kernel does not answer
/// those bytes with a reset that could destroy the response in flight.
const LINGER: Duration = Duration::from_secs(2);
/// A loop's response buffer is given back to the allocator when a batch grew
/// it past this, so one burst does not pin its memory.
const KEPT_OUTBOUND_CAPACITY: usize = 256 * 1024;

thread_local! {
    /// Each loop's response buffer: a whole pipelined batch is built here and
    /// written with one `write`.
    static OUTBOUND: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// An HTTP/1.1 server for the TechEmpower plaintext and JSON tests.
///
/// The `Date` header is refreshed by the engine's ticker (`on_tick`, loop 0):
/// it publishes the current Unix second in one atomic, and each loop formats
/// the 29-byte string again only when that second changed
/// ([`cached_http_date`]). No thread of its own, no lock, and the shared
/// cache line is written once a second.
pub struct HttpServer {
    limits: Limits,
    request_timeout: Duration,
    /// Unix seconds the `Date` header shows, published by the ticker.
    date_secs: AtomicU64,
}

/// Per-connection state.
#[derive(Debug, Default)]
pub struct HttpConn {
    session: Session,
    /// When the request now arriving started to arrive; `None` between
    /// requests.
    request_started: Option<Instant>,
    /// When the connection began its lingering close (see [`LINGER`]).
    lingering_since: Option<Instant>,
}

impl HttpServer {
    /// A server that refuses requests beyond `limits` and closes connections
    /// whose request (head and body) takes longer than `request_timeout` to
    /// arrive.
    pub fn new(limits: Limits, request_timeout: Duration) -> Self {
        HttpServer {
            limits,
            request_timeout,
            date_secs: AtomicU64::new(unix_now().as_secs()),
        }
    }

    /// The engine options this server needs: the ticker for `Date`, and an
    /// idle timeout that closes silent connections (together with the
    /// request timeout, which closes clients that drip bytes: slowloris).
    pub fn options(loops: usize, idle_timeout: Duration) -> Options {
        Options::default()
            .loops(loops)
            .ticker(true)
            .idle_timeout(Some(idle_timeout))
    }

    fn date(&self) -> [u8; HTTP_DATE_LEN] {
        cached_http_date(self.date_secs.load(Ordering::Relaxed))
    }

    /// Half-closes after the answers already written, then discards input
    /// until the client closes, [`LINGER`] passes, or the idle timeout fires.
    fn linger(conn: &mut Conn<'_, HttpConn>) -> Action {
        conn.discard(usize::MAX);
        conn.shutdown_write();
        conn.context_mut().lingering_since = Some(Instant::now());
        Action::None
    }
}

impl Handler for HttpServer {
    type Context = HttpConn;

    fn on_open(&self, conn: &mut Conn<'_, HttpConn>) -> Action {
        // Behind a balancer speaking the PROXY protocol: the client's address.
        let client = conn.peer_addr().inet();
        conn.context_mut().session = Session::for_client(client);
        Action::None
    }

    fn on_tick(&self, _: &Engine) -> (Duration, Action) {
        let now = unix_now();
        self.date_secs.store(now.as_secs(), Ordering::Relaxed);
        // Fire again just after the next second begins, so `Date` turns over
        // on time rather than up to a second late.
        let to_next_second =
            Duration::from_secs(1) - Duration::from_nanos(now.subsec_nanos().into());
        (to_next_second + Duration::from_millis(1), Action::None)
    }

    fn on_traffic(&self, conn: &mut Conn<'_, HttpConn>) -> Action {
        if let Some(since) = conn.context().lingering_since {
            conn.discard(usize::MAX);
            return if since.elapsed() >= LINGER {
                Action::Close
            } else {
                Action::None
            };
        }
        let date = self.date();
        OUTBOUND.with_borrow_mut(|out| {
            out.clear();
            // The session moves out while `peek` borrows the connection.
            let mut session = std::mem::take(&mut conn.context_mut().session);
            if conn.is_draining() {
                session.close_after_next_answer();
            }
            let batch = serve(
                &mut session,
                conn.peek(usize::MAX),
                &self.limits,
                &date,
                out,
            );
            conn.discard(batch.consumed);
            let mid_request = session.is_mid_body() || conn.inbound_len() > 0;
            let ctx = conn.context_mut();
            ctx.session = session;
            let mut close = batch.close;
            if !mid_request || close {
                ctx.request_started = None;
            } else {
                // Only an unfinished request reads the clock.
                let now = Instant::now();
                match ctx.request_started {
                    Some(started) if batch.answered == 0 => {
                        if now.duration_since(started) > self.request_timeout {
                            Answer::closing(Reply::Timeout).write(&date, out);
                            close = true;
                        }
                    }
                    _ => ctx.request_started = Some(now),
                }
            }
            let written = out.is_empty() || conn.write(out).is_ok();
            if out.capacity() > KEPT_OUTBOUND_CAPACITY {
                *out = Vec::new();
            }
            match (written, close) {
                (false, _) => Action::Close,
                (true, true) => Self::linger(conn),
                (true, false) => Action::None,
            }
        })
    }
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
