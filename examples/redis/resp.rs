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

/// The outcome of [`parse_command`] when the input holds no error (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command occupies the first `len` bytes; its arguments (the
    /// command name first) are the ranges written to `args`, which are
    /// empty for an empty array or a blank line (answered with nothing).
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

/// Parses one command from the front of `input` into `args` (cleared first).
///
/// # Errors
/// A [`ProtocolError`] as soon as the bytes received cannot be RESP; a
/// command that could still complete is [`Parsed::Partial`].
pub fn parse_command(input: &[u8], args: &mut Vec<Range<usize>>) -> Result<Parsed, ProtocolError> {
    args.clear();
    match input.first() {
        None => Ok(Parsed::Partial),
        Some(b'*') => parse_array(input, args),
        Some(_) => parse_inline(input, args),
    }
}

fn parse_array(input: &[u8], args: &mut Vec<Range<usize>>) -> Result<Parsed, ProtocolError> {
    let Some((count, mut pos)) = length_line(input, 1, ProtocolError::InvalidArrayLength)? else {
        return Ok(Parsed::Partial);
    };
    if count <= 0 {
        // `*0` and `*-1` are empty commands (Redis skips them).
        return Ok(Parsed::Command { len: pos });
    }
    let count = usize::try_from(count).map_err(|_| ProtocolError::InvalidArrayLength)?;
    if count > MAX_ARRAY_LEN {
        return Err(ProtocolError::InvalidArrayLength);
    }
    for _ in 0..count {
        match input.get(pos) {
            None => return Ok(Parsed::Partial),
            Some(b'$') => {}
            Some(&other) => return Err(ProtocolError::ExpectedBulk(other)),
        }
        let Some((len, start)) = length_line(input, pos + 1, ProtocolError::InvalidBulkLength)?
        else {
            return Ok(Parsed::Partial);
        };
        let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
        if len > MAX_BULK_LEN {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let end = start + len;
        match input.get(end..end + 2) {
            None => return Ok(Parsed::Partial),
            Some(b"\r\n") => {}
            Some(_) => return Err(ProtocolError::UnterminatedBulk),
        }
        args.push(start..end);
        pos = end + 2;
    }
    Ok(Parsed::Command { len: pos })
}

/// Reads the number of a `*<n>\r\n` or `$<n>\r\n` line whose digits start at
/// `from`; returns it and the position after the `CRLF`.
fn length_line(
    input: &[u8],
    from: usize,
    invalid: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let rest = &input[from..];
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

fn parse_inline(input: &[u8], args: &mut Vec<Range<usize>>) -> Result<Parsed, ProtocolError> {
    let window = &input[..input.len().min(MAX_INLINE_LEN + 1)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        return if input.len() > MAX_INLINE_LEN {
            Err(ProtocolError::InlineTooLong)
        } else {
            Ok(Parsed::Partial)
        };
    };
    let line = &input[..newline];
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
    Ok(Parsed::Command { len: newline + 1 })
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

    fn parse(input: &[u8]) -> Result<(Vec<&[u8]>, usize), ProtocolError> {
        let mut args = Vec::new();
        match parse_command(input, &mut args)? {
            Parsed::Command { len } => Ok((args.into_iter().map(|r| &input[r]).collect(), len)),
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
        let mut args = Vec::new();
        for cut in 0..input.len() {
            assert_eq!(
                parse_command(&input[..cut], &mut args),
                Ok(Parsed::Partial),
                "cut at {cut}"
            );
        }
        assert_eq!(
            parse_command(input, &mut args),
            Ok(Parsed::Command { len: input.len() })
        );
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
        let mut args = Vec::new();
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
            if let Ok(Parsed::Command { len }) = parse_command(&input, &mut args) {
                assert!(len <= input.len());
                assert!(args.iter().all(|r| r.end <= len));
            }
        }
    }
}
