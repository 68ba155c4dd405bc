//! HTTP/1.1 request heads (RFC 9112), parsed from a byte slice: no I/O, no
//! allocation, so every rule here is tested without a socket.
//!
//! The parser is deliberately strict where leniency lets two parsers disagree
//! about where a request ends (request smuggling): no whitespace before a
//! header's colon, no obsolete line folding, one `Content-Length` value, and
//! any `Transfer-Encoding` is refused. It is lenient where that is harmless:
//! a bare `LF` ends a line as well as `CRLF`, and empty lines before the
//! request line are skipped (RFC 9112 §2.2).

/// Bounds on what one request may claim, so a client cannot make the server
/// buffer or wait without limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of a request head: request line, header fields and the
    /// empty line that ends them (414 or 431 past it).
    pub max_head: usize,
    /// Most header fields in one request (431 past it).
    pub max_headers: usize,
    /// Largest `Content-Length` accepted (413 past it). Bodies are skipped
    /// as they arrive, never buffered whole.
    pub max_body: u64,
}

impl Default for Limits {
    /// 8 KiB of head and 100 header fields (what nginx and Node accept by
    /// default), bodies up to 1 MiB.
    fn default() -> Self {
        Limits {
            max_head: 8 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
        }
    }
}

/// The protocol version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the client
    /// asked for `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: the connection stays open unless either side says `close`.
    Http11,
}

/// A parsed request head, borrowing from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    /// The method token, case-sensitive (`GET`, `HEAD`, ...).
    pub method: &'a str,
    /// The request target as sent (`/plaintext`, `/json?x=1`, `*`, ...).
    pub target: &'a str,
    /// The protocol version.
    pub version: Version,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// Body bytes that follow the head (0 without `Content-Length`).
    pub content_length: u64,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
}

impl Head<'_> {
    /// The target's path, without the query string.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }
}

/// Why a request head was refused. Each answer is followed by a close: after
/// a refused head the server no longer knows where the next request starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The request line or a header field breaks the grammar (400).
    Malformed,
    /// `Content-Length` is larger than [`Limits::max_body`] (413).
    BodyTooLarge,
    /// The request line alone does not fit in [`Limits::max_head`] (414).
    UriTooLong,
    /// The head does not fit in [`Limits::max_head`], or has more than
    /// [`Limits::max_headers`] fields (431).
    HeadTooLarge,
    /// The request has a `Transfer-Encoding`, which this server does not
    /// implement (501).
    TransferEncoding,
    /// A well-formed version other than 1.0 and 1.1 (505).
    VersionNotSupported,
}

/// The outcome of [`parse_head`] on a buffer that holds no error (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A complete head; it and everything before it take `len` bytes.
    Complete {
        /// The request head.
        head: Head<'a>,
        /// Bytes the head occupies at the front of the input.
        len: usize,
    },
    /// The head is not complete: wait for more bytes.
    Partial,
}

/// Parses one request head from the front of `input`.
///
/// # Errors
/// A [`Rejection`] as soon as the bytes received prove the request bad; a
/// head that could still become valid is [`Parsed::Partial`].
pub fn parse_head<'a>(input: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, Rejection> {
    let mut lines = Lines {
        input,
        pos: 0,
        max_head: limits.max_head,
    };
    let request_line = loop {
        match lines.next(Rejection::UriTooLong)? {
            None => return Ok(Parsed::Partial),
            Some(b"") => continue,
            Some(line) => break line,
        }
    };
    let (method, target, version) = parse_request_line(request_line)?;

    let mut fields = Fields::default();
    let mut count = 0;
    loop {
        let line = match lines.next(Rejection::HeadTooLarge)? {
            None => return Ok(Parsed::Partial),
            Some(line) => line,
        };
        if line.is_empty() {
            break;
        }
        count += 1;
        if count > limits.max_headers {
            return Err(Rejection::HeadTooLarge);
        }
        let (name, value) = parse_field(line)?;
        fields.record(name, value)?;
    }

    if fields.transfer_encoding {
        return Err(Rejection::TransferEncoding);
    }
    if version == Version::Http11 && fields.hosts != 1 {
        // RFC 9112 §3.2: a 1.1 request without exactly one Host is a 400.
        return Err(Rejection::Malformed);
    }
    let content_length = fields.content_length.unwrap_or(0);
    if content_length > limits.max_body {
        return Err(Rejection::BodyTooLarge);
    }
    let keep_alive = match version {
        Version::Http11 => !fields.close,
        Version::Http10 => fields.keep_alive && !fields.close,
    };
    Ok(Parsed::Complete {
        head: Head {
            method,
            target,
            version,
            keep_alive,
            content_length,
            expect_continue: fields.expect_continue,
        },
        len: lines.pos,
    })
}

/// Splits the head into lines, never looking past `max_head` bytes.
struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
    max_head: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its `CRLF` or `LF`; `None` when it is not
    /// complete yet, `too_long` when it cannot end within the head limit.
    fn next(&mut self, too_long: Rejection) -> Result<Option<&'a [u8]>, Rejection> {
        let window = &self.input[..self.input.len().min(self.max_head)];
        let rest = &window[self.pos.min(window.len())..];
        match find_newline(rest) {
            Some(end) => {
                let line = &rest[..end];
                self.pos += end + 1;
                Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
            }
            None if self.input.len() >= self.max_head => Err(too_long),
            None => Ok(None),
        }
    }
}

fn parse_request_line(line: &[u8]) -> Result<(&str, &str, Version), Rejection> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
        return Err(Rejection::Malformed);
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Rejection::Malformed);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Rejection::VersionNotSupported)
        }
        _ => return Err(Rejection::Malformed),
    };
    // Both are ASCII, checked above.
    let as_str = |b| std::str::from_utf8(b).map_err(|_| Rejection::Malformed);
    Ok((as_str(method)?, as_str(target)?, version))
}

/// `name: value` with the value's surrounding whitespace trimmed.
fn parse_field(line: &[u8]) -> Result<(&[u8], &[u8]), Rejection> {
    // The name is the run of token bytes, and the byte that ends it must be
    // the colon: one pass finds and checks it. An empty name, whitespace
    // before the colon, or a line starting with whitespace (obsolete
    // folding) all fail.
    let colon = line
        .iter()
        .position(|&b| !is_token(b))
        .filter(|&at| at > 0 && line[at] == b':')
        .ok_or(Rejection::Malformed)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if !is_field_value(value) {
        return Err(Rejection::Malformed);
    }
    Ok((name, value.trim_ascii()))
}

/// What the header fields say that the server acts on.
#[derive(Default)]
struct Fields {
    content_length: Option<u64>,
    transfer_encoding: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    hosts: usize,
}

impl Fields {
    fn record(&mut self, name: &[u8], value: &[u8]) -> Result<(), Rejection> {
        // Most fields are none of these: the length rules them out without
        // a comparison.
        if !matches!(name.len(), 4 | 6 | 10 | 14 | 17) {
            return Ok(());
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_content_length(value)?;
            // Repeats are allowed only with the same value (RFC 9110 §8.6).
            if self.content_length.is_some_and(|seen| seen != length) {
                return Err(Rejection::Malformed);
            }
            self.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"expect") {
            self.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
        Ok(())
    }
}

/// `1*DIGIT`; a number too large for `u64` saturates (and is then refused as
/// too large rather than as malformed).
fn parse_content_length(value: &[u8]) -> Result<u64, Rejection> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::Malformed);
    }
    Ok(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

// Word-at-a-time scans: the head's bytes are read eight at a time, and only
// a word that may hold what is looked for is looked at byte by byte.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether some byte of `word` is below `n` (`n` at most 128; exact as a
/// yes/no answer, whichever byte it is).
fn has_byte_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0
}

/// Whether some byte of `word` equals `b`.
fn has_byte(word: u64, b: u8) -> bool {
    has_byte_below(word ^ (ONES * u64::from(b)), 1)
}

fn words(bytes: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
    bytes.chunks_exact(8).enumerate().map(|(i, chunk)| {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        (i * 8, u64::from_le_bytes(word))
    })
}

/// The index of the first `\n` in `bytes`.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    let whole = bytes.len() / 8 * 8;
    let start = words(bytes)
        .find(|&(_, word)| has_byte(word, b'\n'))
        .map_or(whole, |(at, _)| at);
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| start + i)
}

/// Whether every byte of a field value is allowed (see `FIELD_VALUE`): a
/// word with no control byte and no DEL is, without a table look-up.
fn is_field_value(value: &[u8]) -> bool {
    let allowed = |bytes: &[u8]| bytes.iter().all(|&b| FIELD_VALUE[usize::from(b)]);
    let whole = value.len() / 8 * 8;
    words(value).all(|(at, word)| {
        !(has_byte_below(word, 0x20) || has_byte(word, 0x7f)) || allowed(&value[at..at + 8])
    }) && allowed(&value[whole..])
}

/// Byte classes as tables: the parser looks at every byte of the head, and
/// one load per byte beats a chain of comparisons.
macro_rules! byte_class {
    (|$b:ident| $member:expr) => {{
        let mut table = [false; 256];
        let mut i = 0;
        while i < 256 {
            let $b = i as u8;
            table[i] = $member;
            i += 1;
        }
        table
    }};
}

const TOKEN: [bool; 256] = byte_class!(|b| {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
});
/// A field value's bytes: visible ASCII, space, tab, and obs-text.
const FIELD_VALUE: [bool; 256] =
    byte_class!(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Parsed<'_>, Rejection> {
        parse_head(input, &Limits::default())
    }

    fn complete(input: &[u8]) -> (Head<'_>, usize) {
        match parse(input) {
            Ok(Parsed::Complete { head, len }) => (head, len),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn word_scans_agree_with_byte_scans() {
        for len in 0..40 {
            for at in 0..len {
                for &b in &[b'\n', b'\t', 0x00, 0x1f, 0x7f, 0x80, 0xff, b'a'] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = b;
                    let newline = bytes.iter().position(|&c| c == b'\n');
                    assert_eq!(find_newline(&bytes), newline, "{bytes:?}");
                    let valid = bytes.iter().all(|&c| FIELD_VALUE[usize::from(c)]);
                    assert_eq!(is_field_value(&bytes), valid, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn byte_tables_match_the_rfc_classes() {
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_token(b), tchar, "tchar {b}");
            let value = b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
            assert_eq!(FIELD_VALUE[usize::from(b)], value, "field value {b}");
        }
    }

    #[test]
    fn parses_a_minimal_request() {
        let input = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
        let (head, len) = complete(input);
        assert_eq!(len, input.len());
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/plaintext");
        assert_eq!(head.version, Version::Http11);
        assert!(head.keep_alive);
        assert_eq!(head.content_length, 0);
        assert!(!head.expect_continue);
    }

    #[test]
    fn stops_at_the_end_of_the_head() {
        let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n";
        let (head, len) = complete(input);
        assert_eq!(head.target, "/a");
        assert_eq!(&input[len..], b"GET /b HTTP/1.1\r\n");
    }

    #[test]
    fn every_prefix_of_a_request_is_partial() {
        let input = b"POST /json?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
        for cut in 0..input.len() {
            assert_eq!(parse(&input[..cut]), Ok(Parsed::Partial), "cut at {cut}");
        }
        let (head, _) = complete(input);
        assert_eq!(head.path(), "/json");
        assert_eq!(head.content_length, 3);
    }

    #[test]
    fn accepts_bare_lf_and_leading_empty_lines() {
        let input = b"\r\n\nGET / HTTP/1.1\nHost: x\n\n";
        let (head, len) = complete(input);
        assert_eq!(head.target, "/");
        assert_eq!(len, input.len());
    }

    #[test]
    fn trims_field_values_and_ignores_name_case() {
        let (head, _) = complete(
            b"GET / HTTP/1.1\r\nhOsT:x\r\nCONTENT-LENGTH: \t 12 \t\r\nconnection: Close\r\n\r\n",
        );
        assert_eq!(head.content_length, 12);
        assert!(!head.keep_alive);
    }

    #[test]
    fn keep_alive_follows_version_and_connection_options() {
        let cases: [(&[u8], bool); 6] = [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade, close\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
                false,
            ),
        ];
        for (input, keep_alive) in cases {
            let (head, _) = complete(input);
            assert_eq!(
                head.keep_alive,
                keep_alive,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn sees_expect_continue() {
        let (head, _) = complete(
            b"PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
        );
        assert!(head.expect_continue);
    }

    #[test]
    fn refuses_malformed_request_lines() {
        let lines: [&[u8]; 10] = [
            b"GET\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"GET / HTTX/1.1\r\n\r\n",
            b"GET / HTTP/1.10\r\n\r\n",
            b"GET / http/1.1\r\n\r\n",
        ];
        for line in lines {
            assert_eq!(
                parse(line),
                Err(Rejection::Malformed),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn refuses_malformed_header_fields() {
        let fields: [&[u8]; 9] = [
            b"no colon",
            b": empty name",
            b"Space before : colon",
            b" folded: value",
            b"\tfolded: value",
            b"Bad\x01name: v",
            b"Name: bad\x01value",
            b"Name: bad\x7fvalue",
            b"Name: bare\rcr",
        ];
        for field in fields {
            let mut input = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
            input.extend_from_slice(field);
            input.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                parse(&input),
                Err(Rejection::Malformed),
                "{}",
                String::from_utf8_lossy(field)
            );
        }
    }

    #[test]
    fn refuses_bad_content_lengths() {
        let values: [&[u8]; 5] = [b"", b"-1", b"+1", b"1 2", b"0x10"];
        for value in values {
            let mut input = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ".to_vec();
            input.extend_from_slice(value);
            input.extend_from_slice(b"\r\n\r\n");
            assert_eq!(parse(&input), Err(Rejection::Malformed));
        }
        let conflicting =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(parse(conflicting), Err(Rejection::Malformed));
        let (head, _) = complete(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(head.content_length, 2);
    }

    #[test]
    fn refuses_bodies_over_the_limit() {
        let limits = Limits {
            max_body: 10,
            ..Limits::default()
        };
        let at_limit = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
        assert!(matches!(
            parse_head(at_limit, &limits),
            Ok(Parsed::Complete { .. })
        ));
        let over = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(parse_head(over, &limits), Err(Rejection::BodyTooLarge));
        let huge = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(parse_head(huge, &limits), Err(Rejection::BodyTooLarge));
    }

    #[test]
    fn refuses_any_transfer_encoding() {
        for coding in ["chunked", "gzip, chunked", "identity"] {
            let input = format!(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {coding}\r\nContent-Length: 3\r\n\r\n"
            );
            assert_eq!(
                parse(input.as_bytes()),
                Err(Rejection::TransferEncoding),
                "{coding}"
            );
        }
    }

    #[test]
    fn requires_exactly_one_host_in_http11() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err(Rejection::Malformed));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(Rejection::Malformed)
        );
        assert!(matches!(
            parse(b"GET / HTTP/1.0\r\n\r\n"),
            Ok(Parsed::Complete { .. })
        ));
    }

    #[test]
    fn refuses_other_versions_with_505() {
        assert_eq!(
            parse(b"GET / HTTP/2.0\r\n\r\n"),
            Err(Rejection::VersionNotSupported)
        );
        assert_eq!(
            parse(b"GET / HTTP/0.9\r\n\r\n"),
            Err(Rejection::VersionNotSupported)
        );
    }

    #[test]
    fn bounds_the_head() {
        let limits = Limits {
            max_head: 64,
            max_headers: 3,
            ..Limits::default()
        };
        // A head of exactly max_head bytes is fine.
        let mut exact = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        exact.resize(64 - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), 64);
        assert!(matches!(
            parse_head(&exact, &limits),
            Ok(Parsed::Complete { len: 64, .. })
        ));
        // One byte more, complete or not, is refused once max_head bytes are in.
        let mut over = exact.clone();
        over.insert(30, b'a');
        assert_eq!(parse_head(&over, &limits), Err(Rejection::HeadTooLarge));
        assert_eq!(
            parse_head(&over[..64], &limits),
            Err(Rejection::HeadTooLarge)
        );
        assert_eq!(parse_head(&over[..63], &limits), Ok(Parsed::Partial));
        // A request line that cannot fit is a 414.
        let long_line = vec![b'a'; 64];
        assert_eq!(parse_head(&long_line, &limits), Err(Rejection::UriTooLong));
        // Too many fields.
        let many = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(parse_head(many, &limits), Err(Rejection::HeadTooLarge));
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic sweep of short byte strings over an alphabet that
        // hits every branch of the grammar.
        let alphabet = b"GET /H1.:\r\n \x00\xffT";
        let mut input = Vec::new();
        for seed in 0u64..20_000 {
            input.clear();
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..(seed % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                input.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            if let Ok(Parsed::Complete { len, .. }) = parse(&input) {
                assert!(len <= input.len());
            }
        }
    }
}
