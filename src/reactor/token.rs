//! Tokens and the per-loop slab of registered descriptors (Go's `pollDesc` table).
//!
//! A token is the identity a timer or a thread-safe handle keeps for a
//! connection, unique within its engine: the loop that owns the connection,
//! and the 64-bit value the kernel hands back with every event of that loop:
//!
//! | bits  | field      | meaning                                                |
//! |-------|------------|--------------------------------------------------------|
//! | 0-31  | slot       | index into the loop's slab                             |
//! | 32-63 | generation | bumped every time the slot is freed                    |
//!
//! Each loop numbers its slots from 0, so the 64-bit value alone repeats
//! across loops; the loop index, kept beside it, tells the tokens apart (it
//! takes part in `==` and `Hash`).
//!
//! A closed connection's slot is reused, and the kernel reuses its fd number,
//! but the generation differs, so a late event, timer or handle operation
//! that names the old connection finds nothing and is dropped.
//! Slots stay below 2^31: bit 31 marks the tokens of the loop's executor
//! (the async front-end's records, see `rt`), so one epoll set serves both
//! the engine's entries and the executor's records. `u64::MAX` is the loop's
//! waker, `u64::MAX - 1` the executor's.

use std::fmt;

/// Identifies one registration (connection or listener) of an engine: its
/// loop, its slot in that loop's table and the slot's generation. A key
/// that stays unique across the engine's loops and over the reuse of slots
/// and descriptor numbers.
///
/// ```
/// # fn f(a: &netloom::Conn<'_, ()>, b: &netloom::Conn<'_, ()>) {
/// let mut seen = std::collections::HashSet::new();
/// seen.insert(a.token());
/// assert_eq!(seen.contains(&b.token()), a.token() == b.token());
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    raw: u64,
    loop_index: u32,
}

impl Token {
    /// The token of the loop's waker; never a slab entry.
    pub(crate) const WAKER: Token = Token::from_raw(u64::MAX);
    /// The token of the executor's waker; never a slab entry.
    pub(crate) const EXECUTOR_WAKER: Token = Token::from_raw(u64::MAX - 1);
    /// Set in every executor token registered with the poller.
    pub(crate) const EXECUTOR_FLAG: u64 = 1 << 31;

    /// Whether the poller's `raw` token belongs to the loop's executor.
    pub(crate) fn is_executor(raw: u64) -> bool {
        raw & Self::EXECUTOR_FLAG != 0 && raw != Self::WAKER.raw
    }

    fn new(loop_index: u32, slot: u32, generation: u32) -> Token {
        Token {
            raw: ((generation as u64) << 32) | slot as u64,
            loop_index,
        }
    }

    /// The index of the event loop that owns the registration
    /// (`0..engine.loops()`).
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let loop_index = conn.token().loop_index();
    /// # }
    /// ```
    pub fn loop_index(self) -> usize {
        self.loop_index as usize
    }

    /// The slab slot this token points at.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let slot = conn.token().slot();
    /// # }
    /// ```
    pub fn slot(self) -> u32 {
        self.raw as u32
    }

    /// How many times the slot had been reused when this token was issued.
    ///
    /// ```
    /// # fn f(conn: &netloom::Conn<'_, ()>) {
    /// let generation = conn.token().generation();
    /// # }
    /// ```
    pub fn generation(self) -> u32 {
        (self.raw >> 32) as u32
    }

    /// The token of loop 0 (or of an executor, whose tokens never leave
    /// its loop) for the kernel's `raw` value.
    pub(crate) const fn from_raw(raw: u64) -> Token {
        Token { raw, loop_index: 0 }
    }

    /// The value registered with the kernel (the loop index is not in it).
    pub(crate) fn raw(self) -> u64 {
        self.raw
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Token({}/{}#{})",
            self.loop_index,
            self.slot(),
            self.generation()
        )
    }
}

enum Slot<T> {
    Occupied { generation: u32, value: T },
    Vacant { generation: u32, next_free: u32 },
}

/// A slab whose keys are generation-checked [`Token`]s of one loop.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free_head: u32,
    len: usize,
    /// Stamped into every token the slab issues.
    loop_index: u32,
}

const NO_FREE: u32 = u32::MAX;
/// Slots stay below this, so `Token::EXECUTOR_FLAG` is never a slot bit.
const SLOT_LIMIT: u32 = 1 << 31;

impl<T> Slab<T> {
    /// A slab whose tokens name loop 0 (an executor's: its tokens stay
    /// inside its loop).
    pub(crate) fn new() -> Slab<T> {
        Slab::for_loop(0)
    }

    /// The slab of event loop `loop_index`, whose tokens name that loop.
    pub(crate) fn for_loop(loop_index: usize) -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free_head: NO_FREE,
            len: 0,
            loop_index: u32::try_from(loop_index).expect("loop index fits in u32"),
        }
    }

    /// The token of this slab's loop for the kernel's `raw` value.
    pub(crate) fn token_of(&self, raw: u64) -> Token {
        Token {
            raw,
            loop_index: self.loop_index,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The token the next `insert` will return; lets a value know its own token.
    pub(crate) fn next_token(&self) -> Token {
        if self.free_head == NO_FREE {
            Token::new(self.loop_index, self.slots.len() as u32, 0)
        } else {
            match &self.slots[self.free_head as usize] {
                Slot::Vacant { generation, .. } => {
                    Token::new(self.loop_index, self.free_head, *generation)
                }
                Slot::Occupied { .. } => unreachable!("free list points at an occupied slot"),
            }
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> Token {
        let token = self.next_token();
        let slot = token.slot();
        if slot as usize == self.slots.len() {
            assert!(slot < SLOT_LIMIT, "slab full");
            self.slots.push(Slot::Occupied {
                generation: 0,
                value,
            });
        } else {
            let next_free = match self.slots[slot as usize] {
                Slot::Vacant { next_free, .. } => next_free,
                Slot::Occupied { .. } => unreachable!(),
            };
            self.free_head = next_free;
            self.slots[slot as usize] = Slot::Occupied {
                generation: token.generation(),
                value,
            };
        }
        self.len += 1;
        token
    }

    pub(crate) fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        match self.slots.get_mut(token.slot() as usize) {
            Some(Slot::Occupied { generation, value }) if *generation == token.generation() => {
                Some(value)
            }
            _ => None,
        }
    }

    /// The token of the value in `slot`, if one is there.
    pub(crate) fn token_in_slot(&self, slot: u32) -> Option<Token> {
        match self.slots.get(slot as usize) {
            Some(Slot::Occupied { generation, .. }) => {
                Some(Token::new(self.loop_index, slot, *generation))
            }
            _ => None,
        }
    }

    pub(crate) fn contains(&self, token: Token) -> bool {
        matches!(
            self.slots.get(token.slot() as usize),
            Some(Slot::Occupied { generation, .. }) if *generation == token.generation()
        )
    }

    pub(crate) fn remove(&mut self, token: Token) -> Option<T> {
        if !self.contains(token) {
            return None;
        }
        let slot = token.slot();
        let vacant = Slot::Vacant {
            generation: token.generation().wrapping_add(1),
            next_free: self.free_head,
        };
        let old = std::mem::replace(&mut self.slots[slot as usize], vacant);
        self.free_head = slot;
        self.len -= 1;
        match old {
            Slot::Occupied { value, .. } => Some(value),
            Slot::Vacant { .. } => unreachable!(),
        }
    }

    /// Every occupied slot's value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Occupied { value, .. } => Some(value),
            Slot::Vacant { .. } => None,
        })
    }

    /// Every occupied slot's value, mutably.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(|s| match s {
            Slot::Occupied { value, .. } => Some(value),
            Slot::Vacant { .. } => None,
        })
    }

    /// Tokens of every occupied slot.
    pub(crate) fn tokens(&self) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Occupied { generation, .. } => {
                    Some(Token::new(self.loop_index, i as u32, *generation))
                }
                Slot::Vacant { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slot_rejects_the_old_token() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(a.slot(), b.slot(), "the slot is reused");
        assert_ne!(a, b);
        assert_eq!(slab.get_mut(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn free_list_reuses_most_recent_first_and_tokens_enumerates() {
        let mut slab = Slab::new();
        let t: Vec<_> = (0..4).map(|i| slab.insert(i)).collect();
        slab.remove(t[1]);
        slab.remove(t[3]);
        assert_eq!(slab.next_token().slot(), 3);
        let n = slab.insert(9);
        assert_eq!(n.slot(), 3);
        assert_eq!(slab.insert(8).slot(), 1);
        assert_eq!(slab.insert(7).slot(), 4);
        let mut slots: Vec<_> = slab.tokens().iter().map(|t| t.slot()).collect();
        slots.sort();
        assert_eq!(slots, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn token_packs_slot_and_generation() {
        let t = Token::new(0, 0xdead_beef, 7);
        assert_eq!(t.slot(), 0xdead_beef);
        assert_eq!(t.generation(), 7);
        assert_eq!(Token::from_raw(t.raw()), t);
        assert_eq!(format!("{t:?}"), "Token(0/3735928559#7)");
    }

    #[test]
    fn the_same_slot_on_two_loops_is_two_tokens() {
        let mut first = Slab::for_loop(0);
        let mut second = Slab::for_loop(1);
        let a = first.insert("a");
        let b = second.insert("b");
        assert_eq!((a.slot(), a.generation()), (b.slot(), b.generation()));
        assert_eq!(a.raw(), b.raw(), "the kernel's value repeats");
        assert_ne!(a, b);
        assert_eq!((a.loop_index(), b.loop_index()), (0, 1));
        assert_eq!(second.token_of(b.raw()), b);
        assert_eq!(format!("{b:?}"), "Token(1/0#0)");
    }
}
