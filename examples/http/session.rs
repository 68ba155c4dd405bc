//! One connection's HTTP exchange as a pure state machine: bytes in, answers
//! out. The netloom glue (`server.rs`) only moves bytes and time in and out.

use std::net::SocketAddr;

use crate::date::HTTP_DATE_LEN;
use crate::parse::{parse_head, Head, Limits, Parsed, Rejection, Version};

/// The body of `GET /plaintext`.
pub const PLAINTEXT: &[u8] = b"Hello, World!";
/// The message `GET /json` serializes.
pub const JSON_MESSAGE: &str = "Hello, World!";
/// The `Server` header value.
pub const SERVER_NAME: &[u8] = b"netloom";

/// What a connection carries from one read to the next.
#[derive(Debug, Default)]
pub struct Session {
    /// Body bytes of the current request not received yet; they are skipped
    /// as they arrive, never buffered.
    body_left: u64,
    /// The answer owed once that body has been skipped.
    owed: Option<Answer>,
    /// The client's address as the handler sees it (behind a balancer
    /// speaking the PROXY protocol: the client's, not the balancer's).
    client: Option<SocketAddr>,
    /// The server drains: the next answer says `Connection: close` and is
    /// the last.
    closing: bool,
}

impl Session {
    /// A session for a client at `client` (`None`: a Unix socket peer).
    pub fn for_client(client: Option<SocketAddr>) -> Session {
        Session {
            client,
            ..Session::default()
        }
    }

    /// Whether a request's head was read but its body is still arriving.
    pub fn is_mid_body(&self) -> bool {
        self.owed.is_some()
    }

    /// From now on, the next answer closes the connection (the server is
    /// draining for a restart or a stop), so a keep-alive client learns it
    /// from `Connection: close` instead of a connection cut mid-request.
    pub fn close_after_next_answer(&mut self) {
        self.closing = true;
    }

    /// `answer` as this session sends it.
    fn finish(&self, answer: Answer) -> Answer {
        Answer {
            keep_alive: answer.keep_alive && !self.closing,
            ..answer
        }
    }
}

/// What [`serve`] did with one batch of input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Input bytes consumed: whole requests and skipped body bytes. The rest
    /// is the start of a request, to be served when more bytes arrive.
    pub consumed: usize,
    /// Requests answered in this batch.
    pub answered: usize,
    /// Whether the connection must close once the answers are sent.
    pub close: bool,
}

/// What a request gets, decided when its head is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// 200 with `Hello, World!`.
    Plaintext,
    /// 200 with `{"message":"Hello, World!"}`.
    Json,
    /// 200 with the client's address (`GET /whoami`).
    WhoAmI(Option<SocketAddr>),
    /// 404: no such path.
    NotFound,
    /// 405: a known path with a method other than `GET` or `HEAD`.
    MethodNotAllowed,
    /// A refused head: its status (the connection then closes).
    Rejected(Rejection),
    /// 408: the request did not arrive in time (the connection then closes).
    Timeout,
}

/// The answer to one request: the reply and how to frame it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status and body.
    pub reply: Reply,
    /// The request was `HEAD`: headers only.
    pub head_only: bool,
    /// The connection stays open afterwards.
    pub keep_alive: bool,
    /// The request was HTTP/1.0, so keep-alive must be announced.
    pub http10: bool,
}

impl Answer {
    /// The answer to a well-formed request head from `client`.
    pub fn route(head: &Head<'_>, client: Option<SocketAddr>) -> Answer {
        let head_only = head.method == "HEAD";
        let readable = head_only || head.method == "GET";
        let reply = match head.path() {
            "/plaintext" if readable => Reply::Plaintext,
            "/json" if readable => Reply::Json,
            "/whoami" if readable => Reply::WhoAmI(client),
            "/plaintext" | "/json" | "/whoami" => Reply::MethodNotAllowed,
            _ => Reply::NotFound,
        };
        Answer {
            reply,
            head_only,
            keep_alive: head.keep_alive,
            http10: head.version == Version::Http10,
        }
    }

    /// A reply after which the connection closes (refusals, timeouts).
    pub fn closing(reply: Reply) -> Answer {
        Answer {
            reply,
            head_only: false,
            keep_alive: false,
            http10: false,
        }
    }

    /// Appends the full response to `out`.
    pub fn write(&self, date: &[u8; HTTP_DATE_LEN], out: &mut Vec<u8>) {
        let text = Body::Bytes;
        let (status, content_type, body): (&[u8], &[u8], Body) = match self.reply {
            Reply::Plaintext => (b"200 OK", b"text/plain", text(PLAINTEXT)),
            Reply::Json => (
                b"200 OK",
                b"application/json",
                Body::JsonMessage(JSON_MESSAGE),
            ),
            Reply::WhoAmI(client) => {
                let shown = client.map_or_else(|| "unix".to_string(), |a| a.to_string());
                (b"200 OK", b"text/plain", Body::Line(shown))
            }
            Reply::NotFound => (b"404 Not Found", b"text/plain", text(b"Not Found")),
            Reply::MethodNotAllowed => (
                b"405 Method Not Allowed",
                b"text/plain",
                text(b"Method Not Allowed"),
            ),
            Reply::Rejected(rejection) => {
                let (status, body) = rejection_status(rejection);
                (status, b"text/plain", text(body))
            }
            Reply::Timeout => (
                b"408 Request Timeout",
                b"text/plain",
                text(b"Request Timeout"),
            ),
        };
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status);
        out.extend_from_slice(b"\r\nServer: ");
        out.extend_from_slice(SERVER_NAME);
        out.extend_from_slice(b"\r\nDate: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(content_type);
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_decimal(out, body.len());
        if self.reply == Reply::MethodNotAllowed {
            out.extend_from_slice(b"\r\nAllow: GET, HEAD");
        }
        if !self.keep_alive {
            out.extend_from_slice(b"\r\nConnection: close");
        } else if self.http10 {
            out.extend_from_slice(b"\r\nConnection: keep-alive");
        }
        out.extend_from_slice(b"\r\n\r\n");
        if !self.head_only {
            body.push(out);
        }
    }
}

/// Status line text and body of each refusal.
fn rejection_status(rejection: Rejection) -> (&'static [u8], &'static [u8]) {
    match rejection {
        Rejection::Malformed => (b"400 Bad Request", b"Bad Request"),
        Rejection::BodyTooLarge => (b"413 Content Too Large", b"Content Too Large"),
        Rejection::UriTooLong => (b"414 URI Too Long", b"URI Too Long"),
        Rejection::HeadTooLarge => (
            b"431 Request Header Fields Too Large",
            b"Request Header Fields Too Large",
        ),
        Rejection::TransferEncoding => (b"501 Not Implemented", b"Not Implemented"),
        Rejection::VersionNotSupported => (
            b"505 HTTP Version Not Supported",
            b"HTTP Version Not Supported",
        ),
    }
}

/// A response body.
enum Body {
    /// Fixed bytes.
    Bytes(&'static [u8]),
    /// `{"message":<message>}`, serialized for each response: TechEmpower's
    /// rules ask for that rather than a constant, and this one object is
    /// small enough not to need a JSON library.
    JsonMessage(&'static str),
    /// A line of text: `text` and `\n`.
    Line(String),
}

impl Body {
    const JSON_PREFIX: &'static [u8] = b"{\"message\":\"";
    const JSON_SUFFIX: &'static [u8] = b"\"}";

    fn len(&self) -> usize {
        match self {
            Body::Bytes(bytes) => bytes.len(),
            Body::Line(text) => text.len() + 1,
            Body::JsonMessage(message) => {
                let escaped: usize = message.bytes().map(|b| json_escape(b).1).sum();
                Self::JSON_PREFIX.len() + escaped + Self::JSON_SUFFIX.len()
            }
        }
    }

    fn push(&self, out: &mut Vec<u8>) {
        match self {
            Body::Bytes(bytes) => out.extend_from_slice(bytes),
            Body::Line(text) => {
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
            Body::JsonMessage(message) => {
                out.extend_from_slice(Self::JSON_PREFIX);
                for b in message.bytes() {
                    let (escaped, len) = json_escape(b);
                    out.extend_from_slice(&escaped[..len]);
                }
                out.extend_from_slice(Self::JSON_SUFFIX);
            }
        }
    }
}

/// One byte of a JSON string, escaped if it must be (RFC 8259 §7): the
/// escaped bytes and how many of them there are.
fn json_escape(b: u8) -> ([u8; 6], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' | b'\\' => ([b'\\', b, 0, 0, 0, 0], 2),
        0..=0x1f => {
            let (high, low) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
            ([b'\\', b'u', b'0', b'0', high, low], 6)
        }
        _ => ([b, 0, 0, 0, 0, 0], 1),
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Serves every complete request at the front of `input`, in order,
/// appending their responses to `out` (so a pipelined batch becomes one
/// write). Stops after the first answer that closes the connection.
///
/// A request with a body is answered once its last body byte is consumed;
/// body bytes are skipped as they arrive, so the session never holds more
/// than one partial head (at most [`Limits::max_head`] bytes).
pub fn serve(
    session: &mut Session,
    input: &[u8],
    limits: &Limits,
    date: &[u8; HTTP_DATE_LEN],
    out: &mut Vec<u8>,
) -> Batch {
    let mut batch = Batch {
        consumed: 0,
        answered: 0,
        close: false,
    };
    loop {
        if let Some(answer) = session.owed {
            let available = (input.len() - batch.consumed) as u64;
            let skipped = session.body_left.min(available);
            batch.consumed += skipped as usize;
            session.body_left -= skipped;
            if session.body_left > 0 {
                return batch;
            }
            session.owed = None;
            let answer = session.finish(answer);
            answer.write(date, out);
            batch.answered += 1;
            if !answer.keep_alive {
                batch.close = true;
                return batch;
            }
        }
        let rest = &input[batch.consumed..];
        if rest.is_empty() {
            return batch;
        }
        match parse_head(rest, limits) {
            Ok(Parsed::Complete { head, len }) => {
                batch.consumed += len;
                let answer = Answer::route(&head, session.client);
                if head.content_length > 0 {
                    if head.expect_continue {
                        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    session.body_left = head.content_length;
                    session.owed = Some(answer);
                    continue;
                }
                let answer = session.finish(answer);
                answer.write(date, out);
                batch.answered += 1;
                if !answer.keep_alive {
                    batch.close = true;
                    return batch;
                }
            }
            Ok(Parsed::Partial) => return batch,
            Err(rejection) => {
                Answer::closing(Reply::Rejected(rejection)).write(date, out);
                batch.answered += 1;
                batch.close = true;
                return batch;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; HTTP_DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn plaintext_response() -> Vec<u8> {
        let mut out = Vec::new();
        Answer {
            reply: Reply::Plaintext,
            head_only: false,
            keep_alive: true,
            http10: false,
        }
        .write(DATE, &mut out);
        out
    }

    #[test]
    fn writes_the_plaintext_response() {
        assert_eq!(
            plaintext_response(),
            b"HTTP/1.1 200 OK\r\nServer: netloom\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
        );
    }

    #[test]
    fn whoami_answers_the_client_address() {
        let client = "127.0.0.2:4000".parse().ok();
        let mut session = Session::for_client(client);
        let mut out = Vec::new();
        let input =
            b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\nPOST /whoami HTTP/1.1\r\nHost: x\r\n\r\n";
        serve(&mut session, input, &Limits::default(), DATE, &mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("Content-Length: 15\r\n\r\n127.0.0.2:4000\n"),
            "{out}"
        );
        assert!(out.contains("HTTP/1.1 405 Method Not Allowed"), "{out}");
    }

    #[test]
    fn writes_the_json_response() {
        let mut out = Vec::new();
        Answer::closing(Reply::Json).write(DATE, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nServer: netloom\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Content-Type: application/json\r\nContent-Length: 27\r\nConnection: close\r\n\r\n\
              {\"message\":\"Hello, World!\"}"
        );
    }

    #[test]
    fn escapes_json_strings() {
        let body = Body::JsonMessage("a\"b\\c\n\u{1f}é");
        let mut out = Vec::new();
        body.push(&mut out);
        assert_eq!(out, r#"{"message":"a\"b\\c\u000a\u001fé"}"#.as_bytes());
        assert_eq!(body.len(), out.len());
    }

    #[test]
    fn answers_a_pipelined_batch_in_order() {
        let mut input = Vec::new();
        for path in ["/plaintext", "/json", "/nope", "/plaintext"] {
            input.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        input.extend_from_slice(b"GET /plaintext HT"); // the start of the next one
        let mut session = Session::default();
        let mut out = Vec::new();
        let batch = serve(&mut session, &input, &Limits::default(), DATE, &mut out);
        assert_eq!(batch.answered, 4);
        assert_eq!(batch.consumed, input.len() - 17);
        assert!(!batch.close);
        let text = String::from_utf8(out).unwrap();
        let statuses: Vec<&str> = text.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
        assert_eq!(statuses, ["200", "200", "404", "200"]);
        assert!(text.ends_with("Hello, World!"));
    }

    #[test]
    fn skips_bodies_across_batches_and_answers_after_them() {
        let mut session = Session::default();
        let mut out = Vec::new();
        let limits = Limits::default();
        let head = b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123";
        let batch = serve(&mut session, head, &limits, DATE, &mut out);
        assert_eq!(batch.consumed, head.len());
        assert_eq!(batch.answered, 0);
        assert!(session.is_mid_body());
        assert!(out.is_empty());
        let batch = serve(&mut session, b"4567", &limits, DATE, &mut out);
        assert_eq!((batch.consumed, batch.answered), (4, 0));
        let rest = b"89GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
        let batch = serve(&mut session, rest, &limits, DATE, &mut out);
        assert_eq!((batch.consumed, batch.answered), (rest.len(), 2));
        assert!(!session.is_mid_body());
        assert!(out.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
        assert!(out.ends_with(&plaintext_response()));
    }

    #[test]
    fn sends_100_continue_before_an_expected_body() {
        let mut session = Session::default();
        let mut out = Vec::new();
        let input =
            b"PUT /json HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        serve(&mut session, input, &Limits::default(), DATE, &mut out);
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
        out.clear();
        let batch = serve(&mut session, b"{}", &Limits::default(), DATE, &mut out);
        assert_eq!(batch.answered, 1);
        assert!(out.starts_with(b"HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(String::from_utf8_lossy(&out).contains("\r\nAllow: GET, HEAD\r\n"));
    }

    #[test]
    fn a_draining_session_closes_after_its_next_answer() {
        let mut session = Session::default();
        let (mut out, limits) = (Vec::new(), Limits::default());
        let first = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
        let batch = serve(&mut session, first, &limits, DATE, &mut out);
        assert!(!batch.close);
        session.close_after_next_answer();
        out.clear();
        let two = [&first[..], &first[..]].concat();
        let batch = serve(&mut session, &two, &limits, DATE, &mut out);
        assert_eq!(
            (batch.answered, batch.consumed, batch.close),
            (1, first.len(), true)
        );
        assert!(String::from_utf8_lossy(&out).contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn stops_at_connection_close() {
        let input = b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\
                      GET /json HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut out = Vec::new();
        let batch = serve(
            &mut Session::default(),
            input,
            &Limits::default(),
            DATE,
            &mut out,
        );
        assert_eq!(batch.answered, 1);
        assert!(batch.close);
        assert!(String::from_utf8_lossy(&out).contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn answers_a_refusal_and_closes() {
        let cases: [(&[u8], &str); 4] = [
            (b"BROKEN\r\n\r\n", "400 Bad Request"),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                "501 Not Implemented",
            ),
            (b"GET / HTTP/3.0\r\n\r\n", "505 HTTP Version Not Supported"),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
                "413 Content Too Large",
            ),
        ];
        for (input, status) in cases {
            let mut out = Vec::new();
            let batch = serve(
                &mut Session::default(),
                input,
                &Limits::default(),
                DATE,
                &mut out,
            );
            assert!(batch.close);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{text}"
            );
            assert!(text.contains("\r\nConnection: close\r\n"));
        }
    }

    #[test]
    fn head_requests_get_headers_only() {
        let mut out = Vec::new();
        serve(
            &mut Session::default(),
            b"HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
            &Limits::default(),
            DATE,
            &mut out,
        );
        assert!(out.ends_with(b"Content-Length: 13\r\n\r\n"));
    }

    #[test]
    fn http10_keep_alive_is_announced() {
        let mut out = Vec::new();
        let batch = serve(
            &mut Session::default(),
            b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            &Limits::default(),
            DATE,
            &mut out,
        );
        assert!(!batch.close);
        assert!(String::from_utf8_lossy(&out).contains("\r\nConnection: keep-alive\r\n"));
    }

    #[test]
    fn writes_decimals() {
        for n in [0, 7, 10, 13, 99_999, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
