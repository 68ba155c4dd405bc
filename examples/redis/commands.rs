//! The commands: each checks its arguments, works on the [`Store`] and
//! appends its reply. Replies and error texts follow Redis 7, so clients
//! that match on them behave the same.

use std::ops::Range;

use crate::collections::{self, End, WRONG_TYPE};
use crate::resp::{self, parse_i64};
use crate::store::Store;
use crate::values::Value;

/// Most bytes one reply may take (a huge `MGET`); past it the command gets
/// an error instead, so no single request makes the server buffer without
/// bound.
pub const MAX_REPLY_LEN: usize = 256 * 1024 * 1024;

/// The commands served, as `COMMAND COUNT` reports them.
pub const COMMANDS: [&str; 41] = [
    "command", "config", "dbsize", "decr", "decrby", "del", "echo", "exists", "expire", "flushall",
    "flushdb", "get", "hget", "hlen", "hset", "incr", "incrby", "llen", "lpop", "lpush", "lrange",
    "mget", "mset", "pexpire", "ping", "pttl", "quit", "rpop", "rpush", "sadd", "scard", "select",
    "set", "spop", "ttl", "type", "xadd", "xlen", "zadd", "zcard", "zpopmin",
];

/// A command's arguments, its name first, borrowed from the input.
#[derive(Clone, Copy, Debug)]
pub struct Args<'a> {
    input: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    /// The arguments at `ranges` of `input`.
    pub fn new(input: &'a [u8], ranges: &'a [Range<usize>]) -> Self {
        Args { input, ranges }
    }

    /// Number of arguments, the name included.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there is no argument at all (an empty command).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i` (0 is the command name).
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.input[self.ranges[i].clone()]
    }

    /// Arguments from `i` on.
    pub fn from(&self, i: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.ranges[i..].iter().map(|r| &self.input[r.clone()])
    }
}

/// What the connection does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Close once the replies are sent (`QUIT`).
    Close,
}

/// Runs one non-empty command at time `now` ([`Store::now`]) and appends
/// its reply to `out`.
pub fn execute(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) -> Flow {
    let name = args.get(0);
    let mut upper = [0u8; 8];
    if name.len() > upper.len() {
        unknown_command(args, out);
        return Flow::Continue;
    }
    let upper = &mut upper[..name.len()];
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    let n = args.len();
    match &*upper {
        b"GET" if n == 2 => get(store, args.get(1), now, out),
        b"SET" if n >= 3 => set(store, args, now, out),
        b"PING" if n <= 2 => ping(args, out),
        b"ECHO" if n == 2 => resp::bulk(out, args.get(1)),
        b"DEL" if n >= 2 => del(store, args, now, out),
        b"EXISTS" if n >= 2 => exists(store, args, now, out),
        b"INCR" if n == 2 => incr_by(store, args.get(1), Ok(1), now, out),
        b"DECR" if n == 2 => incr_by(store, args.get(1), Ok(-1), now, out),
        b"INCRBY" if n == 3 => {
            let delta = parse_i64(args.get(2)).ok_or(NOT_AN_INTEGER);
            incr_by(store, args.get(1), delta, now, out)
        }
        b"DECRBY" if n == 3 => {
            let delta = parse_i64(args.get(2))
                .ok_or(NOT_AN_INTEGER)
                .and_then(|d| d.checked_neg().ok_or("ERR decrement would overflow"));
            incr_by(store, args.get(1), delta, now, out)
        }
        b"MGET" if n >= 2 => mget(store, args, now, out),
        b"MSET" if n >= 3 && n % 2 == 1 => mset(store, args, out),
        b"EXPIRE" if n == 3 => expire(store, args, 1000, "expire", now, out),
        b"PEXPIRE" if n == 3 => expire(store, args, 1, "pexpire", now, out),
        b"TTL" if n == 2 => ttl(store, args.get(1), 1000, now, out),
        b"PTTL" if n == 2 => ttl(store, args.get(1), 1, now, out),
        b"FLUSHALL" | b"FLUSHDB" if n <= 2 => flush(store, args, out),
        b"DBSIZE" if n == 1 => resp::integer(out, store.len() as i64),
        b"COMMAND" => command(args, out),
        b"CONFIG" if n >= 2 => config(args, out),
        b"SELECT" if n == 2 => select(args.get(1), out),
        b"LPUSH" if n >= 3 => collections::push(store, args, End::Front, now, out),
        b"RPUSH" if n >= 3 => collections::push(store, args, End::Back, now, out),
        b"LPOP" if n == 2 => collections::pop(store, args.get(1), End::Front, now, out),
        b"RPOP" if n == 2 => collections::pop(store, args.get(1), End::Back, now, out),
        b"LRANGE" if n == 4 => collections::lrange(store, args, now, out),
        b"LLEN" if n == 2 => collections::len(store, args.get(1), "list", now, out),
        b"SADD" if n >= 3 => collections::sadd(store, args, now, out),
        b"SPOP" if n == 2 => collections::spop(store, args.get(1), now, out),
        b"SCARD" if n == 2 => collections::len(store, args.get(1), "set", now, out),
        b"HSET" if n >= 4 && n % 2 == 0 => collections::hset(store, args, now, out),
        b"HGET" if n == 3 => collections::hget(store, args.get(1), args.get(2), now, out),
        b"HLEN" if n == 2 => collections::len(store, args.get(1), "hash", now, out),
        b"ZADD" if n >= 4 && n % 2 == 0 => collections::zadd(store, args, now, out),
        b"ZPOPMIN" if n == 2 || n == 3 => collections::zpopmin(store, args, now, out),
        b"ZCARD" if n == 2 => collections::len(store, args.get(1), "zset", now, out),
        b"XADD" if n >= 5 && n % 2 == 1 => collections::xadd(store, args, now, out),
        b"XLEN" if n == 2 => collections::len(store, args.get(1), "stream", now, out),
        b"TYPE" if n == 2 => collections::type_of(store, args.get(1), now, out),
        b"QUIT" => {
            resp::simple(out, b"OK");
            return Flow::Close;
        }
        _ => match COMMANDS
            .iter()
            .find(|c| c.as_bytes().eq_ignore_ascii_case(name))
        {
            Some(known) => resp::error(
                out,
                &format!("ERR wrong number of arguments for '{known}' command"),
            ),
            None => unknown_command(args, out),
        },
    }
    Flow::Continue
}

/// Redis's answer to a number that is not an `i64`.
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX_ERROR: &str = "ERR syntax error";

fn unknown_command(args: &Args<'_>, out: &mut Vec<u8>) {
    // As Redis: the name and the first arguments, quoted, 128 bytes at most.
    let quote = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned();
    let mut message = format!(
        "ERR unknown command '{}', with args beginning with: ",
        quote(args.get(0))
    );
    let mut room = 128usize;
    for arg in args.from(1) {
        if room == 0 {
            break;
        }
        let shown = &arg[..arg.len().min(room)];
        room -= shown.len();
        message.push_str(&format!("'{}' ", quote(shown)));
    }
    resp::error(out, &message);
}

fn ping(args: &Args<'_>, out: &mut Vec<u8>) {
    if args.len() == 2 {
        resp::bulk(out, args.get(1));
    } else {
        resp::simple(out, b"PONG");
    }
}

fn get(store: &Store, key: &[u8], now: u64, out: &mut Vec<u8>) {
    match store.lock(key).get(key, now).map(|e| &e.value) {
        Some(Value::Str(value)) => resp::bulk(out, value),
        Some(_) => resp::error(out, WRONG_TYPE),
        None => resp::null(out),
    }
}

/// `SET key value [NX | XX] [EX seconds | PX milliseconds | KEEPTTL]`
fn set(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    #[derive(PartialEq)]
    enum Condition {
        Always,
        IfAbsent,
        IfPresent,
    }
    let mut condition = Condition::Always;
    let mut expires_at = None;
    let mut keep_ttl = false;
    let mut i = 3;
    while i < args.len() {
        let option = args.get(i);
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        let timed = expires_at.is_some() || keep_ttl;
        if is("NX") && condition != Condition::IfPresent {
            condition = Condition::IfAbsent;
        } else if is("XX") && condition != Condition::IfAbsent {
            condition = Condition::IfPresent;
        } else if is("KEEPTTL") && !timed {
            keep_ttl = true;
        } else if (is("EX") || is("PX")) && !timed && i + 1 < args.len() {
            let unit = if is("EX") { 1000 } else { 1 };
            match parse_i64(args.get(i + 1)) {
                None => return resp::error(out, NOT_AN_INTEGER),
                Some(n) => match deadline(n, unit, now) {
                    Some(at) if n > 0 => expires_at = Some(at),
                    _ => return resp::error(out, "ERR invalid expire time in 'set' command"),
                },
            }
            i += 1;
        } else {
            return resp::error(out, SYNTAX_ERROR);
        }
        i += 1;
    }
    let key = args.get(1);
    let mut shard = store.lock(key);
    // A plain SET needs no look at the current entry: one lookup, not two.
    if condition != Condition::Always || keep_ttl {
        let current = shard.get(key, now);
        let exists = current.is_some();
        if (condition == Condition::IfAbsent && exists)
            || (condition == Condition::IfPresent && !exists)
        {
            return resp::null(out);
        }
        if keep_ttl {
            expires_at = current.and_then(|e| e.expires_at);
        }
    }
    shard.set(key, args.get(2), expires_at);
    resp::simple(out, b"OK");
}

/// `now + n × unit` milliseconds, if it fits.
fn deadline(n: i64, unit: i64, now: u64) -> Option<u64> {
    let ms = n.checked_mul(unit)?;
    now.checked_add_signed(ms)
}

fn del(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let mut locked = store.lock_keys(args.from(1));
    let removed = args
        .from(1)
        .filter(|key| locked.shard(key).remove(key, now))
        .count();
    resp::integer(out, removed as i64);
}

fn exists(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let mut locked = store.lock_keys(args.from(1));
    let found = args
        .from(1)
        .filter(|key| locked.shard(key).contains(key, now))
        .count();
    resp::integer(out, found as i64);
}

/// `INCR`, `DECR`, `INCRBY`, `DECRBY`: the value must be a decimal `i64`; a
/// missing key counts as 0; the key keeps its deadline.
fn incr_by(store: &Store, key: &[u8], delta: Result<i64, &str>, now: u64, out: &mut Vec<u8>) {
    let delta = match delta {
        Ok(delta) => delta,
        Err(message) => return resp::error(out, message),
    };
    let mut shard = store.lock(key);
    let current = match shard.get(key, now).map(|e| &mut e.value) {
        Some(Value::Str(value)) => match parse_i64(value) {
            Some(n) => Some((n, value)),
            None => return resp::error(out, NOT_AN_INTEGER),
        },
        Some(_) => return resp::error(out, WRONG_TYPE),
        None => None,
    };
    let base = current.as_ref().map_or(0, |(n, _)| *n);
    let Some(next) = base.checked_add(delta) else {
        return resp::error(out, "ERR increment or decrement would overflow");
    };
    match current {
        Some((_, value)) => {
            value.clear();
            resp::push_decimal(value, next);
        }
        None => {
            let mut value = Vec::new();
            resp::push_decimal(&mut value, next);
            shard.set(key, &value, None);
        }
    }
    resp::integer(out, next);
}

fn mget(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let start = out.len();
    let mut locked = store.lock_keys(args.from(1));
    resp::array(out, args.len() - 1);
    for key in args.from(1) {
        // As Redis: a key of another type reads as missing here.
        match locked.shard(key).get(key, now).map(|e| &e.value) {
            Some(Value::Str(value)) => resp::bulk(out, value),
            _ => resp::null(out),
        }
        if out.len() - start > MAX_REPLY_LEN {
            out.truncate(start);
            return resp::error(out, "ERR reply too large");
        }
    }
}

fn mset(store: &Store, args: &Args<'_>, out: &mut Vec<u8>) {
    let mut locked = store.lock_keys(args.from(1).step_by(2));
    for i in (1..args.len()).step_by(2) {
        let key = args.get(i);
        locked.shard(key).set(key, args.get(i + 1), None);
    }
    resp::simple(out, b"OK");
}

/// `EXPIRE key seconds` and `PEXPIRE key milliseconds`; a deadline in the
/// past deletes the key, as in Redis.
fn expire(store: &Store, args: &Args<'_>, unit: i64, name: &str, now: u64, out: &mut Vec<u8>) {
    let Some(n) = parse_i64(args.get(2)) else {
        return resp::error(out, NOT_AN_INTEGER);
    };
    let Some(at) = deadline(n, unit, now) else {
        if n.checked_mul(unit).is_some_and(|ms| ms < 0) {
            // Before the store's origin: long past.
            let key = args.get(1);
            let removed = store.lock(key).remove(key, now);
            return resp::integer(out, i64::from(removed));
        }
        return resp::error(out, &format!("ERR invalid expire time in '{name}' command"));
    };
    let key = args.get(1);
    let mut shard = store.lock(key);
    let done = if at <= now {
        shard.remove(key, now)
    } else {
        shard.expire_at(key, at, now)
    };
    resp::integer(out, i64::from(done));
}

/// `TTL` (seconds, rounded) and `PTTL` (milliseconds): -2 for a missing key,
/// -1 for a key without a deadline.
fn ttl(store: &Store, key: &[u8], unit: u64, now: u64, out: &mut Vec<u8>) {
    let reply = match store.lock(key).get(key, now) {
        None => -2,
        Some(entry) => match entry.expires_at {
            None => -1,
            Some(at) => ((at - now + unit / 2) / unit) as i64,
        },
    };
    resp::integer(out, reply);
}

fn flush(store: &Store, args: &Args<'_>, out: &mut Vec<u8>) {
    if args.len() == 2
        && !args.get(1).eq_ignore_ascii_case(b"ASYNC")
        && !args.get(1).eq_ignore_ascii_case(b"SYNC")
    {
        return resp::error(out, SYNTAX_ERROR);
    }
    store.clear();
    resp::simple(out, b"OK");
}

/// Enough of `COMMAND` for `redis-cli`, which asks for `COMMAND DOCS` when it
/// starts and gets along without them.
fn command(args: &Args<'_>, out: &mut Vec<u8>) {
    if args.len() == 2 && args.get(1).eq_ignore_ascii_case(b"COUNT") {
        resp::integer(out, COMMANDS.len() as i64);
    } else {
        resp::array(out, 0);
    }
}

/// `CONFIG GET` of the two settings `redis-benchmark` reads when it starts;
/// any other parameter has no value.
fn config(args: &Args<'_>, out: &mut Vec<u8>) {
    if !args.get(1).eq_ignore_ascii_case(b"GET") || args.len() < 3 {
        let sub = String::from_utf8_lossy(args.get(1));
        return resp::error(
            out,
            &format!("ERR unknown subcommand or wrong number of arguments for '{sub}'"),
        );
    }
    let settings: [(&[u8], &[u8]); 2] = [(b"save", b""), (b"appendonly", b"no")];
    let found: Vec<_> = settings
        .iter()
        .filter(|(name, _)| args.from(2).any(|p| p.eq_ignore_ascii_case(name)))
        .collect();
    resp::array(out, found.len() * 2);
    for (name, value) in found {
        resp::bulk(out, name);
        resp::bulk(out, value);
    }
}

fn select(index: &[u8], out: &mut Vec<u8>) {
    match parse_i64(index) {
        None => resp::error(out, NOT_AN_INTEGER),
        Some(0) => resp::simple(out, b"OK"),
        Some(_) => resp::error(out, "ERR DB index is out of range"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{CommandParser, Parsed};

    /// Runs inline `commands` at `now`, returning all replies as text.
    fn run(store: &Store, now: u64, commands: &str) -> String {
        let mut out = Vec::new();
        let mut parser = CommandParser::default();
        let mut input = commands.as_bytes();
        while let Ok(Parsed::Command { len }) = parser.parse(input) {
            let args = Args::new(input, parser.args());
            if !args.is_empty() {
                execute(store, &args, now, &mut out);
            }
            input = &input[len..];
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings() {
        let store = Store::new(4);
        assert_eq!(run(&store, 0, "GET k\n"), "$-1\r\n");
        assert_eq!(
            run(&store, 0, "SET k hello\nGET k\n"),
            "+OK\r\n$5\r\nhello\r\n"
        );
        assert_eq!(run(&store, 0, "SET k v NX\nSET q v XX\n"), "$-1\r\n$-1\r\n");
        assert_eq!(
            run(&store, 0, "SET k v2 XX\nSET q v NX\nMGET k q z\n"),
            "+OK\r\n+OK\r\n*3\r\n$2\r\nv2\r\n$1\r\nv\r\n$-1\r\n"
        );
        assert_eq!(
            run(&store, 0, "MSET a 1 b 2\nEXISTS a b a z\nDEL a z\nDBSIZE\n"),
            "+OK\r\n:3\r\n:1\r\n:3\r\n"
        );
        assert_eq!(run(&store, 0, "FLUSHALL\nDBSIZE\n"), "+OK\r\n:0\r\n");
    }

    #[test]
    fn counters() {
        let store = Store::new(4);
        assert_eq!(
            run(
                &store,
                0,
                "INCR n\nINCRBY n 10\nDECR n\nDECRBY n -5\nGET n\n"
            ),
            ":1\r\n:11\r\n:10\r\n:15\r\n$2\r\n15\r\n"
        );
        assert_eq!(
            run(
                &store,
                0,
                "SET s abc\nINCR s\nINCRBY n x\nSET m 9223372036854775807\nINCR m\n"
            ),
            "+OK\r\n-ERR value is not an integer or out of range\r\n\
             -ERR value is not an integer or out of range\r\n+OK\r\n\
             -ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(
            run(&store, 0, "DECRBY n -9223372036854775808\n"),
            "-ERR decrement would overflow\r\n"
        );
    }

    #[test]
    fn expiry() {
        let store = Store::new(4);
        assert_eq!(
            run(
                &store,
                1000,
                "SET k v PX 1500\nPTTL k\nTTL k\nTTL nope\nSET p v\nTTL p\n"
            ),
            "+OK\r\n:1500\r\n:2\r\n:-2\r\n+OK\r\n:-1\r\n"
        );
        assert_eq!(run(&store, 2499, "GET k\n"), "$1\r\nv\r\n");
        assert_eq!(run(&store, 2500, "GET k\nEXISTS k\n"), "$-1\r\n:0\r\n");
        assert_eq!(
            run(
                &store,
                3000,
                "SET k v EX 10\nEXPIRE k 1\nPTTL k\nEXPIRE nope 5\n"
            ),
            "+OK\r\n:1\r\n:1000\r\n:0\r\n"
        );
        assert_eq!(
            run(
                &store,
                3000,
                "SET k v EX 10 KEEPTTL\nSET k v2 KEEPTTL\nPTTL k\nSET k v3\nPTTL k\n"
            ),
            "-ERR syntax error\r\n+OK\r\n:1000\r\n+OK\r\n:-1\r\n"
        );
        assert_eq!(
            run(&store, 3000, "INCR c\nPEXPIRE c 10\nINCR c\nPTTL c\n"),
            ":1\r\n:1\r\n:2\r\n:10\r\n"
        );
        assert_eq!(run(&store, 3000, "EXPIRE k 0\nEXISTS k\n"), ":1\r\n:0\r\n");
        assert_eq!(
            run(&store, 3000, "SET k v\nPEXPIRE k -99999999\nEXISTS k\n"),
            "+OK\r\n:1\r\n:0\r\n"
        );
    }

    #[test]
    fn bad_expiry_options() {
        let store = Store::new(4);
        assert_eq!(
            run(&store, 0, "SET k v EX 0\nSET k v PX -1\nSET k v EX x\nSET k v EX\nSET k v NX XX\nSET k v EX 1 PX 1\nSET k v FOO\n"),
            "-ERR invalid expire time in 'set' command\r\n\
             -ERR invalid expire time in 'set' command\r\n\
             -ERR value is not an integer or out of range\r\n\
             -ERR syntax error\r\n-ERR syntax error\r\n-ERR syntax error\r\n-ERR syntax error\r\n"
        );
        assert_eq!(
            run(
                &store,
                0,
                "SET k v EX 9223372036854775807\nSET k v\nEXPIRE k 9223372036854775807\n"
            ),
            "-ERR invalid expire time in 'set' command\r\n+OK\r\n\
             -ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(run(&store, 0, "DBSIZE\n"), ":1\r\n");
    }

    #[test]
    fn connection_commands() {
        let store = Store::new(4);
        assert_eq!(
            run(&store, 0, "PING\nping hi\nECHO yo\n"),
            "+PONG\r\n$2\r\nhi\r\n$2\r\nyo\r\n"
        );
        assert_eq!(
            run(&store, 0, "COMMAND DOCS\nCOMMAND\nCOMMAND COUNT\n"),
            "*0\r\n*0\r\n:41\r\n"
        );
        assert_eq!(
            run(
                &store,
                0,
                "CONFIG GET save\nCONFIG GET appendonly\nCONFIG GET nope\n"
            ),
            "*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n*0\r\n"
        );
        assert_eq!(
            run(&store, 0, "SELECT 0\nSELECT 1\n"),
            "+OK\r\n-ERR DB index is out of range\r\n"
        );
        let mut out = Vec::new();
        let mut parser = CommandParser::default();
        parser.parse(b"quit\r\n").unwrap();
        assert_eq!(
            execute(&store, &Args::new(b"quit\r\n", parser.args()), 0, &mut out),
            Flow::Close
        );
        assert_eq!(out, b"+OK\r\n");
    }

    #[test]
    fn errors() {
        let store = Store::new(4);
        assert_eq!(
            run(
                &store,
                0,
                "GET\nGET a b\nMSET a\nMSET a 1 b\nPING a b\nFLUSHALL now\n"
            ),
            "-ERR wrong number of arguments for 'get' command\r\n\
             -ERR wrong number of arguments for 'get' command\r\n\
             -ERR wrong number of arguments for 'mset' command\r\n\
             -ERR wrong number of arguments for 'mset' command\r\n\
             -ERR wrong number of arguments for 'ping' command\r\n\
             -ERR syntax error\r\n"
        );
        assert_eq!(
            run(&store, 0, "NOPE a b\nHELLOWORLD\n"),
            "-ERR unknown command 'NOPE', with args beginning with: 'a' 'b' \r\n\
             -ERR unknown command 'HELLOWORLD', with args beginning with: \r\n"
        );
    }

    #[test]
    fn huge_replies_become_errors() {
        let store = Store::new(4);
        let value = vec![b'x'; 1 << 20];
        store.lock(b"big").set(b"big", &value, None);
        let keys = "big ".repeat(MAX_REPLY_LEN / (1 << 20) + 1);
        let mut out = b"+earlier\r\n".to_vec();
        let mut parser = CommandParser::default();
        let input = format!("MGET {keys}\n");
        parser.parse(input.as_bytes()).unwrap();
        execute(
            &store,
            &Args::new(input.as_bytes(), parser.args()),
            0,
            &mut out,
        );
        assert_eq!(out, b"+earlier\r\n-ERR reply too large\r\n");
    }
}
