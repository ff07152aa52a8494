//! Per-thread batching of allocation counts: the allocator's per-call bookkeeping.
//!
//! **The lane.** While a thread runs connection code inside a *region* (a hooked task poll, a
//! connection scope's poll, a tag guard: `tag::enter`), its current tag has a *lane*: four
//! plain per-thread counters and a byte *budget*. An allocation subtracts its size from the
//! budget and, while the budget stays positive, adds to the lane and writes the lane's tag
//! into the block's header; that is the whole per-allocation cost. A free whose header equals
//! the lane's tag adds to the lane's free counters. Everything else takes the slow path
//! ([`Cache::alloc_slow`], [`Cache::free_slow`]): frees of other tags' blocks, sampled blocks,
//! allocations while the lane is closed, and the allocation that exhausts the budget.
//!
//! **The budget** is the smaller of the bytes left until the next allocation sample (the
//! geometric countdown of `sample`) and 256 KiB: one test serves sampling and freshness. The
//! slow path folds the lane's bytes into the countdown, counts, samples, reopens the lane.
//!
//! **The cache.** Closing the lane (the tag changes, a region starts or ends, a nested section
//! starts, the budget runs out) moves its counts into a 4-entry cache of (tag, counts), which
//! also takes the slow path's counts. Entries reach the shared slot counters when a fifth tag
//! needs a place (the victim is flushed), when an entry holds 256 KiB, and when the thread
//! leaves its outermost region. **No count is ever stranded:** outside every region (a
//! blocking-pool thread running plain `spawn_blocking`, a plain std thread, a runtime without
//! hooks between polls) the lane is closed and each count goes straight to the shared counters.
//!
//! **Nested sections** (the sampling path, an inner allocator that allocates, code that
//! allocates while holding the sample table's lock) close the lane and raise a depth: what
//! they allocate is nobody's and never sampled. Everything here is allocation-free, lock-free
//! and panic-free (it runs inside the global allocator); the thread-local is `const` with no
//! destructor, so it works before `main`, in thread-local destructors and during exit.

use std::cell::Cell;

use crate::heap::slots::{self, Delta};
use crate::ids::Tag;

const ENTRIES: usize = 4;
/// An entry holding this many allocated or freed bytes is flushed; the lane's budget never
/// exceeds it.
const FLUSH_BYTES: u64 = 256 * 1024;
/// The lane's tag while it is closed: no header carries it (slots stay below 2^24).
const CLOSED: u64 = u64::MAX;

// `repr(C)`: the lane's counters stay apart, one add each (not merged into vector operations).
#[repr(C)]
pub(super) struct Cache {
    /// Bytes the lane may still allocate (0: closed or exhausted; a refused allocation wraps
    /// it below zero until the slow path resets it), unsigned so the fast path tests the
    /// subtraction's own flags. The lane allocated `armed - budget` (wrapping) bytes.
    budget: Cell<u64>,
    lane_alloc_blocks: Cell<u64>,
    /// The header bits of the lane's tag, or [`CLOSED`].
    lane: Cell<u64>,
    lane_free_bytes: Cell<u64>,
    /// The budget the lane was opened with (so `armed - budget` bytes went through it).
    armed: Cell<u64>,
    lane_free_blocks: Cell<u64>,
    /// Depth of nested sections (inside one, allocations are nobody's).
    depth: Cell<u32>,
    /// Depth of regions whose end flushes (0: every count goes straight to the counters).
    regions: Cell<u32>,
    /// Whether any entry holds counts (so `flush` has work).
    dirty: Cell<bool>,
    victim: Cell<usize>,
    tags: [Cell<Tag>; ENTRIES],
    counts: [Cell<Delta>; ENTRIES],
    /// Bytes until the next sampled allocation, as of the lane's last closing.
    sample_left: Cell<i64>,
    /// The sampling countdown's random state (0 before the first countdown).
    rng: Cell<u64>,
    /// The tag of the code running on this thread (see `crate::tag`).
    current: Cell<Tag>,
    /// The task the poll hooks are polling here, and a task whose poll panicked here (0:
    /// none): the poll's hand-offs, kept here so that a hook computes one thread-local address.
    polling: Cell<u64>,
    panicked: Cell<u64>,
}

const ZERO: Delta = Delta {
    alloc_bytes: 0,
    free_bytes: 0,
    alloc_blocks: 0,
    free_blocks: 0,
};

impl Cache {
    pub(super) const fn new() -> Cache {
        Cache {
            budget: Cell::new(0),
            lane_alloc_blocks: Cell::new(0),
            lane: Cell::new(CLOSED),
            lane_free_bytes: Cell::new(0),
            armed: Cell::new(0),
            lane_free_blocks: Cell::new(0),
            tags: [const { Cell::new(Tag::NONE) }; ENTRIES],
            counts: [const { Cell::new(ZERO) }; ENTRIES],
            victim: Cell::new(0),
            dirty: Cell::new(false),
            depth: Cell::new(0),
            regions: Cell::new(0),
            sample_left: Cell::new(0),
            rng: Cell::new(0),
            current: Cell::new(Tag::NONE),
            polling: Cell::new(0),
            panicked: Cell::new(0),
        }
    }

    /// The fast path of an allocation of `size` bytes: the header bits to write, or `None`
    /// for the slow path ([`Cache::alloc_slow`], which must follow).
    #[inline(always)]
    pub(super) fn alloc_fast(&self, size: u64) -> Option<u64> {
        // One subtraction from memory, one branch on its borrow or zero: `sub`, `jbe`.
        let (left, borrow) = self.budget.get().overflowing_sub(size);
        self.budget.set(left);
        if borrow | (left == 0) {
            return None;
        }
        self.lane_alloc_blocks.set(self.lane_alloc_blocks.get() + 1);
        Some(self.lane.get())
    }

    /// The slow path of an allocation, right after [`Cache::alloc_fast`] said no (which took
    /// `size` from the budget, so closing the lane counts it down the sampling countdown):
    /// counts it; its owner, and whether to sample it.
    #[cold]
    #[inline(never)]
    pub(super) fn alloc_slow(&self, size: u64) -> (Tag, bool) {
        self.close_lane(size);
        let outermost = self.depth.get() == 0;
        let owner = if outermost {
            self.current.get()
        } else {
            Tag::NONE
        };
        let sample = self.draw(outermost);
        self.count(owner, size, true);
        self.open_lane();
        (owner, sample)
    }

    /// After the lane closed: if the sampling countdown ran out, draws the next one and says
    /// whether the block that ended it is sampled (not the thread's first draw, not nested).
    fn draw(&self, outermost: bool) -> bool {
        let mut left = self.sample_left.get();
        let mut sample = false;
        if left <= 0 {
            let mut rng = self.rng.get();
            // The thread's first draw samples nothing.
            let first = rng == 0;
            if first {
                rng = (std::ptr::from_ref(self) as u64) | 1;
            }
            left = super::sample::next_countdown(&mut rng);
            self.rng.set(rng);
            sample = !first && outermost && super::sample::interval() != 0;
        }
        self.sample_left.set(left);
        sample
    }

    /// The fast path of a free of `size` bytes whose header is `bits`: whether it was counted.
    #[inline(always)]
    pub(super) fn free_fast(&self, bits: u64, size: u64) -> bool {
        if bits != self.lane.get() {
            return false;
        }
        self.lane_free_bytes.set(self.lane_free_bytes.get() + size);
        self.lane_free_blocks.set(self.lane_free_blocks.get() + 1);
        true
    }

    /// The slow path of a free of `size` bytes owned by `owner`.
    #[cold]
    #[inline(never)]
    pub(super) fn free_slow(&self, owner: Tag, size: u64) {
        self.count(owner, size, false);
    }

    /// Counts one block into the cache (inside a region) or straight to the counters.
    fn count(&self, tag: Tag, bytes: u64, alloc: bool) {
        let one = Delta::one(bytes, alloc);
        if self.regions.get() == 0 {
            slots::apply(tag, &one);
            super::mark_tracking();
        } else {
            self.add(tag, &one);
        }
    }

    /// Adds `d` to `tag`'s cache entry, flushing it if it holds enough.
    fn add(&self, tag: Tag, d: &Delta) {
        let i = self.index(tag);
        let mut e = self.counts[i].get();
        e.alloc_bytes += d.alloc_bytes;
        e.alloc_blocks += d.alloc_blocks;
        e.free_bytes += d.free_bytes;
        e.free_blocks += d.free_blocks;
        self.counts[i].set(e);
        self.dirty.set(true);
        if e.alloc_bytes >= FLUSH_BYTES || e.free_bytes >= FLUSH_BYTES {
            self.flush_entry(i);
        }
    }

    fn index(&self, tag: Tag) -> usize {
        if let Some(i) = (0..ENTRIES).find(|&i| self.tags[i].get() == tag) {
            return i;
        }
        // The victim entry goes to `tag`, its counts to the shared counters.
        let i = self.victim.get();
        self.victim.set((i + 1) % ENTRIES);
        self.flush_entry(i);
        self.tags[i].set(tag);
        i
    }

    fn flush_entry(&self, i: usize) {
        let d = self.counts[i].replace(ZERO);
        if d.alloc_blocks != 0 || d.free_blocks != 0 {
            slots::apply(self.tags[i].get(), &d);
            super::mark_tracking();
        }
    }

    fn flush(&self) {
        for i in 0..ENTRIES {
            self.flush_entry(i);
        }
        self.dirty.set(false);
    }

    /// Closes the lane: folds the bytes it allocated into the sampling countdown and moves its
    /// counts into the cache. `refused` is the size of an allocation [`Cache::alloc_fast`] took
    /// from the budget but did not count (0 if none).
    #[inline]
    fn close_lane(&self, refused: u64) {
        let used = self.armed.get().wrapping_sub(self.budget.get()); // (see `budget`)
        self.sample_left.set(self.sample_left.get() - used as i64);
        self.budget.set(0);
        self.armed.set(0);
        let bits = self.lane.replace(CLOSED);
        if bits == CLOSED {
            // Closed already (outside every region): it holds no counts.
            return;
        }
        let alloc_blocks = self.lane_alloc_blocks.replace(0);
        let (free_bytes, free_blocks) = (
            self.lane_free_bytes.replace(0),
            self.lane_free_blocks.replace(0),
        );
        if alloc_blocks | free_blocks != 0 {
            // The lane is open only inside a region: the cache takes its counts.
            let d = Delta {
                alloc_bytes: used.wrapping_sub(refused),
                alloc_blocks,
                free_bytes,
                free_blocks,
            };
            self.add(Tag::from_bits(bits), &d);
        }
    }

    /// Opens the lane for the current tag if the thread is in a region and not nested.
    #[inline]
    fn open_lane(&self) {
        if self.regions.get() == 0 || self.depth.get() != 0 {
            return;
        }
        self.arm_lane();
    }

    /// Opens the lane for the current tag, with the budget the sampling countdown allows.
    #[inline(always)]
    fn arm_lane(&self) {
        let budget = self.sample_left.get().clamp(0, FLUSH_BYTES as i64) as u64;
        self.budget.set(budget);
        self.armed.set(budget);
        self.lane.set(self.current.get().to_bits());
    }

    /// Enters a nested section; returns the depth to restore.
    #[inline]
    pub(super) fn enter_nested(&self) -> u32 {
        self.close_lane(0);
        let d = self.depth.get();
        self.depth.set(d + 1);
        d
    }

    /// Restores the depth [`Cache::enter_nested`] returned.
    #[inline]
    pub(super) fn leave_nested(&self, d: u32) {
        self.depth.set(d);
        self.open_lane();
    }
}

thread_local! {
    static CACHE: Cache = const { Cache::new() };
}

/// Runs `f` with this thread's cache; `None` only if the thread-local is gone (it has no
/// destructor, so in practice never).
#[inline(always)]
pub(super) fn with<R>(f: impl FnOnce(&Cache) -> R) -> Option<R> {
    CACHE.try_with(f).ok()
}

/// The current tag of this thread (none if the thread-local is gone).
#[inline(always)]
pub(crate) fn current() -> Tag {
    CACHE.try_with(|c| c.current.get()).unwrap_or(Tag::NONE)
}

/// Applies one count directly, for the (theoretical) case of a missing thread-local.
pub(super) fn direct(tag: Tag, bytes: u64, alloc: bool) {
    slots::apply(tag, &Delta::one(bytes, alloc));
}

/// Runs `f` as a nested section: what it allocates is nobody's and never sampled (an inner
/// allocator's own work; code that allocates while holding a lock the sampling path takes).
#[inline]
pub(crate) fn nested<R>(f: impl FnOnce() -> R) -> R {
    let depth = CACHE.try_with(Cache::enter_nested).ok();
    let out = f();
    if let Some(d) = depth {
        let _ = CACHE.try_with(|c| c.leave_nested(d));
    }
    out
}

/// Pushes this thread's pending counts to the shared counters.
#[cfg(test)]
pub(crate) fn flush() {
    let _ = CACHE.try_with(|c| {
        c.close_lane(0);
        c.flush();
        c.open_lane();
    });
}

mod moves;
mod regions;
#[cfg(tokio_unstable)]
pub(crate) use regions::{enter_poll, leave_poll, set_polling};
pub(crate) use regions::{
    enter_scope, leave_scope, mark_panicked_poll, polling, replace_current, take_panicked,
};
#[cfg(test)]
mod tests;
