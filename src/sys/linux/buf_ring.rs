//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`): buffers a loop
//! lends the kernel, from which a multishot recv picks one per completion.
//! An idle connection holds no buffer; a buffer is taken only when bytes
//! arrive, and the loop gives it back as soon as `on_traffic` returned
//! (what the handler left unread is copied into the connection's own
//! inbound buffer).
//!
//! The ring is an array of `io_uring_buf` entries the kernel reads from
//! its head and the loop appends to at its tail (the `resv` field of entry
//! 0, published with a release store). Buffer `bid` is always the
//! `bid`-th `buf_size` bytes of one allocation, so a completion's buffer id
//! finds its bytes without a table.
//!
//! Ownership: a buffer in the ring belongs to the kernel, which may write
//! into it at any time the ring is registered; a buffer named by a
//! completion belongs to the loop until [`BufRing::give_back`]. The memory
//! is freed only after the ring is unregistered, which stops the kernel
//! from picking buffers (buffer selection and the copy into the buffer run
//! on the loop's thread, inside its `io_uring_enter`: a single-issuer ring
//! with deferred task work), so no request can be writing then.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::uring::Selector;

/// A loop's buffer ring, registered with its io_uring under group `bgid`.
pub(crate) struct BufRing {
    selector: Selector,
    bgid: u16,
    /// `entries` ring slots (`BufRingEntry`), page-aligned.
    ring: NonNull<BufRingEntry>,
    /// `entries * buf_size` bytes: buffer `bid` starts at `bid * buf_size`.
    buffers: NonNull<u8>,
    entries: u16,
    buf_size: u32,
    /// The next tail value to publish (wraps; the kernel masks it).
    tail: u16,
    /// Buffers handed out by completions and not given back yet.
    lent: u32,
}

impl BufRing {
    /// Allocates `entries` (a power of two up to 32768) buffers of
    /// `buf_size` bytes, puts all of them in the ring and registers it.
    pub(crate) fn new(
        selector: &Selector,
        bgid: u16,
        entries: u16,
        buf_size: u32,
    ) -> io::Result<BufRing> {
        assert!(entries.is_power_of_two() && buf_size > 0);
        let ring_layout = ring_layout(entries);
        let buffers_layout = buffers_layout(entries, buf_size);
        // SAFETY: both layouts have a non-zero size. Zeroed: pages of the
        // buffers no recv ever wrote into cost no memory.
        let (ring, buffers) = unsafe {
            (
                alloc::alloc_zeroed(ring_layout).cast::<BufRingEntry>(),
                alloc::alloc_zeroed(buffers_layout),
            )
        };
        let (Some(ring), Some(buffers)) = (NonNull::new(ring), NonNull::new(buffers)) else {
            alloc::handle_alloc_error(ring_layout);
        };
        let mut this = BufRing {
            selector: selector.clone(),
            bgid,
            ring,
            buffers,
            entries,
            buf_size,
            tail: 0,
            lent: u32::from(entries),
        };
        for bid in 0..entries {
            this.give_back(bid);
        }
        // SAFETY: the ring memory is page-aligned, holds `entries` entries
        // and stays allocated until `drop` has unregistered it; the buffers
        // it names stay allocated as long.
        let registered =
            unsafe { selector.register_buf_ring(this.ring.as_ptr() as u64, entries, bgid) };
        if let Err(e) = registered {
            // Not registered: nothing of the kernel's points here.
            this.free();
            std::mem::forget(this);
            return Err(e);
        }
        Ok(this)
    }

    /// The buffer group recv requests name to select from this ring.
    pub(crate) fn group(&self) -> u16 {
        self.bgid
    }

    /// The first `len` bytes of buffer `bid`, which a completion handed to
    /// the loop (and which it has not given back).
    pub(crate) fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.entries && len <= self.buf_size as usize);
        let offset = bid as usize * self.buf_size as usize;
        // SAFETY: in bounds (checked above); the kernel wrote these bytes
        // before posting the completion that named `bid`, and does not touch
        // the buffer again until `give_back(bid)`, which needs `&mut self`
        // and so ends this borrow first.
        unsafe { std::slice::from_raw_parts(self.buffers.as_ptr().add(offset), len) }
    }

    /// Returns buffer `bid` to the kernel: appends it at the tail and
    /// publishes the new tail.
    pub(crate) fn give_back(&mut self, bid: u16) {
        assert!(bid < self.entries && self.lent > 0);
        self.lent -= 1;
        let mask = self.entries - 1;
        let index = usize::from(self.tail & mask);
        // SAFETY: `index < entries`, inside the ring allocation. The slot at
        // the tail is not one the kernel reads: it reads from the head up to
        // the published tail, and at most `entries` buffers are in the ring.
        let entry = unsafe { &mut *self.ring.as_ptr().add(index) };
        entry.set_addr(self.buffers.as_ptr() as u64 + u64::from(bid) * u64::from(self.buf_size));
        entry.set_len(self.buf_size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: `tail` points at the `resv` field of entry 0, an aligned
        // u16 inside the ring allocation that the kernel only reads (with
        // an acquire load); the release store publishes the entry written
        // above before the new tail.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.as_ptr()) as *mut u16;
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// Buffers completions handed to the loop and not given back yet.
    pub(crate) fn lent(&self) -> u32 {
        self.lent
    }

    /// Notes that a completion handed buffer `bid` to the loop.
    pub(crate) fn take(&mut self, bid: u16) {
        assert!(bid < self.entries);
        self.lent += 1;
    }

    fn free(&mut self) {
        // SAFETY: allocated in `new` with these layouts, freed only here,
        // once (after unregistering or failing to register).
        unsafe {
            alloc::dealloc(self.ring.as_ptr().cast(), ring_layout(self.entries));
            alloc::dealloc(
                self.buffers.as_ptr(),
                buffers_layout(self.entries, self.buf_size),
            );
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        match self.selector.unregister_buf_ring(self.bgid) {
            Ok(()) => self.free(),
            // Still registered: the kernel may write into the buffers, so
            // they stay allocated (the ring's own teardown ends that).
            Err(e) => log::error!("netloom: io_uring buffer ring not unregistered, leaked: {e}"),
        }
    }
}

fn ring_layout(entries: u16) -> Layout {
    let size = usize::from(entries) * std::mem::size_of::<BufRingEntry>();
    // The kernel wants the ring page-aligned.
    Layout::from_size_align(size, 4096).expect("ring layout")
}

fn buffers_layout(entries: u16, buf_size: u32) -> Layout {
    Layout::from_size_align(usize::from(entries) * buf_size as usize, 64).expect("buffers layout")
}
