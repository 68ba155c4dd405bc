// cargo run --release --example http_async -- --addr tcp://127.0.0.1:8080 --loops 2 [--reuseport] [--pin] [--idle-timeout-ms 60000] [--tls-self-signed]
//! The `http` example's HTTP/1.1 server on the async API, one task per
//! connection: the same request parser and exchange (`http/parse.rs`,
//! `http/session.rs`), so both answer, and refuse, exactly the same input.
//!
//! - `GET /plaintext`: `Hello, World!`; `GET /json`:
//!   `{"message":"Hello, World!"}`; `HEAD` of both; 404 and 405 otherwise,
//!   and the connection stays.
//! - Pipelining: all complete requests of one read are answered in order
//!   with one write. Bodies by `Content-Length` (up to 1 MiB) are skipped as
//!   they arrive; `Expect: 100-continue` is answered at once.
//! - Refusals, each followed by a close: 400 malformed (two different
//!   `Content-Length`s, no `Host` or two, space before a colon, control bytes
//!   in a field, ...), 413, 414, 431, 501 any `Transfer-Encoding`, 505. After
//!   a final answer the connection half-closes and discards what the client
//!   still sends for up to 2 s, so the kernel does not answer those bytes
//!   with a reset that could destroy the answer.
//! - A connection that completes no request for `--idle-timeout-ms`
//!   (default 60000; 0 turns it off) is closed, with a 408 if it was half
//!   way through one, whether it is silent or trickles bytes: a read
//!   deadline on the stream.
//!
//! - TLS: `--tls-cert PEM --tls-key PEM` or `--tls-self-signed`, with the
//!   `tls` feature, offering ALPN `http/1.1`.
//!
//! Try: `curl -i http://127.0.0.1:8080/plaintext`.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support/async_server.rs"]
mod async_server;
#[path = "http/date.rs"]
mod date;
#[path = "http/parse.rs"]
mod parse;
#[path = "http/session.rs"]
mod session;
#[path = "support/tls_flags.rs"]
mod tls_flags;
#[path = "support/usage.rs"]
mod usage;

use async_server::Served;
use date::{cached_http_date, HTTP_DATE_LEN};
use parse::Limits;
use session::{Answer, Reply, Session};

/// First size of a connection's read buffer (a pipelined batch of typical
/// requests fits); it grows up to [`Limits::max_head`] for a large head.
/// Bodies are skipped as they arrive, so nothing larger is ever buffered.
const READ_BUF: usize = 4 * 1024;
/// How long a connection that was told it closes keeps reading (and
/// discarding) what the client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// The `Date` header value for this second.
fn date() -> [u8; HTTP_DATE_LEN] {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    cached_http_date(now)
}

/// Gives the connection `idle_timeout` from now to complete its next
/// request. Re-armed after each read that completes one, not after every
/// read, so a peer trickling in a request byte by byte is closed as well.
fn arm_idle_deadline(stream: &Served, idle_timeout: Option<Duration>) -> io::Result<()> {
    match idle_timeout {
        Some(timeout) => stream.set_read_deadline(Some(Instant::now() + timeout)),
        None => Ok(()),
    }
}

/// Ends a connection whose last answer was written: half-closes, then
/// discards input until the client closes or [`LINGER`] passes. Closing at
/// once with the client's bytes unread would make the kernel send a reset,
/// which can destroy the answer before the client reads it.
async fn linger(mut stream: Served) -> io::Result<()> {
    stream.shutdown_write().await?;
    stream.set_read_deadline(Some(Instant::now() + LINGER))?;
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

async fn serve(mut stream: Served, idle_timeout: Option<Duration>) -> io::Result<()> {
    let limits = Limits::default();
    let mut session = Session::for_client(stream.peer_addr().ok());
    let mut inbound = vec![0u8; READ_BUF];
    let mut filled = 0;
    let mut out = Vec::new();
    arm_idle_deadline(&stream, idle_timeout)?;
    loop {
        if filled == inbound.len() {
            // The parser refuses a head over `max_head` before it fills a
            // buffer that large, so growing stops there.
            inbound.resize((inbound.len() * 2).min(limits.max_head + 1), 0);
        }
        let n = match stream.read(&mut inbound[filled..]).await {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                // Idle for the whole timeout: close; half way through a
                // request: say so first.
                if filled > 0 || session.is_mid_body() {
                    Answer::closing(Reply::Timeout).write(&date(), &mut out);
                    stream.write_all(&out).await?;
                    return linger(stream).await;
                }
                return Ok(());
            }
            read => read?,
        };
        if n == 0 {
            return Ok(());
        }
        filled += n;
        if netloom::rt::Handle::current().is_stopping() {
            // Stopping within its grace: answer this request, then close.
            session.close_after_next_answer();
        }
        let batch = session::serve(&mut session, &inbound[..filled], &limits, &date(), &mut out);
        // Every answer to this read goes out in one write.
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if batch.close {
            return linger(stream).await;
        }
        if batch.answered > 0 {
            arm_idle_deadline(&stream, idle_timeout)?;
        }
        inbound.copy_within(batch.consumed..filled, 0);
        filled -= batch.consumed;
    }
}

fn main() {
    async_server::AsyncServer {
        name: "http_async",
        default_addr: "tcp://127.0.0.1:8080",
        alpn: &[b"http/1.1"],
        idle_timeout: Some(Duration::from_secs(60)),
        serve,
    }
    .run();
}
