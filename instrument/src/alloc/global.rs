//! `TrackingAlloc`: the `GlobalAlloc` wrapper. The only module of leakscope with unsafe code.
//!
//! Block layout with the `enabled` feature (`offset = max(8, align)`):
//!
//! ```text
//! base (from the inner allocator, aligned to max(align, 8))
//! |<------------- offset ------------->|
//! [ padding ........... | tag: u64     ][ user bytes (layout.size()) ]
//!                                       ^ returned pointer, aligned to `align`
//! ```
//!
//! The tag sits in the 8 bytes right before the returned pointer. Because `offset` is a
//! multiple of 8 and `base` is at least 8-aligned, the tag slot is 8-aligned. The returned
//! pointer is `base + offset`, and `offset` is a multiple of `align` (both are powers of two
//! and `offset >= align`), so it keeps the caller's alignment.
#![allow(unsafe_code)]

use std::alloc::System;
#[cfg(not(feature = "enabled"))]
use std::alloc::{GlobalAlloc, Layout};

/// A global allocator that charges every block to the connection whose code allocated it.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: leakscope::TrackingAlloc<std::alloc::System> = leakscope::TrackingAlloc::system();
/// ```
///
/// With the `enabled` feature off it forwards every call to the inner allocator unchanged (no
/// header, no counting). With it on, each block carries an 8-byte header (more for alignments
/// above 8), which the inner allocator sees as part of the block.
pub struct TrackingAlloc<A> {
    inner: A,
}

impl<A> TrackingAlloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        TrackingAlloc { inner }
    }

    /// The inner allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

impl TrackingAlloc<System> {
    /// Wraps the system allocator.
    pub const fn system() -> Self {
        TrackingAlloc::new(System)
    }
}

#[cfg(feature = "dhat")]
impl TrackingAlloc<dhat::Alloc> {
    /// Wraps dhat's allocator, so a developer who sees retained bytes can rerun with a dhat
    /// profiler for allocation sites. dhat's own bookkeeping is charged to no connection;
    /// dhat sees block sizes including leakscope's header.
    pub const fn dhat() -> Self {
        TrackingAlloc::new(dhat::Alloc)
    }
}

#[cfg(not(feature = "enabled"))]
// SAFETY: every method forwards to `inner` with the caller's arguments unchanged, so the
// contract of `GlobalAlloc` holds exactly as it holds for `A`.
unsafe impl<A: GlobalAlloc> GlobalAlloc for TrackingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; the caller upholds `alloc`'s contract.
        unsafe { self.inner.alloc(layout) }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; the caller upholds `alloc_zeroed`'s contract.
        unsafe { self.inner.alloc_zeroed(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `inner` with this layout.
        unsafe { self.inner.dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded; `ptr` came from `inner` with this layout.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[cfg(feature = "enabled")]
mod tracking {
    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::atomic::Ordering;

    use super::TrackingAlloc;
    use crate::alloc::{TRACKING, batch};
    use crate::tag;

    const HEADER: usize = 8;

    /// The offset of the user pointer from the inner block, and the inner block's layout.
    /// `None` when the sizes overflow (the caller then returns null).
    #[inline]
    pub(super) fn wrap(layout: Layout) -> Option<(usize, Layout)> {
        let offset = layout.align().max(HEADER);
        let size = layout.size().checked_add(offset)?;
        let inner = Layout::from_size_align(size, offset).ok()?;
        Some((offset, inner))
    }

    /// The tag to charge a new block to: nested allocator calls (an inner allocator's own
    /// bookkeeping) are charged to no connection.
    #[inline]
    fn tag_for_new(outermost: bool) -> u64 {
        if outermost {
            tag::current()
        } else {
            tag::UNTAGGED
        }
    }

    #[inline]
    fn mark_tracking() {
        if !TRACKING.load(Ordering::Relaxed) {
            TRACKING.store(true, Ordering::Relaxed);
        }
    }

    impl<A: GlobalAlloc> TrackingAlloc<A> {
        /// Allocates through `inner` with room for the header, writes `tag`, and counts.
        #[inline]
        unsafe fn alloc_with(&self, layout: Layout, zeroed: bool) -> *mut u8 {
            let Some((offset, inner_layout)) = wrap(layout) else {
                return std::ptr::null_mut();
            };
            let outermost = batch::enter();
            // SAFETY: `inner_layout` has a non-zero size (it includes the header) and a valid
            // power-of-two alignment, as `GlobalAlloc::alloc` requires.
            let base = unsafe {
                if zeroed {
                    self.inner.alloc_zeroed(inner_layout)
                } else {
                    self.inner.alloc(inner_layout)
                }
            };
            batch::leave();
            if base.is_null() {
                return base;
            }
            let t = tag_for_new(outermost);
            // SAFETY: `base` points to `offset + layout.size()` bytes, so `base + offset` is in
            // bounds (or one past the end for a zero-size layout), and `offset >= 8` puts the
            // 8-aligned tag slot inside the block, after `base`.
            unsafe {
                let user = base.add(offset);
                user.sub(HEADER).cast::<u64>().write(t);
                mark_tracking();
                batch::on_alloc(t, layout.size() as u64);
                user
            }
        }
    }

    // SAFETY: every block handed out is a sub-range of a block from `inner`, aligned as the
    // caller asked (see the module docs), never overlapping another live block; `dealloc` and
    // `realloc` recover the inner block and layout exactly as `alloc` built them. The
    // bookkeeping neither allocates, locks, panics nor unwinds.
    unsafe impl<A: GlobalAlloc> GlobalAlloc for TrackingAlloc<A> {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller upholds `alloc`'s contract.
            unsafe { self.alloc_with(layout, false) }
        }

        #[inline]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller upholds `alloc_zeroed`'s contract; the header is written after
            // zeroing and lies outside the user's bytes, which stay zero.
            unsafe { self.alloc_with(layout, true) }
        }

        #[inline]
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // `wrap` succeeded for this layout when the block was allocated.
            let Some((offset, inner_layout)) = wrap(layout) else {
                return;
            };
            // SAFETY: `ptr` was returned by `alloc_with` for this `layout`, so the tag slot
            // 8 bytes before it was written there and `ptr - offset` is the inner block.
            unsafe {
                let t = ptr.sub(HEADER).cast::<u64>().read();
                batch::on_free(t, layout.size() as u64);
                let _ = batch::enter();
                self.inner.dealloc(ptr.sub(offset), inner_layout);
                batch::leave();
            }
        }

        #[inline]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let Some((offset, inner_layout)) = wrap(layout) else {
                return std::ptr::null_mut();
            };
            let Some(inner_new) = new_size.checked_add(offset) else {
                return std::ptr::null_mut();
            };
            // `Layout::from_size_align` also rejects sizes that overflow `isize` once rounded.
            if Layout::from_size_align(inner_new, inner_layout.align()).is_err() {
                return std::ptr::null_mut();
            }
            // SAFETY: `ptr` was returned by `alloc_with` for `layout`; the tag slot precedes it
            // and the inner block starts `offset` bytes before it with `inner_layout`.
            // `inner_new` is non-zero and, rounded to the alignment, fits `isize` (checked
            // above). The inner realloc keeps the first `offset + min(old, new)` bytes, header
            // included, so the owner's tag moves with the block.
            unsafe {
                let t = ptr.sub(HEADER).cast::<u64>().read();
                let _ = batch::enter();
                let base = self.inner.realloc(ptr.sub(offset), inner_layout, inner_new);
                batch::leave();
                if base.is_null() {
                    return base;
                }
                batch::on_free(t, layout.size() as u64);
                batch::on_alloc(t, new_size as u64);
                base.add(offset)
            }
        }
    }
}

/// Safe drivers for the allocator benchmarks (`benches/alloc.rs`), so that no unsafe code
/// lives outside this module. Not part of the API.
#[doc(hidden)]
pub mod bench {
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
}

#[cfg(all(test, feature = "enabled"))]
mod tests;
