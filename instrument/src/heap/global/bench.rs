//! Safe drivers for the allocator benchmarks (`benches/alloc.rs`): the only unsafe calls
//! they need stay in the allocator module.

use std::alloc::{GlobalAlloc, Layout};

/// Allocates and frees one block of `layout` through `a`; returns whether it succeeded.
#[inline]
pub fn pair<A: GlobalAlloc>(a: &A, layout: Layout) -> bool {
    if layout.size() == 0 {
        return false;
    }
    // SAFETY: non-zero size; the block is freed once with the layout it was allocated
    // with, and never read.
    unsafe {
        let p = a.alloc(layout);
        if p.is_null() {
            return false;
        }
        std::hint::black_box(p);
        a.dealloc(p, layout);
    }
    true
}

/// Grows one block from `start` to `end` bytes by doubling through `a`, then frees it.
#[inline]
pub fn grow<A: GlobalAlloc>(a: &A, start: usize, end: usize) -> bool {
    let mut size = start.max(1);
    let Ok(mut layout) = Layout::from_size_align(size, 8) else {
        return false;
    };
    // SAFETY: every realloc passes the block's current layout and a non-zero new size
    // that forms a valid layout; the final block is freed once with its layout.
    unsafe {
        let mut p = a.alloc(layout);
        while !p.is_null() && size < end {
            let next = size * 2;
            let Ok(next_layout) = Layout::from_size_align(next, 8) else {
                break;
            };
            let q = a.realloc(p, layout, next);
            if q.is_null() {
                break;
            }
            (p, size, layout) = (q, next, next_layout);
        }
        if p.is_null() {
            return false;
        }
        std::hint::black_box(p);
        a.dealloc(p, layout);
    }
    true
}

/// Sets the mean allocation-sampling interval in bytes (0: off), so a benchmark can compare
/// sampling on and off in one run.
pub fn set_sample_bytes(bytes: u64) {
    #[cfg(feature = "enabled")]
    crate::heap::sample::set_interval(bytes);
    #[cfg(not(feature = "enabled"))]
    let _ = bytes;
}

/// The mean allocation-sampling interval in bytes now (0: off; always 0 without `enabled`).
pub fn sample_bytes() -> u64 {
    #[cfg(feature = "enabled")]
    return crate::heap::sample::interval();
    #[cfg(not(feature = "enabled"))]
    0
}
