//! Allocation sampling: where a connection's live bytes were allocated.
//!
//! Sampling is geometric by bytes, as jemalloc's `lg_prof_sample` and dial9 do: each thread
//! counts down a random number of bytes (mean [`interval`], `LEAKSCOPE_SAMPLE_BYTES`, 512 KiB
//! by default) and samples the allocation that crosses zero (a realloc of a block of the
//! thread's current tag counts its new size, and is sampled when it crosses zero; a realloc of
//! another tag's block is not counted down). A sampled block carries a mark in
//! its header; its sample (owner tag, size, up to [`DEPTH`] return addresses) lives in a
//! bounded table until the block is freed. Recording and forgetting are the allocator's
//! explicit, guarded slow path: they lock this table and may allocate, inside the allocator's
//! re-entrancy guard (nested allocations are nobody's and never sampled); whoever else holds
//! the table's lock must not allocate outside that guard (`live` runs under `batch::nested`).
//! Symbolization happens later, off the allocator path (`collector/symbols.rs`).
//!
//! An estimate of the bytes a sample stands for is `size / (1 - exp(-size / interval))`
//! (unbiased for geometric sampling by bytes).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ids::Tag;

/// Return addresses kept per sample.
pub(crate) const DEPTH: usize = 32;
/// Live samples kept at most (beyond: counted in [`dropped`], not kept).
pub(crate) const MAX_SAMPLES: usize = 16_384;
/// Default mean sampling interval in bytes.
pub(crate) const DEFAULT_INTERVAL: u64 = 512 * 1024;

/// Mean bytes between two samples; 0 turns sampling off.
static INTERVAL: AtomicU64 = AtomicU64::new(DEFAULT_INTERVAL);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// One sampled live block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub tag: Tag,
    pub size: u64,
    pub frames: [usize; DEPTH],
    pub depth: u8,
}

impl Sample {
    /// The bytes this sample stands for.
    pub(crate) fn weight(&self) -> u64 {
        let interval = interval().max(1) as f64;
        let s = self.size.max(1) as f64;
        (s / (1.0 - (-s / interval).exp())) as u64
    }

    /// Its return addresses, innermost first.
    pub(crate) fn frames(&self) -> &[usize] {
        &self.frames[..usize::from(self.depth)]
    }
}

/// Hashes the table's keys, block addresses, with one folded multiply (the 128-bit product's
/// halves XORed, as foldhash does): SipHash took about 250 instructions of each sample's
/// record and forget (callgrind). Addresses are the allocator's, not a peer's choice, and the
/// table is bounded ([`MAX_SAMPLES`]).
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let p = u128::from(self.0) * 0x9e37_79b9_7f4a_7c15;
        (p as u64) ^ ((p >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = v as u64;
    }
}

type Table = HashMap<usize, Sample, BuildHasherDefault<AddrHasher>>;

static SAMPLES: Mutex<Option<Table>> = Mutex::new(None);

/// Sets the mean sampling interval (0: off). Called by the collector at start.
pub(crate) fn set_interval(bytes: u64) {
    INTERVAL.store(bytes, Ordering::Relaxed);
}

/// Samples the table has room for from the start: 64 buckets of 288 bytes (about 18 KiB;
/// hashbrown fills 7 of every 8).
const RESERVED: usize = 56;

/// Makes the table now, with room for [`RESERVED`] samples, rather than at the first sample.
pub(crate) fn reserve() {
    super::batch::nested(|| {
        let mut table = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
        let map = table.get_or_insert_with(Table::default);
        map.reserve(RESERVED.saturating_sub(map.len()));
    });
}

/// The mean sampling interval in bytes (0: off).
#[inline]
pub(crate) fn interval() -> u64 {
    INTERVAL.load(Ordering::Relaxed)
}

/// Samples not kept because the table was full.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The next countdown, in bytes: exponential with mean [`interval`], from a per-thread
/// xorshift state (`rng`, never 0). `i64::MAX` when sampling is off.
pub(crate) fn next_countdown(rng: &mut u64) -> i64 {
    let mean = interval();
    if mean == 0 {
        return i64::MAX;
    }
    let mut x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    // Uniform in (0, 1]: never ln(0).
    let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    (-u.ln() * mean as f64).clamp(1.0, i64::MAX as f64 / 2.0) as i64
}

/// Keeps the sample of the block at `ptr` (the allocator's slow path): `walk` fills in the
/// call stack and returns its depth. The walk runs before the table's lock is taken: a walk
/// may wait on the dynamic loader's lock, whose holder may be allocating (and sampling).
pub(crate) fn record(
    ptr: usize,
    tag: Tag,
    size: u64,
    walk: impl FnOnce(&mut [usize; DEPTH]) -> u8,
) {
    let mut sample = Sample {
        tag,
        size,
        frames: [0; DEPTH],
        depth: 0,
    };
    sample.depth = walk(&mut sample.frames);
    let mut table = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    let map = table.get_or_insert_with(Table::default);
    if map.len() < MAX_SAMPLES {
        map.insert(ptr, sample);
    } else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Forgets the sample of the block at `ptr`, freed (the allocator's slow path).
pub(crate) fn forget(ptr: usize) {
    let mut table = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(map) = table.as_mut() {
        map.remove(&ptr);
    }
}

/// A copy of the live samples whose tag `keep` accepts. The copy allocates while holding the
/// table's lock, so it runs as the allocator's own work (never sampled: no self-deadlock).
pub(crate) fn live(mut keep: impl FnMut(Tag) -> bool) -> Vec<Sample> {
    super::batch::nested(|| {
        let table = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
        table
            .as_ref()
            .map(|m| m.values().filter(|s| keep(s.tag)).copied().collect())
            .unwrap_or_default()
    })
}

/// Live samples now.
pub(crate) fn count() -> usize {
    let table = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    table.as_ref().map_or(0, Table::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_makes_the_table_with_room_before_any_sample() {
        reserve();
        // Read under the lock, asserted after it (a panic allocates, and may sample).
        let capacity = {
            let table = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
            table.as_ref().map(Table::capacity)
        };
        assert!(capacity.is_some_and(|c| c >= RESERVED), "{capacity:?}");
    }

    #[test]
    fn aligned_addresses_spread_over_the_buckets_and_the_tags() {
        use std::collections::HashSet;
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<AddrHasher>::default();
        let hashes: Vec<u64> = (0..1024usize)
            .map(|i| build.hash_one(0x7f00_0000_0000 + i * 64))
            .collect();
        // 1,024 blocks 64 bytes apart: most of 1,024 buckets in use, every tag.
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(buckets.len() > 600, "{} buckets", buckets.len());
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn countdowns_average_the_interval() {
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        let n = 20_000;
        let sum: i64 = (0..n).map(|_| next_countdown(&mut rng)).sum();
        let mean = sum as f64 / n as f64;
        let want = interval() as f64;
        assert!((mean - want).abs() < want * 0.05, "mean {mean} vs {want}");
    }

    #[test]
    fn a_sample_stands_for_about_the_interval_when_small() {
        let s = Sample {
            tag: Tag::NONE,
            size: 16,
            frames: [0; DEPTH],
            depth: 0,
        };
        let w = s.weight() as f64;
        assert!(
            (w - interval() as f64).abs() < interval() as f64 * 0.01,
            "{w}"
        );
    }
}
