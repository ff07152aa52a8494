//! The tracking global allocator (filled in by the allocator work).

/// Whether a `TrackingAlloc` is the global allocator and has counted anything.
pub(crate) fn is_tracking() -> bool {
    false
}

/// Flushes this thread's batched counts (called at poll boundaries).
#[inline]
pub(crate) fn flush() {}
