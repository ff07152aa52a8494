//! Per-thread batching of allocation counts.
//!
//! Each thread keeps a 4-entry cache of (tag, counts), most recently used first. The
//! allocator adds to it; the entries go to the shared slot counters when a fifth tag shows
//! up, when 256 KiB are pending, and at every poll boundary (the hooks and the scope call
//! [`flush`]). Everything here is allocation-free, lock-free and panic-free: it runs inside
//! the global allocator. The thread-local is `const`-initialised with no destructor, so it
//! works before `main`, in thread-local destructors and during exit; what a thread still has
//! pending when it exits is lost (at most 256 KiB per entry, and worker threads flush at every
//! poll).
#![cfg_attr(not(feature = "enabled"), allow(dead_code))]

use std::cell::Cell;

use crate::slots::{self, Delta};

const ENTRIES: usize = 4;
const FLUSH_BYTES: u64 = 256 * 1024;

#[derive(Clone, Copy)]
struct Entry {
    tag: u64,
    d: Delta,
}

const EMPTY: Entry = Entry {
    tag: 0,
    d: Delta {
        alloc_bytes: 0,
        free_bytes: 0,
        alloc_blocks: 0,
        free_blocks: 0,
    },
};

struct Cache {
    entries: [Cell<Entry>; ENTRIES],
    pending: Cell<u64>,
    /// Depth of allocator calls on this thread (nested calls are charged to no connection).
    depth: Cell<u32>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            entries: [const { Cell::new(EMPTY) }; ENTRIES],
            pending: Cell::new(0),
            depth: Cell::new(0),
        }
    };
}

fn is_empty(d: &Delta) -> bool {
    d.alloc_blocks == 0 && d.free_blocks == 0
}

impl Cache {
    /// The slot of `tag`, moved to the front; a new entry (flushing the last) if absent.
    #[inline]
    fn front(&self, tag: u64) -> Entry {
        let first = self.entries[0].get();
        if first.tag == tag {
            return first;
        }
        let mut found = None;
        for i in 1..ENTRIES {
            if self.entries[i].get().tag == tag {
                found = Some(i);
                break;
            }
        }
        let (entry, upto) = match found {
            Some(i) => (self.entries[i].get(), i),
            None => {
                let last = self.entries[ENTRIES - 1].get();
                if !is_empty(&last.d) {
                    slots::apply(last.tag, &last.d);
                }
                (Entry { tag, d: EMPTY.d }, ENTRIES - 1)
            }
        };
        for i in (1..=upto).rev() {
            self.entries[i].set(self.entries[i - 1].get());
        }
        entry
    }

    #[inline]
    fn add(&self, tag: u64, bytes: u64, alloc: bool) {
        let mut e = self.front(tag);
        if alloc {
            e.d.alloc_bytes += bytes;
            e.d.alloc_blocks += 1;
        } else {
            e.d.free_bytes += bytes;
            e.d.free_blocks += 1;
        }
        self.entries[0].set(e);
        let pending = self.pending.get() + bytes;
        if pending >= FLUSH_BYTES {
            self.flush();
        } else {
            self.pending.set(pending);
        }
    }

    fn flush(&self) {
        for cell in &self.entries {
            let e = cell.get();
            if !is_empty(&e.d) {
                slots::apply(e.tag, &e.d);
                cell.set(Entry {
                    tag: e.tag,
                    d: EMPTY.d,
                });
            }
        }
        self.pending.set(0);
    }
}

/// Counts an allocation of `bytes` for `tag`.
#[inline]
pub(super) fn on_alloc(tag: u64, bytes: u64) {
    if CACHE.try_with(|c| c.add(tag, bytes, true)).is_err() {
        slots::apply(
            tag,
            &Delta {
                alloc_bytes: bytes,
                alloc_blocks: 1,
                ..EMPTY.d
            },
        );
    }
}

/// Counts a free of `bytes` owned by `tag`.
#[inline]
pub(super) fn on_free(tag: u64, bytes: u64) {
    if CACHE.try_with(|c| c.add(tag, bytes, false)).is_err() {
        slots::apply(
            tag,
            &Delta {
                free_bytes: bytes,
                free_blocks: 1,
                ..EMPTY.d
            },
        );
    }
}

/// Pushes this thread's pending counts to the shared counters.
#[inline]
pub(crate) fn flush() {
    let _ = CACHE.try_with(|c| {
        if c.pending.get() != 0 || !is_empty(&c.entries[0].get().d) {
            c.flush()
        }
    });
}

/// Enters an allocator call; returns whether it is the outermost one on this thread.
#[inline]
pub(super) fn enter() -> bool {
    CACHE
        .try_with(|c| {
            let d = c.depth.get();
            c.depth.set(d + 1);
            d == 0
        })
        .unwrap_or(false)
}

/// Leaves an allocator call.
#[inline]
pub(super) fn leave() {
    let _ = CACHE.try_with(|c| c.depth.set(c.depth.get().saturating_sub(1)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifth_tag_flushes_the_oldest_entry() {
        let base = crate::tag::make(slots::MAX_SLOTS - 2, 0);
        slots::recycle(slots::MAX_SLOTS - 2, 0, 0);
        CACHE.with(|c| {
            c.flush();
            c.add(base, 10, true);
            for i in 1..=4u64 {
                c.add(crate::tag::make(slots::MAX_SLOTS - 3, i as u32), 1, true);
            }
        });
        // `base` was pushed out of the cache, so it reached the shared counters.
        assert_eq!(slots::read(base).alloc_bytes, 10);
        CACHE.with(|c| c.flush());
    }
}
