//! The kinds of value a key holds: strings and the collections that
//! `redis-benchmark`'s default tests use (lists, sets, hashes, sorted sets,
//! streams). Plain data structures, no I/O: the commands in
//! `collections.rs` work on them under their shard's lock.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// A key's value.
#[derive(Debug)]
pub enum Value {
    /// A string (binary safe); also what the counters (`INCR`) work on.
    Str(Vec<u8>),
    /// A list: pushes and pops at both ends.
    List(VecDeque<Vec<u8>>),
    /// A set of distinct members.
    Set(HashSet<Vec<u8>>),
    /// Fields and their values.
    Hash(HashMap<Vec<u8>, Vec<u8>>),
    /// Members ordered by score.
    SortedSet(SortedSet),
    /// An append-only log of entries with increasing IDs.
    Stream(Stream),
}

impl Value {
    /// The name `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::SortedSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// Whether this is a collection left with no element, which Redis
    /// removes with its key (a string or a stream never is).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::List(list) => list.is_empty(),
            Value::Set(set) => set.is_empty(),
            Value::Hash(hash) => hash.is_empty(),
            Value::SortedSet(zset) => zset.len() == 0,
            Value::Str(_) | Value::Stream(_) => false,
        }
    }
}

/// A score, ordered totally (`f64::total_cmp`) so it can key a tree; NaN
/// is refused when parsed, so the order is the numeric one.
#[derive(Clone, Copy, Debug)]
struct Score(f64);

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Members ordered by (score, member), as Redis orders them; each member's
/// score is found by hash.
#[derive(Debug, Default)]
pub struct SortedSet {
    scores: HashMap<Vec<u8>, Score>,
    order: BTreeSet<(Score, Vec<u8>)>,
}

impl SortedSet {
    /// Sets `member`'s score; true if it is a new member.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        let score = Score(score);
        match self.scores.insert(member.to_vec(), score) {
            Some(old) if old == score => false,
            Some(old) => {
                self.order.remove(&(old, member.to_vec()));
                self.order.insert((score, member.to_vec()));
                false
            }
            None => {
                self.order.insert((score, member.to_vec()));
                true
            }
        }
    }

    /// Removes and returns the member with the lowest score (the first by
    /// byte order among equal scores).
    pub fn pop_min(&mut self) -> Option<(Vec<u8>, f64)> {
        let (score, member) = self.order.pop_first()?;
        self.scores.remove(&member);
        Some((member, score.0))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }
}

/// A stream entry's ID: milliseconds, then a sequence number within them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    /// Unix milliseconds (as Redis makes them) or whatever the client gave.
    pub ms: u64,
    /// Sequence number within `ms`.
    pub seq: u64,
}

impl StreamId {
    /// Parses `<ms>-<seq>` or `<ms>` (sequence 0).
    pub fn parse(text: &[u8]) -> Option<StreamId> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// A stream: entries in ID order, each a list of field-value pairs.
#[derive(Debug, Default)]
pub struct Stream {
    entries: Vec<(StreamId, Vec<Vec<u8>>)>,
    last: StreamId,
}

impl Stream {
    /// Appends an entry of `fields` (field, value, field, value, ...) with
    /// ID `id`, or, if `None`, the next ID at Unix time `now_ms`.
    ///
    /// # Errors
    /// Redis's message if `id` is not above the last entry's.
    pub fn add(
        &mut self,
        id: Option<StreamId>,
        now_ms: u64,
        fields: Vec<Vec<u8>>,
    ) -> Result<StreamId, &'static str> {
        let id = match id {
            Some(id) if id > self.last => id,
            Some(_) => return Err(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
            None if now_ms > self.last.ms => StreamId { ms: now_ms, seq: 0 },
            None => StreamId {
                ms: self.last.ms,
                seq: self
                    .last
                    .seq
                    .checked_add(1)
                    .ok_or("ERR The stream has exhausted the last possible ID")?,
            },
        };
        self.entries.push((id, fields));
        self.last = id;
        Ok(id)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_sets_pop_by_score_then_member() {
        let mut zset = SortedSet::default();
        assert!(zset.insert(b"b", 1.0));
        assert!(zset.insert(b"a", 1.0));
        assert!(zset.insert(b"c", -2.5));
        assert!(!zset.insert(b"c", 3.0), "a new score, not a new member");
        assert_eq!(zset.len(), 3);
        assert_eq!(zset.pop_min(), Some((b"a".to_vec(), 1.0)));
        assert_eq!(zset.pop_min(), Some((b"b".to_vec(), 1.0)));
        assert_eq!(zset.pop_min(), Some((b"c".to_vec(), 3.0)));
        assert_eq!(zset.pop_min(), None);
        assert!(Value::SortedSet(zset).is_empty_collection());
    }

    #[test]
    fn stream_ids_increase() {
        let mut stream = Stream::default();
        let first = stream.add(None, 100, vec![b"f".to_vec(), b"v".to_vec()]);
        assert_eq!(first, Ok(StreamId { ms: 100, seq: 0 }));
        // The clock went back: the same millisecond, the next sequence.
        assert_eq!(
            stream.add(None, 50, Vec::new()),
            Ok(StreamId { ms: 100, seq: 1 })
        );
        assert!(stream
            .add(StreamId::parse(b"100-1"), 0, Vec::new())
            .is_err());
        assert_eq!(
            stream.add(StreamId::parse(b"200"), 0, Vec::new()),
            Ok(StreamId { ms: 200, seq: 0 })
        );
        assert_eq!(stream.len(), 3);
        for bad in [&b""[..], b"-1", b"1-", b"a-1", b"1-2-3"] {
            assert_eq!(StreamId::parse(bad), None);
        }
    }
}
