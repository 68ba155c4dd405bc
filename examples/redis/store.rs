//! The key space, shared by every event loop: a fixed set of shards, each a
//! `Mutex<HashMap>`, picked by a hash of the key.
//!
//! Why shards rather than one lock or per-loop ownership: a command touches
//! one key (or a few), so with many more shards than loops two loops rarely
//! want the same lock, and an uncontended `Mutex` costs one atomic operation
//! each way. Per-loop ownership would avoid even that, but every command on
//! a key owned by another loop would then travel through that loop's inbox
//! and back, adding a thread hop and a wake-up to most commands once there
//! is more than one loop, and making pipelined replies wait for the slowest
//! owner.
//!
//! Expiry: a read treats an expired key as absent at once, and each shard
//! keeps a min-heap of deadlines that the engine's ticker drains
//! (`Store::expire_due`), which removes the key. A read does not remove it
//! itself: that would cost every read of a live key a second hash lookup.
//!
//! Times are milliseconds since the store was created (`Store::now`), from
//! the monotonic clock, so expiry ignores wall-clock jumps.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::values::Value;

/// Longest key kept inside the map's own slot.
const INLINE_KEY: usize = 22;

/// A key as the map stores it: short keys (most real ones) inline, so a
/// lookup compares bytes already in the slot it probed instead of chasing a
/// pointer to the heap (a cache miss per command with many keys; Redis's
/// embedded strings do the same). Hashes and compares as the `[u8]` it holds.
#[derive(Clone, Debug)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(key.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Key {}

/// A value and its deadline.
#[derive(Debug)]
pub struct Entry {
    /// The value: a string or a collection.
    pub value: Value,
    /// When the key expires ([`Store::now`] milliseconds), if it does.
    pub expires_at: Option<u64>,
}

impl Entry {
    fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// One shard: its keys and the deadlines of those that expire.
#[derive(Debug, Default)]
pub struct Shard {
    map: HashMap<Key, Entry>,
    /// Deadlines in push order of time; an entry is stale when its key was
    /// since removed or given another deadline, and is dropped when popped.
    deadlines: BinaryHeap<Reverse<(u64, Vec<u8>)>>,
}

impl Shard {
    /// The live entry of `key` (one hash lookup); an expired one reads as
    /// absent and is left for its deadline to remove.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.map.get_mut(key).filter(|entry| !entry.is_expired(now))
    }

    /// Whether `key` has a live entry.
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.get(key, now).is_some()
    }

    /// Stores the string `value` under `key`, replacing any previous entry
    /// of any type. Overwriting a string reuses the key and, when the size
    /// is close, the string's allocation.
    pub fn set(&mut self, key: &[u8], value: &[u8], expires_at: Option<u64>) {
        match self.map.get_mut(key) {
            Some(entry) => {
                match &mut entry.value {
                    Value::Str(old) if old.capacity() <= 2 * value.len() + 64 => {
                        old.clear();
                        old.extend_from_slice(value);
                    }
                    // Far smaller, or another type: do not keep the old
                    // allocation alive.
                    other => *other = Value::Str(value.to_vec()),
                }
                entry.expires_at = expires_at;
            }
            None => {
                let entry = Entry {
                    value: Value::Str(value.to_vec()),
                    expires_at,
                };
                self.map.insert(Key::new(key), entry);
            }
        }
        // After the update: a rebuild of the heap keeps only deadlines that
        // match the map.
        if let Some(at) = expires_at {
            self.push_deadline(at, key);
        }
    }

    /// The live entry of `key`, first made from `make` (with no deadline)
    /// if there is none.
    pub fn get_or_insert(
        &mut self,
        key: &[u8],
        now: u64,
        make: impl FnOnce() -> Value,
    ) -> &mut Entry {
        if !self.contains(key, now) {
            let entry = Entry {
                value: make(),
                expires_at: None,
            };
            self.map.insert(Key::new(key), entry);
        }
        self.map.get_mut(key).expect("inserted if absent")
    }

    /// Removes `key` if its value is a collection left empty (Redis does
    /// not keep empty collections).
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        if self
            .map
            .get(key)
            .is_some_and(|e| e.value.is_empty_collection())
        {
            self.map.remove(key);
        }
    }

    /// Removes `key`; true if it was live.
    pub fn remove(&mut self, key: &[u8], now: u64) -> bool {
        self.map
            .remove(key)
            .is_some_and(|entry| !entry.is_expired(now))
    }

    /// Gives a live `key` a new deadline; false if there is no such key.
    pub fn expire_at(&mut self, key: &[u8], at: u64, now: u64) -> bool {
        let Some(entry) = self.get(key, now) else {
            return false;
        };
        let unchanged = entry.expires_at == Some(at);
        entry.expires_at = Some(at);
        if !unchanged {
            self.push_deadline(at, key);
        }
        true
    }

    /// Number of keys, counting expired ones not yet removed (as Redis's
    /// `DBSIZE` does).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    fn push_deadline(&mut self, at: u64, key: &[u8]) {
        self.deadlines.push(Reverse((at, key.to_vec())));
        // Stale deadlines (keys overwritten, deleted or re-timed) are only
        // dropped when they come due; rebuild when they could outnumber the
        // keys, so the heap stays O(keys) however often deadlines change.
        if self.deadlines.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            let mut live: Vec<_> = std::mem::take(&mut self.deadlines)
                .into_vec()
                .into_iter()
                .filter(|Reverse((at, key))| {
                    map.get(key.as_slice())
                        .is_some_and(|e| e.expires_at == Some(*at))
                })
                .collect();
            live.sort_unstable();
            live.dedup();
            self.deadlines = BinaryHeap::from(live);
        }
    }

    /// Removes up to `budget` keys whose deadline passed; returns how many
    /// deadlines it looked at.
    fn expire_due(&mut self, now: u64, budget: usize) -> usize {
        let mut seen = 0;
        while seen < budget {
            match self.deadlines.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Some(Reverse((at, key))) = self.deadlines.pop() else {
                break;
            };
            seen += 1;
            if self
                .map
                .get(key.as_slice())
                .is_some_and(|e| e.expires_at == Some(at))
            {
                self.map.remove(key.as_slice());
            }
        }
        seen
    }

    fn clear(&mut self) {
        self.map.clear();
        self.deadlines.clear();
    }
}

/// The shared key space.
#[derive(Debug)]
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    origin: Instant,
}

/// The shards a multi-key command holds, locked in index order.
pub struct Locked<'a> {
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
    store: &'a Store,
}

impl Locked<'_> {
    /// The shard of `key`, which must be one of the keys locked.
    pub fn shard(&mut self, key: &[u8]) -> &mut Shard {
        let index = self.store.shard_index(key);
        let at = self
            .guards
            .binary_search_by_key(&index, |(i, _)| *i)
            .expect("the key's shard is locked");
        &mut self.guards[at].1
    }
}

impl Store {
    /// A store with `shards` shards (rounded up to a power of two).
    pub fn new(shards: usize) -> Store {
        Store {
            shards: (0..shards.max(1).next_power_of_two())
                .map(|_| Mutex::default())
                .collect(),
            hasher: RandomState::new(),
            origin: Instant::now(),
        }
    }

    /// Shards for `loops` event loops: 16 per loop, so that two loops meet
    /// on the same lock for about one command in 16 × loops.
    pub fn for_loops(loops: usize) -> Store {
        Store::new((loops * 16).clamp(16, 4096))
    }

    /// Milliseconds since the store was created.
    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.shards.len() - 1)
    }

    /// Locks the shard of `key`.
    pub fn lock(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.shard_index(key)])
    }

    /// Locks the shards of all `keys` at once, always in index order so two
    /// commands cannot deadlock: multi-key commands are atomic, as in Redis.
    pub fn lock_keys<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Locked<'_> {
        let mut indices: Vec<usize> = keys.map(|k| self.shard_index(k)).collect();
        indices.sort_unstable();
        indices.dedup();
        Locked {
            guards: indices
                .into_iter()
                .map(|i| (i, lock(&self.shards[i])))
                .collect(),
            store: self,
        }
    }

    /// Number of keys in all shards.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Removes every key.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            lock(shard).clear();
        }
    }

    /// Active expiry: removes keys whose deadline passed, looking at up to
    /// `budget` deadlines per shard so that one call stays short. Returns
    /// true if some shard may have more due.
    pub fn expire_due(&self, now: u64, budget: usize) -> bool {
        let mut more = false;
        for shard in self.shards.iter() {
            more |= lock(shard).expire_due(now, budget) == budget;
        }
        more
    }
}

/// Locks a shard. A panic while it was held (a bug) leaves the map itself
/// consistent, since every change is one `HashMap` call: keep serving.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_keys_are_found_by_their_bytes() {
        let mut shard = Shard::default();
        let keys: Vec<Vec<u8>> = [0, 1, INLINE_KEY - 1, INLINE_KEY, INLINE_KEY + 1, 300]
            .iter()
            .map(|&len| (0..len).map(|i| b'a' + (i % 26) as u8).collect())
            .collect();
        for (i, key) in keys.iter().enumerate() {
            shard.set(key, &[i as u8], None);
        }
        assert_eq!(shard.len(), keys.len(), "no two keys collapsed");
        for (i, key) in keys.iter().enumerate() {
            assert!(matches!(&shard.get(key, 0).unwrap().value, Value::Str(v) if v == &[i as u8]));
            // A key that is a prefix or an extension of it is another key.
            let mut longer = key.clone();
            longer.push(b'!');
            assert!(shard.get(&longer, 0).is_none());
        }
        assert!(matches!(Key::new(&keys[3]), Key::Inline { .. }));
        assert!(matches!(Key::new(&keys[4]), Key::Heap(_)));
    }

    #[test]
    fn expired_keys_read_as_absent_until_their_deadline_removes_them() {
        let mut shard = Shard::default();
        shard.set(b"k", b"v", Some(100));
        assert!(matches!(&shard.get(b"k", 99).unwrap().value, Value::Str(v) if v == b"v"));
        assert!(shard.get(b"k", 100).is_none());
        assert!(!shard.contains(b"k", 100));
        assert_eq!(shard.expire_due(100, 10), 1);
        assert_eq!(shard.len(), 0, "the deadline removed it");
    }

    #[test]
    fn deadlines_expire_keys_nobody_reads() {
        let mut shard = Shard::default();
        shard.set(b"a", b"1", Some(10));
        shard.set(b"b", b"2", Some(20));
        shard.set(b"c", b"3", None);
        assert_eq!(shard.expire_due(15, 100), 1);
        assert_eq!(shard.len(), 2);
        assert_eq!(shard.expire_due(25, 100), 1);
        assert_eq!(shard.len(), 1);
        assert!(shard.contains(b"c", 1_000_000));
    }

    #[test]
    fn stale_deadlines_do_not_remove_rewritten_keys() {
        let mut shard = Shard::default();
        shard.set(b"k", b"old", Some(10));
        // Overwritten without a deadline, then given a later one.
        shard.set(b"k", b"new", None);
        shard.expire_due(50, 100);
        assert!(shard.contains(b"k", 50));
        assert!(shard.expire_at(b"k", 100, 50));
        shard.expire_due(60, 100);
        assert!(shard.contains(b"k", 60));
        shard.expire_due(100, 100);
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn the_deadline_heap_stays_proportional_to_the_keys() {
        let mut shard = Shard::default();
        shard.set(b"k", b"v", None);
        for at in 1_000..101_000 {
            assert!(shard.expire_at(b"k", at, 0));
        }
        assert!(shard.deadlines.len() <= 2 * shard.len() + 65);
        shard.expire_due(u64::MAX, usize::MAX);
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn a_rebuild_keeps_the_newest_deadline() {
        let mut shard = Shard::default();
        for at in 1..=200 {
            shard.set(b"k", &[], Some(at));
        }
        assert!(shard.deadlines.len() < 200, "rebuilt");
        shard.expire_due(199, usize::MAX);
        assert!(shard.contains(b"k", 199));
        shard.expire_due(200, usize::MAX);
        assert_eq!(shard.len(), 0, "removed by its deadline, not lazily");
    }

    #[test]
    fn expiry_work_is_bounded_per_call() {
        let store = Store::new(1);
        for i in 0..10u32 {
            store
                .lock(&i.to_be_bytes())
                .set(&i.to_be_bytes(), &[], Some(5));
        }
        assert!(store.expire_due(10, 4), "more are due");
        assert_eq!(store.len(), 6);
        assert!(store.expire_due(10, 4));
        assert!(!store.expire_due(10, 4));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn removing_an_expired_key_reports_nothing_removed() {
        let mut shard = Shard::default();
        shard.set(b"k", &[], Some(5));
        assert!(!shard.remove(b"k", 5));
        shard.set(b"k", &[], Some(5));
        assert!(shard.remove(b"k", 4));
    }

    #[test]
    fn locks_many_shards_in_order() {
        let store = Store::new(8);
        let keys: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_string().into_bytes()).collect();
        let mut locked = store.lock_keys(keys.iter().map(Vec::as_slice));
        for key in &keys {
            locked.shard(key).set(key, key, None);
        }
        drop(locked);
        assert_eq!(store.len(), 100);
        store.clear();
        assert_eq!(store.len(), 0);
    }
}
