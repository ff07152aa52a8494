//! Per-thread batching of allocation counts.
//!
//! Each thread keeps a 4-entry cache of (tag, counts). The allocator adds to it with a few
//! plain (non-atomic) additions; the entries reach the shared slot counters when a fifth tag
//! needs a place (the victim is flushed), when 256 KiB are pending, and when the thread leaves
//! its outermost *region*. Everything here is allocation-free, lock-free and panic-free: it
//! runs inside the global allocator. The thread-local is `const`-initialised with no
//! destructor, so it works before `main`, in thread-local destructors and during exit.
//!
//! **No count is ever stranded.** Counts are batched only inside a region: a hooked task poll
//! (before-poll to after-poll), a connection scope's poll, or a tag guard (`tag::enter`)
//! (`in_scope`, `spawn_blocking`, `untracked`). Leaving the outermost region flushes. Outside
//! every region (a blocking-pool thread running plain `spawn_blocking`, a plain std thread,
//! a runtime without hooks between polls) each count goes straight to the shared counters, so
//! a free on a thread that never runs again still reaches the snapshot at once.

use std::cell::Cell;

use crate::heap::slots::{self, Delta};
use crate::ids::Tag;

const ENTRIES: usize = 4;
/// A packed counter holds bytes in its low 40 bits and blocks in its high 24.
const BLOCK: u64 = 1 << 40;
const BYTES_MASK: u64 = BLOCK - 1;
/// An entry whose bytes reach this is flushed. Every count adds at least one byte, so at most
/// 2^18 counts are pending per entry: the 24-bit block field cannot overflow.
const FLUSH_BYTES: u64 = 256 * 1024;
/// Larger single counts bypass the cache (they would not fit the packed byte field).
const DIRECT_BYTES: u64 = 1 << 38;

pub(super) struct Cache {
    tags: [Cell<Tag>; ENTRIES],
    /// Packed (blocks << 40 | bytes) allocated per entry.
    allocs: [Cell<u64>; ENTRIES],
    /// Packed (blocks << 40 | bytes) freed per entry.
    frees: [Cell<u64>; ENTRIES],
    victim: Cell<usize>,
    /// Whether any entry holds counts (so `flush` has work).
    dirty: Cell<bool>,
    /// Depth of allocator calls on this thread (nested calls are charged to no connection).
    depth: Cell<u32>,
    /// Depth of regions whose end flushes (0: every count goes straight to the counters).
    regions: Cell<u32>,
    /// Bytes until the next sampled allocation (see `sample`).
    sample_left: Cell<i64>,
    /// The sampling countdown's random state (0 before the first countdown).
    rng: Cell<u64>,
    /// Counts of this many bytes or more go straight to the counters: `DIRECT_BYTES` inside a
    /// region, 0 outside (one compare decides both).
    direct_from: Cell<u64>,
    /// The tag of the code running on this thread (see `crate::tag`); kept here so the
    /// allocator reaches everything it needs through one thread-local.
    pub(crate) current: Cell<Tag>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            tags: [const { Cell::new(Tag::NONE) }; ENTRIES],
            allocs: [const { Cell::new(0) }; ENTRIES],
            frees: [const { Cell::new(0) }; ENTRIES],
            victim: Cell::new(0),
            dirty: Cell::new(false),
            depth: Cell::new(0),
            regions: Cell::new(0),
            sample_left: Cell::new(0),
            rng: Cell::new(0),
            direct_from: Cell::new(0),
            current: Cell::new(Tag::NONE),
        }
    };
}

impl Cache {
    #[inline(always)]
    fn index(&self, tag: Tag) -> usize {
        for i in 0..ENTRIES {
            if self.tags[i].get() == tag {
                return i;
            }
        }
        self.replace(tag)
    }

    /// Gives `tag` the victim entry, flushing what the victim held.
    #[cold]
    fn replace(&self, tag: Tag) -> usize {
        let i = self.victim.get();
        self.victim.set((i + 1) % ENTRIES);
        self.flush_entry(i);
        self.tags[i].set(tag);
        i
    }

    fn flush_entry(&self, i: usize) {
        let (a, f) = (self.allocs[i].replace(0), self.frees[i].replace(0));
        let d = Delta {
            alloc_bytes: a & BYTES_MASK,
            alloc_blocks: a >> 40,
            free_bytes: f & BYTES_MASK,
            free_blocks: f >> 40,
        };
        if d.alloc_blocks != 0 || d.free_blocks != 0 {
            slots::apply(self.tags[i].get(), &d);
            super::mark_tracking();
        }
    }

    #[inline(always)]
    fn count(&self, alloc: bool, tag: Tag, bytes: u64) {
        if bytes >= self.direct_from.get() {
            direct(tag, bytes, alloc);
            return;
        }
        let i = self.index(tag);
        let which = if alloc { &self.allocs } else { &self.frees };
        let v = which[i].get().wrapping_add(BLOCK | bytes);
        which[i].set(v);
        self.dirty.set(true);
        if v & BYTES_MASK >= FLUSH_BYTES {
            self.flush_entry(i);
        }
    }

    /// Counts an allocation of `bytes` for `tag`.
    #[inline(always)]
    pub(super) fn on_alloc(&self, tag: Tag, bytes: u64) {
        self.count(true, tag, bytes);
    }

    /// Counts a free of `bytes` owned by `tag`.
    #[inline(always)]
    pub(super) fn on_free(&self, tag: Tag, bytes: u64) {
        self.count(false, tag, bytes);
    }

    /// Enters an allocator call; returns whether it is the outermost one on this thread.
    #[inline(always)]
    pub(super) fn enter(&self) -> bool {
        let d = self.depth.get();
        self.depth.set(d + 1);
        d == 0
    }

    /// Counts `size` bytes against the sampling countdown; whether this allocation is sampled.
    #[inline(always)]
    pub(super) fn sample_due(&self, size: u64) -> bool {
        let left = self.sample_left.get() - size as i64;
        self.sample_left.set(left);
        left <= 0 && self.rearm()
    }

    /// Draws the next countdown; the thread's first draw samples nothing.
    #[cold]
    fn rearm(&self) -> bool {
        let mut rng = self.rng.get();
        let first = rng == 0;
        if first {
            rng = (std::ptr::from_ref(self) as u64) | 1;
        }
        self.sample_left
            .set(super::sample::next_countdown(&mut rng));
        self.rng.set(rng);
        !first && super::sample::interval() != 0
    }

    /// Enters a nested section (the inner allocator's own free); returns the depth to restore.
    #[inline(always)]
    pub(super) fn enter_nested(&self) -> u32 {
        let d = self.depth.get();
        self.depth.set(d + 1);
        d
    }

    /// Restores the depth [`Cache::enter_nested`] returned.
    #[inline(always)]
    pub(super) fn leave_nested(&self, d: u32) {
        self.depth.set(d);
    }

    /// Leaves an allocator call.
    #[inline(always)]
    pub(super) fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    fn flush(&self) {
        for i in 0..ENTRIES {
            self.flush_entry(i);
        }
        self.dirty.set(false);
    }
}

/// The current tag of this thread (none if the thread-local is gone).
#[inline(always)]
pub(crate) fn current() -> Tag {
    CACHE.try_with(|c| c.current.get()).unwrap_or(Tag::NONE)
}

/// Replaces the current tag of this thread, returning the previous one.
#[inline(always)]
pub(crate) fn replace_current(tag: Tag) -> Tag {
    CACHE
        .try_with(|c| c.current.replace(tag))
        .unwrap_or(Tag::NONE)
}

/// Runs `f` with this thread's cache; `None` only if the thread-local is gone (it has no
/// destructor, so in practice never).
#[inline(always)]
pub(super) fn with<R>(f: impl FnOnce(&Cache) -> R) -> Option<R> {
    CACHE.try_with(f).ok()
}

/// Applies one count directly, for the (theoretical) case of a missing thread-local.
pub(super) fn direct(tag: Tag, bytes: u64, alloc: bool) {
    let d = if alloc {
        Delta {
            alloc_bytes: bytes,
            alloc_blocks: 1,
            ..Delta::default()
        }
    } else {
        Delta {
            free_bytes: bytes,
            free_blocks: 1,
            ..Delta::default()
        }
    };
    slots::apply(tag, &d);
}

/// Runs `f` as if inside the allocator: what it allocates is nobody's and never sampled (for
/// code that allocates while holding a lock the allocator's sampling path takes).
pub(crate) fn nested<R>(f: impl FnOnce() -> R) -> R {
    let depth = CACHE.try_with(Cache::enter_nested).ok();
    let out = f();
    if let Some(d) = depth {
        let _ = CACHE.try_with(|c| c.leave_nested(d));
    }
    out
}

/// Enters a region: counts are batched until the outermost region is left.
#[inline(always)]
pub(crate) fn enter_region() {
    let _ = CACHE.try_with(|c| {
        c.regions.set(c.regions.get().saturating_add(1));
        c.direct_from.set(DIRECT_BYTES);
    });
}

/// Leaves a region; leaving the outermost one flushes this thread's pending counts.
#[inline(always)]
pub(crate) fn leave_region() {
    let _ = CACHE.try_with(|c| {
        let d = c.regions.get().saturating_sub(1);
        c.regions.set(d);
        if d == 0 {
            c.direct_from.set(0);
        }
        if d == 0 && c.dirty.get() {
            c.flush();
        }
    });
}

/// Pushes this thread's pending counts to the shared counters.
#[cfg(test)]
pub(crate) fn flush() {
    let _ = CACHE.try_with(|c| {
        if c.dirty.get() {
            c.flush()
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifth_tag_flushes_a_victim_entry() {
        let base = slots::test_tag(2, 1);
        let other = slots::test_tag(3, 1);
        enter_region();
        CACHE.with(|c| {
            c.flush();
            c.on_alloc(base, 10);
            for i in 1..=ENTRIES as u32 {
                c.on_alloc(Tag::new(other.slot(), other.generation() + i), 1);
            }
        });
        // `base` lost its entry, so its count reached the shared counters.
        assert_eq!(slots::global().read(base).alloc_bytes, 10);
        leave_region();
    }

    #[test]
    fn outside_a_region_every_count_reaches_the_counters_at_once() {
        let t = slots::test_tag(9, 1);
        CACHE.with(|c| c.on_alloc(t, 33));
        assert_eq!(slots::global().read(t).alloc_bytes, 33);
        enter_region();
        CACHE.with(|c| c.on_free(t, 33));
        assert_eq!(
            slots::global().read(t).free_bytes,
            0,
            "batched inside a region"
        );
        leave_region();
        assert_eq!(
            slots::global().read(t).free_bytes,
            33,
            "flushed on leaving it"
        );
    }
}
