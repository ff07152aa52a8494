//! Per-thread batching of allocation counts.
//!
//! Each thread keeps a 4-entry cache of (tag, counts). The allocator adds to it with a few
//! plain (non-atomic) additions; the entries reach the shared slot counters when a fifth tag
//! needs a place (the victim is flushed), when 256 KiB are pending, and at every poll boundary
//! (the hooks and the scope call [`flush`]). Everything here is allocation-free, lock-free and
//! panic-free: it runs inside the global allocator. The thread-local is `const`-initialised
//! with no destructor, so it works before `main`, in thread-local destructors and during exit;
//! what a thread still has pending when it exits is lost (worker threads flush at every poll).

use std::cell::Cell;

use crate::slots::{self, Delta};

const ENTRIES: usize = 4;
/// Pending bytes that force a flush.
const FLUSH_BYTES: i64 = 256 * 1024;
/// Each count also costs this much of the budget, so at most 4096 counts are pending and the
/// 16-bit block field of a packed counter cannot overflow.
const PER_COUNT: i64 = 64;
/// A packed counter holds bytes in its low 48 bits and blocks in its high 16.
const BLOCK: u64 = 1 << 48;
const BYTES_MASK: u64 = BLOCK - 1;

pub(super) struct Cache {
    tags: [Cell<u64>; ENTRIES],
    /// Packed (blocks << 48 | bytes) allocated per entry.
    allocs: [Cell<u64>; ENTRIES],
    /// Packed (blocks << 48 | bytes) freed per entry.
    frees: [Cell<u64>; ENTRIES],
    victim: Cell<usize>,
    /// Counts down from `FLUSH_BYTES`; a flush is due below zero.
    budget: Cell<i64>,
    /// Depth of allocator calls on this thread (nested calls are charged to no connection).
    depth: Cell<u32>,
    /// The tag of the code running on this thread (see `crate::tag`); kept here so the
    /// allocator reaches everything it needs through one thread-local.
    pub(crate) current: Cell<u64>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            tags: [const { Cell::new(0) }; ENTRIES],
            allocs: [const { Cell::new(0) }; ENTRIES],
            frees: [const { Cell::new(0) }; ENTRIES],
            victim: Cell::new(0),
            budget: Cell::new(FLUSH_BYTES),
            depth: Cell::new(0),
            current: Cell::new(0),
        }
    };
}

#[inline(always)]
fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

impl Cache {
    #[inline(always)]
    fn index(&self, tag: u64) -> usize {
        for i in 0..ENTRIES {
            if self.tags[i].get() == tag {
                return i;
            }
        }
        self.replace(tag)
    }

    /// Gives `tag` the victim entry, flushing what the victim held.
    #[cold]
    fn replace(&self, tag: u64) -> usize {
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
            alloc_blocks: a >> 48,
            free_bytes: f & BYTES_MASK,
            free_blocks: f >> 48,
        };
        if d.alloc_blocks != 0 || d.free_blocks != 0 {
            slots::apply(self.tags[i].get(), &d);
        }
    }

    #[inline(always)]
    fn count(&self, alloc: bool, tag: u64, bytes: u64) {
        if bytes >= BLOCK / 2 {
            // Beyond any real allocation; keep the packed fields sound anyway.
            direct(tag, bytes, alloc);
            return;
        }
        let i = self.index(tag);
        let which = if alloc { &self.allocs } else { &self.frees };
        bump(&which[i], BLOCK | bytes);
        let left = self.budget.get() - bytes as i64 - PER_COUNT;
        if left < 0 {
            self.flush();
        } else {
            self.budget.set(left);
        }
    }

    /// Counts an allocation of `bytes` for `tag`.
    #[inline(always)]
    pub(super) fn on_alloc(&self, tag: u64, bytes: u64) {
        self.count(true, tag, bytes);
    }

    /// Counts a free of `bytes` owned by `tag`.
    #[inline(always)]
    pub(super) fn on_free(&self, tag: u64, bytes: u64) {
        self.count(false, tag, bytes);
    }

    /// Enters an allocator call; returns whether it is the outermost one on this thread.
    #[inline(always)]
    pub(super) fn enter(&self) -> bool {
        let d = self.depth.get();
        self.depth.set(d + 1);
        d == 0
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
        self.budget.set(FLUSH_BYTES);
        super::mark_tracking();
    }
}

/// The current tag of this thread (0 if the thread-local is gone).
#[inline(always)]
pub(crate) fn current() -> u64 {
    CACHE.try_with(|c| c.current.get()).unwrap_or(0)
}

/// Replaces the current tag of this thread, returning the previous one.
#[inline(always)]
pub(crate) fn replace_current(tag: u64) -> u64 {
    CACHE.try_with(|c| c.current.replace(tag)).unwrap_or(0)
}

/// Runs `f` with this thread's cache; `None` only if the thread-local is gone (it has no
/// destructor, so in practice never).
#[inline(always)]
pub(super) fn with<R>(f: impl FnOnce(&Cache) -> R) -> Option<R> {
    CACHE.try_with(f).ok()
}

/// Applies one count directly, for the (theoretical) case of a missing thread-local.
pub(super) fn direct(tag: u64, bytes: u64, alloc: bool) {
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

/// Pushes this thread's pending counts to the shared counters.
#[inline]
pub(crate) fn flush() {
    let _ = CACHE.try_with(|c| {
        if c.budget.get() != FLUSH_BYTES {
            c.flush()
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifth_tag_flushes_a_victim_entry() {
        let slot = slots::MAX_SLOTS - 2;
        slots::recycle(slot, 0, 0);
        let base = crate::tag::make(slot, 0);
        CACHE.with(|c| {
            c.flush();
            c.on_alloc(base, 10);
            for i in 1..=ENTRIES as u32 {
                c.on_alloc(crate::tag::make(slots::MAX_SLOTS - 3, i), 1);
            }
        });
        // `base` lost its entry, so its count reached the shared counters.
        assert_eq!(slots::read(base).alloc_bytes, 10);
        CACHE.with(|c| c.flush());
    }
}
