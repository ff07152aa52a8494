//! The tracking global allocator: charges every heap byte to the connection whose code
//! allocated it.
//!
//! Design (alternatives measured in docs/benchmarks-history.md):
//! - an 8-byte header before each block holds the owner's tag, so a free credits the owner on
//!   any thread, after close, and realloc keeps the owner;
//! - counts go to a small per-thread cache ([`batch`]) and reach the shared per-slot counters
//!   ([`slots`]) at poll boundaries, when the cache needs a new entry, or every
//!   256 KiB: no shared atomic on the per-allocation path;
//! - a nested call into the allocator (an inner allocator's own bookkeeping, such as dhat's)
//!   is charged to no connection.
//!
//! Every unchecked pointer operation lives in [`global`]; this module and [`batch`] have none.

#[cfg(feature = "enabled")]
pub(crate) mod batch;
mod global;
#[cfg(feature = "enabled")]
pub(crate) mod sample;
#[cfg(feature = "enabled")]
pub(crate) mod slots;

pub use global::{TrackingAlloc, bench};

#[cfg(feature = "enabled")]
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "enabled")]
static TRACKING: AtomicBool = AtomicBool::new(false);

/// Notes that a `TrackingAlloc` is counting (called on flushes, off the per-allocation path).
#[cfg(feature = "enabled")]
fn mark_tracking() {
    if !TRACKING.load(Ordering::Relaxed) {
        TRACKING.store(true, Ordering::Relaxed);
    }
}

/// Whether a `TrackingAlloc` is the global allocator and has counted anything.
#[cfg_attr(not(feature = "enabled"), allow(dead_code))]
pub(crate) fn is_tracking() -> bool {
    #[cfg(feature = "enabled")]
    {
        TRACKING.load(Ordering::Relaxed)
    }
    #[cfg(not(feature = "enabled"))]
    false
}

/// Makes allocation sampling's own blocks (the sample table, the walker's rule cache) and
/// learns the calling thread's stack, when sampling starts: made at the first sample instead,
/// in the middle of the program's traffic, they would stay above its blocks in the heap (where
/// they stop freed blocks from rejoining the heap's top, and the heap from shrinking).
#[cfg(feature = "enabled")]
pub(crate) fn prepare_sampling() {
    sample::reserve();
    global::tracking::slow::prepare_walk();
}

/// Flushes this thread's batched counts (tests; the code flushes by leaving regions).
#[cfg(all(test, feature = "enabled"))]
pub(crate) fn flush() {
    batch::flush();
}
