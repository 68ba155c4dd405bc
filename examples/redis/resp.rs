//! RESP2 (the Redis serialization protocol): commands parsed from a byte
//! slice and replies encoded into a buffer. No I/O and no copies: a parsed
//! command is a list of byte ranges into the input.
//!
//! Clients send either an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`,
//! what `redis-cli` and every client library send) or an inline command, a
//! line of words separated by spaces (`GET k\r\n`, handy with `nc`; no
//! quoting, unlike Redis).

use std::fmt;
use std::ops::Range;

/// Longest bulk string accepted: 64 MiB. Redis allows 512 MiB, but every
/// byte of a command is buffered until the command is complete, so the bound
/// is what one connection may make the server hold.
pub const MAX_BULK_LEN: usize = 64 * 1024 * 1024;
/// Most elements in one command array (Redis's limit for clients that are
/// not authenticated).
pub const MAX_ARRAY_LEN: usize = 1024 * 1024;
/// Longest inline command line: 64 KiB, as Redis.
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Longest `*<count>` or `$<length>` line accepted before its `CRLF`.
const MAX_LENGTH_LINE: usize = 32;

/// The outcome of [`CommandParser::parse`] when the input holds no error
/// (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command occupies the first `len` bytes; its arguments (the
    /// command name first) are [`CommandParser::args`], which are empty for
    /// an empty array or a blank line (answered with nothing).
    Command {
        /// Bytes the command occupies at the front of the input.
        len: usize,
    },
    /// The command is not complete: wait for more bytes.
    Partial,
}

/// Input that is not RESP. The server answers with the error and closes the
/// connection, as Redis does: after it, where the next command starts is
/// unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*<count>` is not a number, or a count over [`MAX_ARRAY_LEN`].
    InvalidArrayLength,
    /// `$<length>` is not a number, negative, or over [`MAX_BULK_LEN`].
    InvalidBulkLength,
    /// An array element is not a bulk string; the byte found instead.
    ExpectedBulk(u8),
    /// A bulk string is not followed by `CRLF`.
    UnterminatedBulk,
    /// An inline command line is longer than [`MAX_INLINE_LEN`].
    InlineTooLong,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match *self {
            ProtocolError::InvalidArrayLength => f.write_str("invalid multibulk length"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedBulk(found) if found.is_ascii_graphic() => {
                write!(f, "expected '$', got '{}'", char::from(found))
            }
            ProtocolError::ExpectedBulk(found) => write!(f, "expected '$', got byte {found:#04x}"),
            ProtocolError::UnterminatedBulk => f.write_str("bulk string not terminated by CRLF"),
            ProtocolError::InlineTooLong => f.write_str("too big inline request"),
        }
    }
}

/// Where [`CommandParser`] stands in the command at the front of the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Progress {
    /// Nothing of the command parsed yet.
    #[default]
    Start,
    /// Inside an array: `left` bulk strings to go, the next one's `$` header
    /// at `at`.
    Array { left: usize, at: usize },
    /// Inside an array: the header of a bulk string of `len` bytes starting
    /// at `start` is parsed; `left` bulk strings to go after it.
    Bulk {
        left: usize,
        start: usize,
        len: usize,
    },
    /// An inline command whose first `scanned` bytes hold no newline.
    Inline { scanned: usize },
}

/// Parses the commands of one connection, one at a time, resuming where the
/// last call stopped: bytes of an unfinished command are not looked at again
/// when more arrive (only an unfinished `*<count>` or `$<length>` line, at
/// most 32 bytes, is read anew), so a command that arrives in many small
/// reads costs time in proportion to its length, not to its length times the
/// number of reads.
///
/// Each call is given the input from the start of the command being parsed
/// (the connection's unconsumed bytes): the same bytes as before, with more
/// at the end. After [`Parsed::Command`], the next call starts a new command
/// at the front of the input it is given.
#[derive(Debug, Default)]
pub struct CommandParser {
    progress: Progress,
    /// The arguments found so far, as ranges of the input.
    args: Vec<Range<usize>>,
}

impl CommandParser {
    /// Argument lists longer than this are given back to the allocator once
    /// their command is done (see [`CommandParser::release_spare`]).
    const KEPT_ARGS: usize = 1024;

    /// Parses on from where the last call stopped.
    ///
    /// # Errors
    /// A [`ProtocolError`] as soon as the bytes received cannot be RESP; a
    /// command that could still complete is [`Parsed::Partial`]. After an
    /// error the connection must close: the parser's state is meaningless.
    pub fn parse(&mut self, input: &[u8]) -> Result<Parsed, ProtocolError> {
        loop {
            match self.progress {
                Progress::Start => {
                    self.args.clear();
                    match input.first() {
                        None => return Ok(Parsed::Partial),
                        Some(b'*') => {}
                        Some(_) => {
                            self.progress = Progress::Inline { scanned: 0 };
                            continue;
                        }
                    }
                    let Some((count, at)) =
                        length_line(input, 1, ProtocolError::InvalidArrayLength)?
                    else {
                        return Ok(Parsed::Partial);
                    };
                    if count <= 0 {
                        // `*0` and `*-1` are empty commands (Redis skips them).
                        return Ok(self.complete(at));
                    }
                    let left = usize::try_from(count)
                        .ok()
                        .filter(|&n| n <= MAX_ARRAY_LEN)
                        .ok_or(ProtocolError::InvalidArrayLength)?;
                    self.progress = Progress::Array { left, at };
                }
                Progress::Array { left: 0, at } => return Ok(self.complete(at)),
                Progress::Array { left, at } => {
                    match input.get(at) {
                        None => return Ok(Parsed::Partial),
                        Some(b'$') => {}
                        Some(&other) => return Err(ProtocolError::ExpectedBulk(other)),
                    }
                    let Some((len, start)) =
                        length_line(input, at + 1, ProtocolError::InvalidBulkLength)?
                    else {
                        return Ok(Parsed::Partial);
                    };
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|&n| n <= MAX_BULK_LEN)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    self.progress = Progress::Bulk {
                        left: left - 1,
                        start,
                        len,
                    };
                }
                Progress::Bulk { left, start, len } => {
                    // The bulk's bytes themselves are never looked at.
                    let end = start + len;
                    match input.get(end..end + 2) {
                        None => return Ok(Parsed::Partial),
                        Some(b"\r\n") => {}
                        Some(_) => return Err(ProtocolError::UnterminatedBulk),
                    }
                    self.args.push(start..end);
                    self.progress = Progress::Array { left, at: end + 2 };
                }
                Progress::Inline { scanned } => {
                    let window = &input[scanned..input.len().min(MAX_INLINE_LEN + 1)];
                    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
                        if input.len() > MAX_INLINE_LEN {
                            return Err(ProtocolError::InlineTooLong);
                        }
                        self.progress = Progress::Inline {
                            scanned: input.len(),
                        };
                        return Ok(Parsed::Partial);
                    };
                    let newline = scanned + newline;
                    split_words(&input[..newline], &mut self.args);
                    return Ok(self.complete(newline + 1));
                }
            }
        }
    }

    /// The arguments of the command [`CommandParser::parse`] last returned,
    /// as ranges of the input it was given.
    pub fn args(&self) -> &[Range<usize>] {
        &self.args
    }

    /// Memory the parser holds for an unfinished command, in bytes: a hostile
    /// `*1048576` makes it grow as much as the input does.
    pub fn held_bytes(&self) -> usize {
        self.args.capacity() * std::mem::size_of::<Range<usize>>()
    }

    /// Gives back the argument list's memory if a huge command grew it and
    /// no command is under way, so that one huge command does not pin it.
    pub fn release_spare(&mut self) {
        if self.progress == Progress::Start && self.args.capacity() > Self::KEPT_ARGS {
            self.args = Vec::new();
        }
    }

    fn complete(&mut self, len: usize) -> Parsed {
        self.progress = Progress::Start;
        Parsed::Command { len }
    }
}

/// Reads the number of a `*<n>\r\n` or `$<n>\r\n` line whose digits start at
/// `from`; returns it and the position after the `CRLF`.
fn length_line(
    input: &[u8],
    from: usize,
    invalid: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let rest = input.get(from..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_LENGTH_LINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if rest.len() >= MAX_LENGTH_LINE {
            Err(invalid)
        } else {
            Ok(None)
        };
    };
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => {
            let n = parse_i64(&rest[..cr]).ok_or(invalid)?;
            Ok(Some((n, from + cr + 2)))
        }
        Some(_) => Err(invalid),
    }
}

/// The words of an inline command line, separated by whitespace.
fn split_words(line: &[u8], args: &mut Vec<Range<usize>>) {
    let mut pos = 0;
    while pos < line.len() {
        if line[pos].is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let start = pos;
        while pos < line.len() && !line[pos].is_ascii_whitespace() {
            pos += 1;
        }
        args.push(start..pos);
    }
}

/// A decimal `i64` as Redis reads numbers (`string2ll`): an optional `-`,
/// digits, no `+`, no leading zeros, no spaces, no overflow.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        // Accumulate negatively so that i64::MIN parses too.
        n = n.checked_mul(10)?.checked_sub(digit)?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// Appends a simple string reply: `+OK\r\n`.
pub fn simple(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Appends an error reply; `message` starts with its code (`ERR ...`). CR and
/// LF, which would end the reply early, become spaces.
pub fn error(out: &mut Vec<u8>, message: &str) {
    out.push(b'-');
    out.extend(
        message
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends an integer reply: `:42\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string reply: `$5\r\nhello\r\n`.
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    push_decimal(out, data.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the null bulk reply, `$-1\r\n` (a missing key).
pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends the header of an array reply of `len` elements.
pub fn array(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    push_decimal(out, len as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One command parsed from `input` by a new parser: its arguments and
    /// length, or no arguments and length 0 if it is partial.
    fn parse(input: &[u8]) -> Result<(Vec<&[u8]>, usize), ProtocolError> {
        let mut parser = CommandParser::default();
        match parser.parse(input)? {
            Parsed::Command { len } => Ok((
                parser.args().iter().map(|r| &input[r.clone()]).collect(),
                len,
            )),
            Parsed::Partial => Ok((Vec::new(), 0)),
        }
    }

    #[test]
    fn parses_arrays_of_bulk_strings() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n";
        let (args, len) = parse(input).unwrap();
        assert_eq!(args, [&b"SET"[..], b"k", b""]);
        assert_eq!(&input[len..], b"*1\r\n");
    }

    #[test]
    fn bulk_strings_are_binary_safe() {
        let input = b"*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\0\xffb\r\n";
        let (args, len) = parse(input).unwrap();
        assert_eq!(args[1], b"a\r\n\0\xffb");
        assert_eq!(len, input.len());
    }

    #[test]
    fn every_prefix_is_partial() {
        let input = b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
        for cut in 0..input.len() {
            assert_eq!(parse(&input[..cut]), Ok((Vec::new(), 0)), "cut at {cut}");
        }
        assert_eq!(parse(input).unwrap().1, input.len());
    }

    /// Feeds `input` to one parser in chunks of 1, 2, ... `max_chunk` bytes
    /// (cycling), as reads would bring it; returns the arguments and length
    /// of the command, checking that every earlier call said partial.
    ///
    /// Before each call, every byte given more than [`LOOKBACK`] bytes before
    /// the end of the previous call is overwritten in the parser's copy of
    /// the input: a parser that went back over them (re-parsing from the
    /// first byte on every read, which costs time quadratic in the length of
    /// a command) would read garbage and fail. So each byte is read a
    /// bounded number of times, and the work is linear in the input.
    fn parse_in_chunks(input: &[u8], max_chunk: usize) -> (Vec<Vec<u8>>, usize) {
        const LOOKBACK: usize = MAX_LENGTH_LINE + 2;
        let mut parser = CommandParser::default();
        let mut given = Vec::with_capacity(input.len());
        let mut poisoned = 0;
        let mut chunk = 0;
        loop {
            chunk = chunk % max_chunk + 1;
            let end = (given.len() + chunk).min(input.len());
            while poisoned + LOOKBACK < given.len() {
                given[poisoned] = 0xff;
                poisoned += 1;
            }
            given.extend_from_slice(&input[given.len()..end]);
            match parser.parse(&given).expect("valid RESP") {
                Parsed::Partial => assert!(end < input.len(), "partial at the end"),
                Parsed::Command { len } => {
                    assert_eq!(end, input.len(), "complete before the end");
                    let args = parser.args().iter().map(|r| input[r.clone()].to_vec());
                    return (args.collect(), len);
                }
            }
        }
    }

    #[test]
    fn resumes_where_the_last_read_stopped() {
        // The hostile pattern of issue #16: a huge array header, then empty
        // bulk strings dribbled in.
        let count = 100_000;
        let mut input = format!("*{count}\r\n").into_bytes();
        for _ in 0..count {
            input.extend_from_slice(b"$0\r\n\r\n");
        }
        for max_chunk in [1, 7, 300] {
            let (args, len) = parse_in_chunks(&input, max_chunk);
            assert_eq!(len, input.len());
            assert_eq!(args.len(), count);
            assert!(args.iter().all(Vec::is_empty));
        }
        // Bulk strings of every length up to 70, cut everywhere: in headers,
        // data and CRLFs.
        let words: Vec<Vec<u8>> = (0..70).map(|n| vec![b'a' + (n % 26) as u8; n]).collect();
        let mut input = format!("*{}\r\n", words.len()).into_bytes();
        for word in &words {
            input.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            input.extend_from_slice(word);
            input.extend_from_slice(b"\r\n");
        }
        for max_chunk in 1..12 {
            assert_eq!(
                parse_in_chunks(&input, max_chunk),
                (words.clone(), input.len())
            );
        }
    }

    #[test]
    fn inline_commands_resume_too() {
        let mut input = b"SET key ".to_vec();
        input.extend(std::iter::repeat_n(b'v', 5000));
        input.extend_from_slice(b"\r\n");
        let mut parser = CommandParser::default();
        for end in 1..input.len() {
            assert_eq!(parser.parse(&input[..end]), Ok(Parsed::Partial));
        }
        assert_eq!(
            parser.parse(&input),
            Ok(Parsed::Command { len: input.len() })
        );
        assert_eq!(parser.args(), [0..3, 4..7, 8..5008]);
    }

    #[test]
    fn parses_commands_one_after_another_and_releases_huge_argument_lists() {
        let mut parser = CommandParser::default();
        let mut input = format!("*{}\r\n", CommandParser::KEPT_ARGS + 1).into_bytes();
        for _ in 0..=CommandParser::KEPT_ARGS {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        let first = input.len();
        input.extend_from_slice(b"PING\r\n");
        assert_eq!(parser.parse(&input), Ok(Parsed::Command { len: first }));
        assert!(parser.held_bytes() > CommandParser::KEPT_ARGS * 16);
        parser.release_spare();
        assert_eq!(parser.held_bytes(), 0);
        assert_eq!(
            parser.parse(&input[first..]),
            Ok(Parsed::Command { len: 6 })
        );
        assert_eq!(parser.args(), &[Range { start: 0, end: 4 }]);
    }

    #[test]
    fn parses_inline_commands() {
        let (args, len) = parse(b"  SET  key\tvalue \r\nPING").unwrap();
        assert_eq!(args, [&b"SET"[..], b"key", b"value"]);
        assert_eq!(len, 19);
        let (args, len) = parse(b"PING\n").unwrap();
        assert_eq!((args, len), (vec![&b"PING"[..]], 5));
        assert_eq!(parse(b"GET k").unwrap().1, 0, "partial without a newline");
    }

    #[test]
    fn empty_commands_are_consumed_with_no_arguments() {
        for input in [&b"*0\r\n"[..], b"*-1\r\n", b"\r\n", b"   \n"] {
            let (args, len) = parse(input).unwrap();
            assert!(args.is_empty());
            assert_eq!(len, input.len());
        }
    }

    #[test]
    fn refuses_bad_lengths() {
        let cases: [(&[u8], ProtocolError); 10] = [
            (b"*x\r\n", ProtocolError::InvalidArrayLength),
            (b"*1x\r\n", ProtocolError::InvalidArrayLength),
            (b"*01\r\n", ProtocolError::InvalidArrayLength),
            (b"*1\rx", ProtocolError::InvalidArrayLength),
            (b"*1048577\r\n", ProtocolError::InvalidArrayLength),
            (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$67108865\r\n", ProtocolError::InvalidBulkLength),
            (
                b"*1\r\n$99999999999999999999\r\n",
                ProtocolError::InvalidBulkLength,
            ),
            (b"*1\r\n:1\r\n", ProtocolError::ExpectedBulk(b':')),
            (b"*1\r\n$1\r\nab\r\n", ProtocolError::UnterminatedBulk),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse(input),
                Err(expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // A length line that never ends is refused once it is too long.
        assert_eq!(parse(&[b'*'; 40]), Err(ProtocolError::InvalidArrayLength));
        assert_eq!(parse(b"*1\r\n$1234").unwrap().1, 0, "still partial");
    }

    #[test]
    fn accepts_the_largest_bulk_header() {
        let input = format!("*1\r\n${MAX_BULK_LEN}\r\n");
        assert_eq!(
            parse(input.as_bytes()).unwrap().1,
            0,
            "partial, not refused"
        );
    }

    #[test]
    fn bounds_inline_lines() {
        let long = vec![b'a'; MAX_INLINE_LEN];
        assert_eq!(parse(&long).unwrap().1, 0, "partial at the limit");
        let longer = vec![b'a'; MAX_INLINE_LEN + 1];
        assert_eq!(parse(&longer), Err(ProtocolError::InlineTooLong));
    }

    #[test]
    fn parses_numbers_like_redis() {
        let good: [(&[u8], i64); 6] = [
            (b"0", 0),
            (b"7", 7),
            (b"-7", -7),
            (b"1234567890", 1_234_567_890),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
        ];
        for (text, n) in good {
            assert_eq!(parse_i64(text), Some(n));
        }
        let bad: [&[u8]; 9] = [
            b"",
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1.5",
            b"9223372036854775808",
            b"-9223372036854775809",
        ];
        for text in bad {
            assert_eq!(parse_i64(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn encodes_replies() {
        let mut out = Vec::new();
        simple(&mut out, b"OK");
        error(&mut out, "ERR bad\r\nthing");
        integer(&mut out, -42);
        integer(&mut out, i64::MIN);
        bulk(&mut out, b"hi");
        null(&mut out);
        array(&mut out, 2);
        assert_eq!(
            out,
            b"+OK\r\n-ERR bad  thing\r\n:-42\r\n:-9223372036854775808\r\n$2\r\nhi\r\n$-1\r\n*2\r\n"
        );
    }

    #[test]
    fn error_messages_match_redis() {
        assert_eq!(
            ProtocolError::ExpectedBulk(b':').to_string(),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            ProtocolError::InvalidBulkLength.to_string(),
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet = b"*$:12-0\r\n aX";
        let mut input = Vec::new();
        for seed in 0u64..30_000 {
            input.clear();
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..(seed % 48) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                input.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let mut parser = CommandParser::default();
            if let Ok(Parsed::Command { len }) = parser.parse(&input) {
                assert!(len <= input.len());
                assert!(parser.args().iter().all(|r| r.end <= len));
            }
        }
    }
}
