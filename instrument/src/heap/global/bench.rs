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

/// Walks the calling thread's stack with the sampled allocation's walker and with libgcc's
/// unwinder, and compares them: the number of frames both found, or what differs (Linux
/// x86_64, where the walker is leakscope's own; elsewhere the walk is libgcc's: `Ok(0)`).
#[cfg(feature = "enabled")]
#[inline(never)]
pub fn stack_walk_agrees_with_libgcc() -> Result<usize, String> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    return super::tracking::slow::unwind::agrees_with_libgcc();
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
    Ok(0)
}

/// Sampled stack walks leakscope's walker handed to libgcc (a rule it does not apply).
#[cfg(feature = "enabled")]
pub fn stack_walks_handed_over() -> u64 {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    return super::tracking::slow::unwind::handed_over();
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
    0
}

/// Unwind rules the sampled walker read from the objects' tables, not from its cache (0 where
/// the walker is libgcc's).
#[cfg(feature = "enabled")]
pub fn stack_walk_rules_read() -> u64 {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    return super::tracking::slow::unwind::rules_read();
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
    0
}
