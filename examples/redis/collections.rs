//! The commands on collections: lists, sets, hashes, sorted sets and
//! streams, as far as `redis-benchmark`'s default tests and a first look with
//! `redis-cli` need them. Each takes its key's shard lock once; a collection
//! left empty is removed with its key, as in Redis.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::commands::Args;
use crate::resp::{self, parse_i64};
use crate::store::Store;
use crate::values::{SortedSet, Stream, StreamId, Value};

/// Redis's answer to a command on a key of another type.
pub const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (`LPUSH`, `LPOP`).
    Front,
    /// The tail (`RPUSH`, `RPOP`).
    Back,
}

/// `LPUSH` / `RPUSH key element [element ...]`: the list's new length.
pub fn push(store: &Store, args: &Args<'_>, end: End, now: u64, out: &mut Vec<u8>) {
    let key = args.get(1);
    let mut shard = store.lock(key);
    let entry = shard.get_or_insert(key, now, || Value::List(VecDeque::new()));
    let Value::List(list) = &mut entry.value else {
        return resp::error(out, WRONG_TYPE);
    };
    for element in args.from(2) {
        match end {
            End::Front => list.push_front(element.to_vec()),
            End::Back => list.push_back(element.to_vec()),
        }
    }
    resp::integer(out, list.len() as i64);
}

/// `LPOP` / `RPOP key`: the element taken, or nil.
pub fn pop(store: &Store, key: &[u8], end: End, now: u64, out: &mut Vec<u8>) {
    let mut shard = store.lock(key);
    let Some(entry) = shard.get(key, now) else {
        return resp::null(out);
    };
    let Value::List(list) = &mut entry.value else {
        return resp::error(out, WRONG_TYPE);
    };
    let element = match end {
        End::Front => list.pop_front(),
        End::Back => list.pop_back(),
    };
    match element {
        Some(element) => resp::bulk(out, &element),
        None => resp::null(out),
    }
    shard.remove_if_empty(key);
}

/// `LRANGE key start stop`: the elements from `start` to `stop` inclusive;
/// negative indices count from the end.
pub fn lrange(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let (Some(start), Some(stop)) = (parse_i64(args.get(2)), parse_i64(args.get(3))) else {
        return resp::error(out, crate::commands::NOT_AN_INTEGER);
    };
    let key = args.get(1);
    let mut shard = store.lock(key);
    let list = match shard.get(key, now).map(|e| &e.value) {
        None => return resp::array(out, 0),
        Some(Value::List(list)) => list,
        Some(_) => return resp::error(out, WRONG_TYPE),
    };
    let len = list.len() as i64;
    let from_end = |i: i64| if i < 0 { len + i } else { i };
    let (start, stop) = (from_end(start).max(0), from_end(stop).min(len - 1));
    if start > stop {
        return resp::array(out, 0);
    }
    resp::array(out, (stop - start + 1) as usize);
    for element in list.range(start as usize..=stop as usize) {
        resp::bulk(out, element);
    }
}

/// `SADD key member [member ...]`: how many members were new.
pub fn sadd(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let key = args.get(1);
    let mut shard = store.lock(key);
    let entry = shard.get_or_insert(key, now, || Value::Set(HashSet::new()));
    let Value::Set(set) = &mut entry.value else {
        return resp::error(out, WRONG_TYPE);
    };
    let added = args.from(2).filter(|m| set.insert(m.to_vec())).count();
    resp::integer(out, added as i64);
}

/// `SPOP key`: some member, removed, or nil. Which one is unspecified (a
/// hash set's first), as Redis's is random.
pub fn spop(store: &Store, key: &[u8], now: u64, out: &mut Vec<u8>) {
    let mut shard = store.lock(key);
    let Some(entry) = shard.get(key, now) else {
        return resp::null(out);
    };
    let Value::Set(set) = &mut entry.value else {
        return resp::error(out, WRONG_TYPE);
    };
    match set.iter().next().cloned() {
        Some(member) => {
            set.remove(&member);
            resp::bulk(out, &member);
        }
        None => resp::null(out),
    }
    shard.remove_if_empty(key);
}

/// `HSET key field value [field value ...]`: how many fields were new.
pub fn hset(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let key = args.get(1);
    let mut shard = store.lock(key);
    let entry = shard.get_or_insert(key, now, || Value::Hash(HashMap::new()));
    let Value::Hash(hash) = &mut entry.value else {
        return resp::error(out, WRONG_TYPE);
    };
    let mut added = 0;
    for i in (2..args.len()).step_by(2) {
        added += i64::from(
            hash.insert(args.get(i).to_vec(), args.get(i + 1).to_vec())
                .is_none(),
        );
    }
    resp::integer(out, added);
}

/// `HGET key field`: the field's value, or nil.
pub fn hget(store: &Store, key: &[u8], field: &[u8], now: u64, out: &mut Vec<u8>) {
    match store.lock(key).get(key, now).map(|e| &e.value) {
        None => resp::null(out),
        Some(Value::Hash(hash)) => match hash.get(field) {
            Some(value) => resp::bulk(out, value),
            None => resp::null(out),
        },
        Some(_) => resp::error(out, WRONG_TYPE),
    }
}

/// `ZADD key score member [score member ...]` (no options): how many
/// members were new.
pub fn zadd(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let mut pairs = Vec::with_capacity((args.len() - 2) / 2);
    for i in (2..args.len()).step_by(2) {
        match parse_score(args.get(i)) {
            Some(score) => pairs.push((score, args.get(i + 1))),
            None => return resp::error(out, "ERR value is not a valid float"),
        }
    }
    let key = args.get(1);
    let mut shard = store.lock(key);
    let entry = shard.get_or_insert(key, now, || Value::SortedSet(SortedSet::default()));
    let Value::SortedSet(zset) = &mut entry.value else {
        return resp::error(out, WRONG_TYPE);
    };
    let added = pairs.iter().filter(|(s, m)| zset.insert(m, *s)).count();
    resp::integer(out, added as i64);
}

/// `ZPOPMIN key [count]`: up to `count` (default 1) members of the lowest
/// scores, removed, as a flat array of member, score, member, score, ...
pub fn zpopmin(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let count = match args.len() {
        2 => 1,
        _ => match parse_i64(args.get(2)).and_then(|n| usize::try_from(n).ok()) {
            Some(n) => n,
            None => return resp::error(out, "ERR value is out of range, must be positive"),
        },
    };
    let key = args.get(1);
    let mut shard = store.lock(key);
    let zset = match shard.get(key, now).map(|e| &mut e.value) {
        None => return resp::array(out, 0),
        Some(Value::SortedSet(zset)) => zset,
        Some(_) => return resp::error(out, WRONG_TYPE),
    };
    let popped: Vec<_> = std::iter::from_fn(|| zset.pop_min()).take(count).collect();
    resp::array(out, popped.len() * 2);
    for (member, score) in popped {
        resp::bulk(out, &member);
        resp::bulk(out, format_score(score).as_bytes());
    }
    shard.remove_if_empty(key);
}

/// `XADD key <* | ms-seq> field value [field value ...]`: the new entry's
/// ID. (No `NOMKSTREAM`, `MAXLEN` or `MINID`.)
pub fn xadd(store: &Store, args: &Args<'_>, now: u64, out: &mut Vec<u8>) {
    let id = match args.get(2) {
        b"*" => None,
        given => match StreamId::parse(given) {
            Some(id) => Some(id),
            None => {
                return resp::error(
                    out,
                    "ERR Invalid stream ID specified as stream command argument",
                )
            }
        },
    };
    let fields = args.from(3).map(<[u8]>::to_vec).collect();
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let key = args.get(1);
    let mut shard = store.lock(key);
    let entry = shard.get_or_insert(key, now, || Value::Stream(Stream::default()));
    let Value::Stream(stream) = &mut entry.value else {
        return resp::error(out, WRONG_TYPE);
    };
    match stream.add(id, unix_ms, fields) {
        Ok(id) => resp::bulk(out, format!("{}-{}", id.ms, id.seq).as_bytes()),
        Err(message) => resp::error(out, message),
    }
}

/// `LLEN`, `SCARD`, `ZCARD`, `XLEN key`: the size of a collection of the
/// type `kind` names (0 for a missing key).
pub fn len(store: &Store, key: &[u8], kind: &str, now: u64, out: &mut Vec<u8>) {
    let len = match store.lock(key).get(key, now).map(|e| &e.value) {
        None => 0,
        Some(value) if value.type_name() != kind => return resp::error(out, WRONG_TYPE),
        Some(Value::List(list)) => list.len(),
        Some(Value::Set(set)) => set.len(),
        Some(Value::SortedSet(zset)) => zset.len(),
        Some(Value::Stream(stream)) => stream.len(),
        Some(Value::Hash(hash)) => hash.len(),
        Some(Value::Str(_)) => return resp::error(out, WRONG_TYPE),
    };
    resp::integer(out, len as i64);
}

/// `TYPE key`: the type's name, or `none`.
pub fn type_of(store: &Store, key: &[u8], now: u64, out: &mut Vec<u8>) {
    let mut shard = store.lock(key);
    let name = shard.get(key, now).map_or("none", |e| e.value.type_name());
    resp::simple(out, name.as_bytes());
}

/// A score as Redis reads one: a finite or infinite decimal, not NaN.
fn parse_score(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    let score = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => text.parse().ok()?,
    };
    (!score.is_nan()).then_some(score)
}

/// A score as Redis writes one: integers without a fraction (`0`, `-3`),
/// `inf` and `-inf`, others in the shortest form that reads back the same.
fn format_score(score: f64) -> String {
    if score.is_infinite() {
        return if score > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    format!("{score}")
}
