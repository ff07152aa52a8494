//! Connection slots: a fixed table of per-connection heap counters the allocator can update
//! without locks.
//!
//! A connection owns one slot while it is tracked. Every counter word carries the slot's
//! 16-bit generation in its top bits and the count in the low 48, and is only ever updated by
//! a compare-and-swap that checks the generation. Recycling a slot stores the next generation
//! with a zero count, so a late update meant for the old owner fails its check and goes to the
//! stale bucket instead: it can never land on the new owner. Updates come in per-thread batches
//! (see `alloc`), so the CAS is off the per-allocation path.

use std::sync::atomic::{AtomicU64, Ordering};

/// Slots in the table; connections tracked at once (open or kept closed) is this minus two.
pub(crate) const MAX_SLOTS: usize = 1 << 14;
/// Allocations made while no connection's code runs.
pub(crate) const UNTAGGED_SLOT: usize = 0;
/// Frees and late updates for connections whose slot was recycled.
pub(crate) const STALE_SLOT: usize = 1;
/// The first slot handed to a connection.
pub(crate) const FIRST_CONN_SLOT: usize = 2;

const COUNT_BITS: u32 = 48;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

pub(crate) struct Slot {
    alloc_bytes: AtomicU64,
    free_bytes: AtomicU64,
    alloc_blocks: AtomicU64,
    free_blocks: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    alloc_bytes: AtomicU64::new(0),
    free_bytes: AtomicU64::new(0),
    alloc_blocks: AtomicU64::new(0),
    free_blocks: AtomicU64::new(0),
};

static SLOTS: [Slot; MAX_SLOTS] = [EMPTY; MAX_SLOTS];

/// A batch of counts for one slot generation.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    pub alloc_bytes: u64,
    pub free_bytes: u64,
    pub alloc_blocks: u64,
    pub free_blocks: u64,
}

/// Counts read from one slot.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub alloc_bytes: u64,
    pub free_bytes: u64,
    pub alloc_blocks: u64,
    pub free_blocks: u64,
}

impl Counts {
    pub(crate) fn live_bytes(&self) -> u64 {
        self.alloc_bytes.saturating_sub(self.free_bytes)
    }
    pub(crate) fn live_blocks(&self) -> u64 {
        self.alloc_blocks.saturating_sub(self.free_blocks)
    }
}

#[inline]
fn gen16(tag: u64) -> u64 {
    (tag >> 32) & 0xffff
}

/// Adds `n` to `word` if it still belongs to generation `g`. Never blocks for long: it retries
/// only while other threads add to the same word.
#[inline]
fn add_if(word: &AtomicU64, g: u64, n: u64) -> bool {
    if n == 0 {
        return true;
    }
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        if cur >> COUNT_BITS != g {
            return false;
        }
        let next = (g << COUNT_BITS) | ((cur + n) & COUNT_MASK);
        match word.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(seen) => cur = seen,
        }
    }
}

/// Applies a batch to the slot named by `tag`, or to the stale bucket if the slot has moved
/// on. Lock-free, allocation-free, panic-free: safe on the allocator path.
#[inline]
pub(crate) fn apply(tag: u64, d: &Delta) {
    let slot = (tag & 0xffff_ffff) as usize;
    let (s, g) = if slot < MAX_SLOTS {
        (&SLOTS[slot], gen16(tag))
    } else {
        (&SLOTS[STALE_SLOT], 0)
    };
    // All four words of a slot change generation together (under the collector's lock), so
    // the first check decides; later ones only fail in the instant of a recycle.
    if add_if(&s.alloc_bytes, g, d.alloc_bytes) {
        add_if(&s.alloc_blocks, g, d.alloc_blocks);
        if !add_if(&s.free_bytes, g, d.free_bytes) || !add_if(&s.free_blocks, g, d.free_blocks) {
            stale(d.free_bytes, d.free_blocks, 0, 0);
        }
    } else {
        stale(d.free_bytes, d.free_blocks, d.alloc_bytes, d.alloc_blocks);
    }
}

fn stale(free_bytes: u64, free_blocks: u64, alloc_bytes: u64, alloc_blocks: u64) {
    let s = &SLOTS[STALE_SLOT];
    add_if(&s.alloc_bytes, 0, alloc_bytes);
    add_if(&s.alloc_blocks, 0, alloc_blocks);
    add_if(&s.free_bytes, 0, free_bytes);
    add_if(&s.free_blocks, 0, free_blocks);
}

/// Reads a slot's counts for the generation in `tag` (zeros if the slot moved on).
pub(crate) fn read(tag: u64) -> Counts {
    let slot = (tag & 0xffff_ffff) as usize;
    if slot >= MAX_SLOTS {
        return Counts::default();
    }
    let s = &SLOTS[slot];
    let g = if slot < FIRST_CONN_SLOT {
        0
    } else {
        gen16(tag)
    };
    let get = |w: &AtomicU64| {
        let v = w.load(Ordering::Relaxed);
        if v >> COUNT_BITS == g {
            v & COUNT_MASK
        } else {
            0
        }
    };
    Counts {
        alloc_bytes: get(&s.alloc_bytes),
        free_bytes: get(&s.free_bytes),
        alloc_blocks: get(&s.alloc_blocks),
        free_blocks: get(&s.free_blocks),
    }
}

/// Hands slot `slot` to generation `generation` with zero counts. Whatever the old owner still
/// had live moves to the stale bucket, so the process-wide totals stay exact. Called under the
/// collector's lock.
pub(crate) fn recycle(slot: usize, old_tag: u64, generation: u32) {
    let old = read(old_tag);
    let s = &SLOTS[slot];
    let fresh = ((generation as u64) & 0xffff) << COUNT_BITS;
    s.alloc_bytes.store(fresh, Ordering::Relaxed);
    s.free_bytes.store(fresh, Ordering::Relaxed);
    s.alloc_blocks.store(fresh, Ordering::Relaxed);
    s.free_blocks.store(fresh, Ordering::Relaxed);
    if old_tag != 0 {
        stale(
            old.free_bytes,
            old.free_blocks,
            old.alloc_bytes,
            old.alloc_blocks,
        );
    }
}

/// The untagged bucket's counts.
pub(crate) fn untagged() -> Counts {
    read(UNTAGGED_SLOT as u64)
}

/// The stale bucket's counts.
pub(crate) fn stale_counts() -> Counts {
    read(STALE_SLOT as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_for_a_recycled_generation_go_to_the_stale_bucket() {
        let slot = MAX_SLOTS - 1;
        let t1 = crate::tag::make(slot, 1);
        recycle(slot, 0, 1);
        let d = Delta {
            alloc_bytes: 100,
            alloc_blocks: 2,
            ..Delta::default()
        };
        apply(t1, &d);
        assert_eq!(read(t1).live_bytes(), 100);
        let before = stale_counts();
        let t2 = crate::tag::make(slot, 2);
        recycle(slot, t1, 2);
        assert_eq!(read(t2).live_bytes(), 0);
        // The old owner's free arrives late: it must not touch generation 2.
        apply(
            t1,
            &Delta {
                free_bytes: 100,
                free_blocks: 2,
                ..Delta::default()
            },
        );
        assert_eq!(read(t2), Counts::default());
        let after = stale_counts();
        assert_eq!(after.alloc_bytes - before.alloc_bytes, 100);
        assert_eq!(after.free_bytes - before.free_bytes, 100);
    }
}
