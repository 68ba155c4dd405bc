//! Per-connection byte buffers and the per-loop pool they come from.
//!
//! A connection holds no buffer while idle: its inbound buffer is taken from
//! the loop's [`BufferPool`] only when a callback leaves bytes unread, and its
//! outbound chunks only while writes are pending; both go back to the pool as
//! soon as they are empty.
//!
//! The inbound buffer is a compacting buffer rather than a wrap-around ring:
//! the handler's `peek(n)` then always sees contiguous bytes (no copy to
//! stitch two halves), and compaction moves at most the unread tail, only
//! when the free space at the front exceeds what is left unread.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Buffers larger than this are freed rather than pooled, so one burst does
/// not pin its memory forever.
const MAX_POOLED_CAPACITY: usize = 64 * 1024;
/// Writes up to this size are copied into the tail chunk; larger ones get a
/// chunk of their own.
const COALESCE_LIMIT: usize = 16 * 1024;
/// Default capacity of a chunk taken from the pool.
const CHUNK_SIZE: usize = 4096;
/// Most IoSlices handed to one writev.
const MAX_IOVECS: usize = 64;

/// A free list of byte vectors, one per event loop, holding at most
/// `max_bytes` of capacity: a burst of large writes does not pin its memory.
pub(crate) struct BufferPool {
    free: Vec<Vec<u8>>,
    pooled_bytes: usize,
    max_bytes: usize,
}

impl BufferPool {
    pub(crate) fn new(max_bytes: usize) -> BufferPool {
        BufferPool {
            free: Vec::new(),
            pooled_bytes: 0,
            max_bytes,
        }
    }

    pub(crate) fn take(&mut self, min_capacity: usize) -> Vec<u8> {
        match self.free.pop() {
            Some(mut buf) => {
                self.pooled_bytes -= buf.capacity();
                buf.reserve(min_capacity);
                buf
            }
            None => Vec::with_capacity(min_capacity.max(CHUNK_SIZE)),
        }
    }

    pub(crate) fn give(&mut self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if capacity <= MAX_POOLED_CAPACITY && self.pooled_bytes + capacity <= self.max_bytes {
            buf.clear();
            self.pooled_bytes += capacity;
            self.free.push(buf);
        }
    }
}

/// Bytes received but not yet consumed by the handler.
#[derive(Default)]
pub(crate) struct InboundBuffer {
    buf: Vec<u8>,
    head: usize,
}

impl InboundBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.buf.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Consumes `n` bytes and returns them (they stay valid until the next append).
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let start = self.head;
        self.head += n.min(self.len());
        &self.buf[start..self.head]
    }

    /// Appends `data`, taking a buffer from the pool if none is held.
    pub(crate) fn extend(&mut self, data: &[u8], pool: &mut BufferPool) {
        if self.buf.capacity() == 0 {
            self.buf = pool.take(data.len());
        } else if self.head > 0 && self.head >= self.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Makes room for `additional` more bytes, so that
    /// [`append_reserved`](InboundBuffer::append_reserved) needs no pool.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) fn reserve(&mut self, additional: usize, pool: &mut BufferPool) {
        if self.buf.capacity() == 0 {
            self.buf = pool.take(additional);
        } else if self.head > 0 && self.head >= self.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.reserve(additional);
    }

    /// Appends `data` into room made by [`reserve`](InboundBuffer::reserve)
    /// (decrypted TLS records, while the pool is lent to the ciphertext sink).
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) fn append_reserved(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Returns the buffer to the pool once everything was consumed.
    pub(crate) fn release_if_empty(&mut self, pool: &mut BufferPool) {
        if self.is_empty() && self.buf.capacity() > 0 {
            pool.give(std::mem::take(&mut self.buf));
            self.head = 0;
        }
    }
}

/// Bytes accepted for writing but not yet taken by the kernel.
///
/// Queued bytes never move: appends go into a chunk's spare capacity or a
/// new chunk, never grow a chunk, so the io_uring path can lend the front
/// runs to a send until its completion (and must not `clear` meanwhile).
#[derive(Default)]
pub(crate) struct OutboundQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    head: usize,
    len: usize,
}

impl OutboundQueue {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` in, into the tail chunk when it fits.
    pub(crate) fn push_slice(&mut self, data: &[u8], pool: &mut BufferPool) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if let Some(tail) = self.chunks.back_mut() {
            if data.len() <= tail.capacity() - tail.len() {
                tail.extend_from_slice(data);
                return;
            }
        }
        let mut chunk = if data.len() <= COALESCE_LIMIT {
            pool.take(data.len())
        } else {
            Vec::with_capacity(data.len())
        };
        chunk.extend_from_slice(data);
        self.chunks.push_back(chunk);
    }

    /// Lends `len` writable bytes at the tail (of the tail chunk when they
    /// fit, else of a new chunk); `fill` returns how many it wrote, and only
    /// those are queued. TLS records are encrypted straight into the queue
    /// this way.
    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    pub(crate) fn append_with<E>(
        &mut self,
        len: usize,
        pool: &mut BufferPool,
        fill: impl FnOnce(&mut [u8]) -> std::result::Result<usize, E>,
    ) -> std::result::Result<usize, E> {
        let fill_tail = |chunk: &mut Vec<u8>| {
            let start = chunk.len();
            chunk.resize(start + len, 0);
            let written = fill(&mut chunk[start..]);
            chunk.truncate(start + *written.as_ref().unwrap_or(&0));
            written
        };
        let written = match self.chunks.back_mut() {
            Some(tail) if tail.capacity() - tail.len() >= len => fill_tail(tail),
            _ => {
                let mut chunk = if len <= COALESCE_LIMIT + 1024 {
                    pool.take(len)
                } else {
                    Vec::with_capacity(len)
                };
                let written = fill_tail(&mut chunk);
                if chunk.is_empty() {
                    pool.give(chunk);
                } else {
                    self.chunks.push_back(chunk);
                }
                written
            }
        };
        self.len += *written.as_ref().unwrap_or(&0);
        written
    }

    /// Queues an owned buffer without copying it.
    pub(crate) fn push_owned(&mut self, data: Vec<u8>, pool: &mut BufferPool) {
        if data.len() <= 256 {
            self.push_slice(&data, pool);
        } else {
            self.len += data.len();
            self.chunks.push_back(data);
        }
    }

    /// Writes as much as the kernel takes with one `writev`; returns the bytes
    /// written (`WouldBlock` is an error the caller treats as "not now").
    pub(crate) fn write_to<W: Write>(
        &mut self,
        dst: &mut W,
        pool: &mut BufferPool,
    ) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
            let start = if i == 0 { self.head } else { 0 };
            slices[i] = IoSlice::new(&chunk[start..]);
            count += 1;
        }
        let written = dst.write_vectored(&slices[..count])?;
        self.consume(written, pool);
        Ok(written)
    }

    /// The queued bytes as up to `MAX_IOVECS` contiguous runs, front first:
    /// what one send or writev hands the kernel.
    pub(crate) fn front_runs(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks
            .iter()
            .take(MAX_IOVECS)
            .enumerate()
            .map(|(i, chunk)| {
                if i == 0 {
                    &chunk[self.head..]
                } else {
                    &chunk[..]
                }
            })
    }

    /// Drops the first `n` bytes, which the kernel has taken; emptied
    /// chunks go back to `pool`.
    pub(crate) fn consume(&mut self, mut n: usize, pool: &mut BufferPool) {
        self.len -= n;
        while n > 0 {
            let front_left = self.chunks[0].len() - self.head;
            if n < front_left {
                self.head += n;
                return;
            }
            n -= front_left;
            self.head = 0;
            if let Some(chunk) = self.chunks.pop_front() {
                pool.give(chunk);
            }
        }
        if self.len == 0 {
            // A drained queue gives back its (possibly grown) deque too.
            while let Some(chunk) = self.chunks.pop_front() {
                pool.give(chunk);
            }
            self.chunks = VecDeque::new();
            self.head = 0;
        }
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear(&mut self, pool: &mut BufferPool) {
        for chunk in self.chunks.drain(..) {
            pool.give(chunk);
        }
        self.chunks = VecDeque::new();
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
    }
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.limit - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
            }
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn outbound_preserves_order_across_partial_writes() {
        let mut pool = BufferPool::new(1 << 20);
        let mut q = OutboundQueue::default();
        let mut expected = Vec::new();
        for i in 0..50u32 {
            let piece: Vec<u8> = (0..(i * 997 % 40_000)).map(|j| (i + j) as u8).collect();
            expected.extend_from_slice(&piece);
            if i % 2 == 0 {
                q.push_slice(&piece, &mut pool);
            } else {
                q.push_owned(piece, &mut pool);
            }
        }
        assert_eq!(q.len(), expected.len());
        let mut sink = Trickle {
            out: Vec::new(),
            limit: 3000,
        };
        while !q.is_empty() {
            q.write_to(&mut sink, &mut pool).unwrap();
        }
        assert_eq!(sink.out, expected);
        assert!(q.chunks.is_empty() && q.head == 0);
    }

    #[test]
    fn inbound_compacts_and_returns_to_pool() {
        let mut pool = BufferPool::new(1 << 20);
        let mut inb = InboundBuffer::default();
        inb.extend(b"hello world", &mut pool);
        assert_eq!(inb.take(6), b"hello ");
        assert_eq!(inb.bytes(), b"world");
        inb.extend(b"!", &mut pool);
        assert_eq!(inb.bytes(), b"world!");
        inb.take(6);
        inb.release_if_empty(&mut pool);
        assert_eq!(
            inb.buf.capacity(),
            0,
            "an empty buffer goes back to the pool"
        );
        assert_eq!(pool.free.len(), 1);
    }

    #[test]
    fn pool_is_bounded_in_bytes_and_drops_oversized_buffers() {
        let mut pool = BufferPool::new(10_000);
        pool.give(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        assert!(pool.free.is_empty());
        for _ in 0..5 {
            pool.give(Vec::with_capacity(4000));
        }
        assert_eq!(
            pool.free.len(),
            2,
            "a third 4000-byte buffer passes 10,000 bytes"
        );
        let taken = pool.take(1);
        assert!(taken.capacity() >= 4000);
        pool.give(Vec::with_capacity(4000));
        assert_eq!(pool.free.len(), 2, "taking one makes room for one");
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    #[test]
    fn append_with_queues_only_what_was_written_in_order() {
        let mut pool = BufferPool::new(1 << 20);
        let mut q = OutboundQueue::default();
        q.push_slice(b"head ", &mut pool);
        // Room is lent generously; only what `fill` reports is kept.
        let n = q.append_with(100, &mut pool, |buf| {
            buf[..6].copy_from_slice(b"sealed");
            Ok::<_, ()>(6)
        });
        assert_eq!(n, Ok(6));
        // A failed fill keeps nothing, and an oversized one gets a chunk of its own.
        assert_eq!(q.append_with(10, &mut pool, |_| Err(())), Err(()));
        let big = q.append_with(40_000, &mut pool, |buf| {
            buf[..3].copy_from_slice(b" +3");
            Ok::<_, ()>(3)
        });
        assert_eq!(big, Ok(3));
        assert_eq!(q.len(), 14);
        let mut out = Trickle {
            out: Vec::new(),
            limit: 1 << 20,
        };
        q.write_to(&mut out, &mut pool).unwrap();
        assert_eq!(out.out, b"head sealed +3");
        assert!(q.is_empty());
    }

    #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
    #[test]
    fn reserved_inbound_appends_after_unconsumed_bytes() {
        let mut pool = BufferPool::new(1 << 20);
        let mut inbound = InboundBuffer::default();
        inbound.extend(b"abcdef", &mut pool);
        inbound.take(4);
        inbound.reserve(5, &mut pool);
        inbound.append_reserved(b"ghijk");
        assert_eq!(inbound.bytes(), b"efghijk");
    }
}
