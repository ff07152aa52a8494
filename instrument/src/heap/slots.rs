//! Connection slots: a table of per-connection heap counters the allocator updates without
//! locks.
//!
//! A connection owns one slot while it is tracked; a tag names `(slot, generation)`. Each slot
//! holds its full 32-bit generation and four counter words; every counter word also carries
//! the low `gen_bits` of the generation above its count and is only updated by a
//! compare-and-swap that checks them. An update first checks the full generation, then CASes
//! each word; [`SlotTable::recycle`] stores the next generation, then *swaps* each word to
//! zero, moving what the old owner had into the stale bucket. A late update for the old owner
//! therefore either landed before the swap (and moved with it) or fails its check after (and
//! goes to the stale bucket): it never reaches the new owner, however many times the slot is
//! reused, and no count is lost. Updates come in per-thread batches (see `alloc`), so the
//! CAS is off the per-allocation path.
//!
//! The table grows in chunks of 4,096 slots (160 KiB each), allocated by the collector when
//! every slot is in use, up to the configured maximum
//! ([`crate::Config::max_tracked_connections`]); a chunk, once published, never moves or goes
//! away, so the allocator reads it with one atomic load. The untagged and stale buckets are
//! statics, so counts made before the collector starts (untagged by construction) are never
//! lost.

use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::ids::Tag;

/// Allocations made while no connection's code runs.
pub(crate) const UNTAGGED_SLOT: usize = 0;
/// Frees and late updates for connections whose slot was recycled.
pub(crate) const STALE_SLOT: usize = 1;
/// The first slot handed to a connection.
pub(crate) const FIRST_CONN_SLOT: usize = 2;
/// Generation bits kept in each counter word in production (the count keeps 48).
pub(crate) const GEN_BITS: u32 = 16;

pub(crate) struct Slot {
    generation: AtomicU32,
    /// alloc_bytes, free_bytes, alloc_blocks, free_blocks.
    words: [AtomicU64; 4],
}

impl Slot {
    const fn new() -> Self {
        Slot {
            generation: AtomicU32::new(0),
            words: [const { AtomicU64::new(0) }; 4],
        }
    }
}

/// The process's untagged and stale buckets.
static BUCKETS: [Slot; 2] = [Slot::new(), Slot::new()];

/// A batch of counts for one slot generation.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    pub alloc_bytes: u64,
    pub free_bytes: u64,
    pub alloc_blocks: u64,
    pub free_blocks: u64,
}

/// Counts read from one slot.
pub(crate) type Counts = Delta;

impl Delta {
    /// One block of `bytes`, allocated or freed.
    pub(crate) fn one(bytes: u64, alloc: bool) -> Delta {
        let (a, f) = if alloc { (bytes, 0) } else { (0, bytes) };
        Delta {
            alloc_bytes: a,
            free_bytes: f,
            alloc_blocks: u64::from(alloc),
            free_blocks: u64::from(!alloc),
        }
    }
}

impl Counts {
    pub(crate) fn live_bytes(&self) -> u64 {
        self.alloc_bytes.saturating_sub(self.free_bytes)
    }
    pub(crate) fn live_blocks(&self) -> u64 {
        self.alloc_blocks.saturating_sub(self.free_blocks)
    }
    fn words(&self) -> [u64; 4] {
        [
            self.alloc_bytes,
            self.free_bytes,
            self.alloc_blocks,
            self.free_blocks,
        ]
    }
    fn from_words(w: [u64; 4]) -> Self {
        Delta {
            alloc_bytes: w[0],
            free_bytes: w[1],
            alloc_blocks: w[2],
            free_blocks: w[3],
        }
    }
}

/// Connection slots in the process's table's chunks.
const CHUNK_SHIFT: u32 = 12;

/// The per-connection counters.
pub(crate) struct SlotTable {
    /// The untagged and stale buckets.
    buckets: &'static [Slot; 2],
    /// Chunks of `1 << chunk_shift` connection slots, published in order.
    chunks: &'static [OnceLock<Box<[Slot]>>],
    chunk_shift: u32,
    /// Connection slots in published chunks.
    grown: AtomicUsize,
    gen_bits: u32,
}

fn chunks(n: usize) -> &'static [OnceLock<Box<[Slot]>>] {
    Box::leak((0..n).map(|_| OnceLock::new()).collect())
}

impl SlotTable {
    /// A table of its own (buckets included), for tests: `chunks` chunks of
    /// `1 << chunk_shift` slots (the first one grown), keeping `gen_bits` (1..=32) generation
    /// bits in each counter word. Leaks its memory.
    #[cfg(test)]
    pub(crate) fn new(chunk_shift: u32, chunks_max: usize, gen_bits: u32) -> Self {
        let t = SlotTable {
            buckets: Box::leak(Box::new([Slot::new(), Slot::new()])),
            chunks: chunks(chunks_max.max(1)),
            chunk_shift,
            grown: AtomicUsize::new(0),
            gen_bits: gen_bits.clamp(1, 32),
        };
        t.grow();
        t
    }

    /// Slot numbers in use are `FIRST_CONN_SLOT..self.end()`.
    pub(crate) fn end(&self) -> usize {
        FIRST_CONN_SLOT + self.grown.load(Ordering::Acquire)
    }

    /// Connection slots the table may grow to.
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.len() << self.chunk_shift
    }

    /// Publishes the next chunk; returns its slot numbers, or `None` at capacity. Allocates;
    /// called by the collector (under its lock, untracked).
    pub(crate) fn grow(&self) -> Option<Range<usize>> {
        let grown = self.grown.load(Ordering::Acquire);
        let next = self.chunks.get(grown >> self.chunk_shift)?;
        next.get_or_init(|| {
            (0..1usize << self.chunk_shift)
                .map(|_| Slot::new())
                .collect()
        });
        let now = grown + (1 << self.chunk_shift);
        self.grown.store(now, Ordering::Release);
        Some(FIRST_CONN_SLOT + grown..FIRST_CONN_SLOT + now)
    }

    #[inline]
    fn conn_slot(&self, i: usize) -> Option<&Slot> {
        let chunk = self.chunks.get(i >> self.chunk_shift)?.get()?;
        chunk.get(i & ((1 << self.chunk_shift) - 1))
    }

    fn count_bits(&self) -> u32 {
        64 - self.gen_bits
    }

    fn word_gen(&self, generation: u32) -> u64 {
        u64::from(generation) & ((1u64 << self.gen_bits) - 1)
    }

    /// The slot named by `tag` and the generation it must have, or `None` (stale).
    #[inline]
    fn slot(&self, tag: Tag) -> Option<(&Slot, u32)> {
        let (slot, generation) = (tag.slot(), tag.generation());
        match slot {
            UNTAGGED_SLOT => Some((&self.buckets[0], 0)),
            STALE_SLOT => Some((&self.buckets[1], 0)),
            s => self.conn_slot(s - FIRST_CONN_SLOT).map(|x| (x, generation)),
        }
    }

    /// Adds `n` to `word` if it still belongs to word generation `g`. Never blocks for long: it
    /// retries only while other threads add to the same word.
    #[inline]
    fn add_if(&self, word: &AtomicU64, g: u64, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        let bits = self.count_bits();
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        };
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            if cur.checked_shr(bits).unwrap_or(0) != g {
                return false;
            }
            let next = g.checked_shl(bits).unwrap_or(0) | (cur.wrapping_add(n) & mask);
            match word.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Applies a batch to the slot named by `tag`, or to the stale bucket if the slot has moved
    /// on. Lock-free, allocation-free, panic-free: safe on the allocator path.
    #[inline]
    pub(crate) fn apply(&self, tag: Tag, d: &Delta) {
        let mut rest = d.words();
        if let Some((s, generation)) = self.slot(tag)
            && s.generation.load(Ordering::Acquire) == generation
        {
            let g = self.word_gen(generation);
            for (w, n) in s.words.iter().zip(rest.iter_mut()) {
                if self.add_if(w, g, *n) {
                    *n = 0;
                }
            }
        }
        if rest.iter().any(|&n| n != 0) {
            self.to_stale(rest);
        }
    }

    fn to_stale(&self, w: [u64; 4]) {
        for (word, n) in self.buckets[1].words.iter().zip(w) {
            self.add_if(word, 0, n);
        }
    }

    /// Whether `tag` names a connection slot's current owner (not a bucket, not a slot that
    /// moved on).
    pub(crate) fn is_current(&self, tag: Tag) -> bool {
        tag.slot() >= FIRST_CONN_SLOT
            && self
                .slot(tag)
                .is_some_and(|(s, g)| s.generation.load(Ordering::Acquire) == g)
    }

    /// Reads a slot's counts for the generation in `tag` (zeros if the slot moved on).
    pub(crate) fn read(&self, tag: Tag) -> Counts {
        let Some((s, generation)) = self.slot(tag) else {
            return Counts::default();
        };
        if s.generation.load(Ordering::Acquire) != generation {
            return Counts::default();
        }
        let (g, bits) = (self.word_gen(generation), self.count_bits());
        let get = |w: &AtomicU64| {
            let v = w.load(Ordering::Relaxed);
            if v.checked_shr(bits).unwrap_or(0) == g {
                v & (u64::MAX >> self.gen_bits)
            } else {
                0
            }
        };
        Counts::from_words([
            get(&s.words[0]),
            get(&s.words[1]),
            get(&s.words[2]),
            get(&s.words[3]),
        ])
    }

    /// Hands connection slot `slot` (currently at generation `old`) to generation `next` with
    /// zero counts. Whatever the old owner still had moves to the stale bucket, so the
    /// process-wide totals stay exact. Called under the collector's lock.
    pub(crate) fn recycle(&self, slot: usize, old: u32, next: u32) {
        let Some(s) = slot
            .checked_sub(FIRST_CONN_SLOT)
            .and_then(|i| self.conn_slot(i))
        else {
            return;
        };
        s.generation.store(next, Ordering::Release);
        let (g_old, bits) = (self.word_gen(old), self.count_bits());
        let fresh = self.word_gen(next).checked_shl(bits).unwrap_or(0);
        let mut moved = [0u64; 4];
        for (w, m) in s.words.iter().zip(moved.iter_mut()) {
            let v = w.swap(fresh, Ordering::AcqRel);
            if v.checked_shr(bits).unwrap_or(0) == g_old {
                *m = v & (u64::MAX >> self.gen_bits);
            }
        }
        self.to_stale(moved);
    }

    /// The untagged bucket's counts.
    pub(crate) fn untagged(&self) -> Counts {
        self.read(Tag::new(UNTAGGED_SLOT, 0))
    }

    /// The stale bucket's counts.
    pub(crate) fn stale(&self) -> Counts {
        self.read(Tag::new(STALE_SLOT, 0))
    }
}

static GLOBAL: OnceLock<SlotTable> = OnceLock::new();

/// The table without connection slots: where counts go before the collector sized the real
/// one (only the untagged and stale buckets exist then).
static EMPTY: SlotTable = SlotTable {
    buckets: &BUCKETS,
    chunks: &[],
    chunk_shift: CHUNK_SHIFT,
    grown: AtomicUsize::new(0),
    gen_bits: GEN_BITS,
};

/// Creates the process's table (once; later calls return the existing one) for at most
/// `max_slots` connection slots, with its first chunk. Allocates; call it untracked.
pub(crate) fn init_global(max_slots: usize) -> &'static SlotTable {
    GLOBAL.get_or_init(|| {
        let t = SlotTable {
            buckets: &BUCKETS,
            chunks: chunks(max_slots.div_ceil(1 << CHUNK_SHIFT).max(1)),
            chunk_shift: CHUNK_SHIFT,
            grown: AtomicUsize::new(0),
            gen_bits: GEN_BITS,
        };
        t.grow();
        t
    })
}

/// The process's table (connection slots exist once the collector started).
#[inline]
pub(crate) fn global() -> &'static SlotTable {
    GLOBAL.get().unwrap_or(&EMPTY)
}

/// Applies a batch to the process's table (the allocator's flush).
#[inline]
pub(crate) fn apply(tag: Tag, d: &Delta) {
    global().apply(tag, d);
}

/// A tag on the `k`-th connection slot from the end of the process's table, freshly recycled
/// to `generation` (for the allocator's unit tests, which use one slot each).
#[cfg(test)]
pub(crate) fn test_tag(k: usize, generation: u32) -> Tag {
    let t = init_global(crate::Config::default().max_tracked_connections);
    let slot = t.end() - k;
    let old = t
        .conn_slot(slot - FIRST_CONN_SLOT)
        .map_or(0, |s| s.generation.load(Ordering::Relaxed));
    t.recycle(slot, old, generation);
    Tag::new(slot, generation)
}

#[cfg(test)]
mod tests;
