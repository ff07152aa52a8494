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
    /// Whether `inner` may allocate through the global allocator (then its calls run in a
    /// nested section, so its own blocks are nobody's). `System` never does.
    #[cfg_attr(not(feature = "enabled"), allow(dead_code))]
    reenters: bool,
}

impl<A> std::fmt::Debug for TrackingAlloc<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingAlloc")
            .field("inner", &std::any::type_name::<A>())
            .finish()
    }
}

impl<A> TrackingAlloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        TrackingAlloc {
            inner,
            reenters: true,
        }
    }

    /// The inner allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

impl TrackingAlloc<System> {
    /// Wraps the system allocator.
    pub const fn system() -> Self {
        TrackingAlloc {
            inner: System,
            reenters: false,
        }
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
pub(super) mod tracking {
    use std::alloc::{GlobalAlloc, Layout};

    use super::TrackingAlloc;
    use crate::heap::batch;

    const HEADER: usize = 8;

    /// The offset of the user pointer from the inner block, and the inner block's layout.
    /// `None` when the sizes overflow (the caller then returns null).
    #[inline(always)]
    pub(super) fn wrap(layout: Layout) -> Option<(usize, Layout)> {
        let offset = layout.align().max(HEADER);
        if (layout.size() | layout.align()) >> 61 != 0 {
            return wrap_large(layout);
        }
        // `offset` is a power of two (the larger of two powers of two). Size and alignment are
        // below 2^61, so `offset <= 2^60` and `size + offset`, rounded up to `offset`, is below
        // 2^61 + 2^61 = 2^62, within `isize::MAX`.
        // SAFETY: so the conditions `Layout::from_size_align` checks hold (just above).
        let inner = unsafe { Layout::from_size_align_unchecked(layout.size() + offset, offset) };
        Some((offset, inner))
    }

    /// [`wrap`] for sizes or alignments of 2^61 and more, with every check.
    #[cold]
    fn wrap_large(layout: Layout) -> Option<(usize, Layout)> {
        let offset = layout.align().max(HEADER);
        let size = layout.size().checked_add(offset)?;
        Some((offset, Layout::from_size_align(size, offset).ok()?))
    }

    /// [`wrap`] for a layout that already succeeded once (the block being freed was allocated
    /// with it), without the overflow checks. For an alignment of at most 8 it gives the same
    /// offset and layout as `alloc_with`'s fast path.
    #[inline(always)]
    fn wrap_known(layout: Layout) -> (usize, Layout) {
        let offset = layout.align().max(HEADER);
        // SAFETY: this block was allocated with this inner layout (by `alloc_with`'s fast path
        // or through `wrap`, both checked), which proves `offset` is a power of two and
        // `size + offset`, rounded up to it, fits `isize`.
        let inner = unsafe { Layout::from_size_align_unchecked(layout.size() + offset, offset) };
        (offset, inner)
    }

    /// Writes the owner's header bits into the inner block at `base` and returns the user
    /// pointer.
    ///
    /// # Safety
    /// `base` is a live block of at least `offset + user size` bytes with `offset >= 8`,
    /// aligned to `offset` (which is a multiple of 8).
    #[inline(always)]
    unsafe fn finish(base: *mut u8, offset: usize, bits: u64) -> *mut u8 {
        // SAFETY: per the contract, `base + offset` is inside the block (or one past its end
        // for a zero-size request) and the 8 bytes before it are inside the block and
        // 8-aligned.
        unsafe {
            let user = base.add(offset);
            user.sub(HEADER).cast::<u64>().write(bits);
            user
        }
    }

    pub(in crate::heap) mod slow;
    use slow::{alloc_slow, free_slow, settle_moved, unmark};

    impl<A: GlobalAlloc> TrackingAlloc<A> {
        /// Runs one call of the inner allocator; inside a nested section if it may allocate
        /// through this one (then its blocks are nobody's).
        #[inline(always)]
        fn call<R>(&self, f: impl FnOnce(&A) -> R) -> R {
            if self.reenters {
                batch::nested(|| f(&self.inner))
            } else {
                f(&self.inner)
            }
        }

        /// Allocates through `inner` with room for the header, writes the tag, and counts.
        #[inline(always)]
        unsafe fn alloc_with(&self, layout: Layout, zeroed: bool) -> *mut u8 {
            // One test for both: the OR is at most 8 only if the alignment is and the size is
            // below 9 * 2^57 (a size that large with a small alignment takes the other path,
            // correct for every layout).
            if (layout.size() >> 57) | layout.align() <= HEADER {
                // The common case, compiled on its own so the inner allocator's checks see a
                // constant alignment of 8 (see `wrap`).
                // SAFETY: the size is below 9 * 2^57 < 2^61, so adding the 8-byte header
                // neither overflows nor exceeds `isize::MAX`, and 8 is a power of two: exactly
                // the conditions `Layout::from_size_align` checks.
                let inner = unsafe {
                    Layout::from_size_align_unchecked(layout.size().unchecked_add(HEADER), HEADER)
                };
                // SAFETY: the block is `inner`, the user's layout plus the header before it.
                unsafe { self.alloc_in(layout.size(), HEADER, inner, zeroed) }
            } else {
                // SAFETY: as above.
                unsafe { self.alloc_other(layout, zeroed) }
            }
        }

        /// `dealloc` for alignments above 8.
        ///
        /// # Safety
        /// As `GlobalAlloc::dealloc`.
        #[inline(never)]
        unsafe fn dealloc_other(&self, ptr: *mut u8, layout: Layout) {
            let (offset, inner) = wrap_known(layout);
            // SAFETY: `wrap_known` gives the offset and inner layout `alloc_with` used.
            unsafe { self.free_in(ptr, layout, offset, inner) }
        }

        /// Counts the free of the block at `ptr` (the user's `layout`, with the header at
        /// `offset` and the inner block `inner`) and frees its inner block.
        ///
        /// # Safety
        /// `ptr` was returned by `alloc_with` for `layout`, with the header at `offset` and
        /// the inner block `inner` starting `offset` bytes before it.
        #[inline(always)]
        unsafe fn free_in(&self, ptr: *mut u8, layout: Layout, offset: usize, inner: Layout) {
            // SAFETY: per the contract, the tag slot is the 8 bytes before `ptr` (written by
            // `finish`).
            let bits = unsafe { ptr.sub(HEADER).cast::<u64>().read() };
            if batch::with(|c| c.free_fast(bits, layout.size() as u64)) != Some(true) {
                // SAFETY: per the contract.
                return unsafe { self.free_counted_slowly(ptr, layout) };
            }
            // The fast path calls nothing before the inner free, its tail call: no register
            // to save, no frame.
            // SAFETY: per the contract, `ptr - offset` is the inner block, of layout `inner`.
            self.call(|a| unsafe { a.dealloc(ptr.sub(offset), inner) });
        }

        /// [`Self::free_in`] for a block that is not the lane's: counted on the slow path, then
        /// freed. Both happen here, and it takes only the user's arguments (a tail call), so
        /// that the fast path keeps nothing across a call.
        ///
        /// # Safety
        /// As `GlobalAlloc::dealloc`.
        #[cold]
        #[inline(never)]
        unsafe fn free_counted_slowly(&self, ptr: *mut u8, layout: Layout) {
            let (offset, inner) = wrap_known(layout);
            // SAFETY: `ptr` came from `alloc_with` for `layout`: its header precedes it.
            let bits = unsafe { ptr.sub(HEADER).cast::<u64>().read() };
            free_slow(ptr, bits, layout.size() as u64);
            // SAFETY: `wrap_known` gives the offset and inner layout `alloc_with` used.
            self.call(|a| unsafe { a.dealloc(ptr.sub(offset), inner) });
        }

        /// [`Self::alloc_with`] for alignments above 8 and huge sizes.
        ///
        /// # Safety
        /// As `GlobalAlloc::alloc`.
        #[inline(never)]
        unsafe fn alloc_other(&self, layout: Layout, zeroed: bool) -> *mut u8 {
            let Some((offset, inner)) = wrap(layout) else {
                return std::ptr::null_mut();
            };
            // SAFETY: `wrap` built `inner` from `layout` with the header at `offset`.
            unsafe { self.alloc_in(layout.size(), offset, inner, zeroed) }
        }

        /// Allocates `inner`, writes the header at `offset` and counts `size` user bytes.
        ///
        /// # Safety
        /// `inner` is `wrap`'s layout for a user layout of `size` bytes, with this `offset`.
        #[inline(always)]
        unsafe fn alloc_in(
            &self,
            size: usize,
            offset: usize,
            inner: Layout,
            zeroed: bool,
        ) -> *mut u8 {
            let base = self.call(|a| {
                // SAFETY: `inner` has a non-zero size (it includes the header) and a valid
                // power-of-two alignment, as `GlobalAlloc::alloc` requires.
                unsafe {
                    if zeroed {
                        a.alloc_zeroed(inner)
                    } else {
                        a.alloc(inner)
                    }
                }
            });
            if base.is_null() {
                return base;
            }
            let size = size as u64;
            match batch::with(|c| c.alloc_fast(size)) {
                // SAFETY: `base` is a fresh block of `inner`, as `finish` requires.
                Some(Some(bits)) => unsafe { finish(base, offset, bits) },
                // SAFETY: as above.
                _ => unsafe { alloc_slow(base, offset, size) },
            }
        }
    }

    // SAFETY: every block handed out is a sub-range of a block from `inner`, aligned as the
    // caller asked (see the module docs), never overlapping another live block; `dealloc` and
    // `realloc` recover the inner block and layout exactly as `alloc` built them. The
    // bookkeeping neither allocates, locks, panics nor unwinds outside the guarded sampling
    // path.
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
            if layout.align() <= HEADER {
                // The common case, compiled on its own: the header and the inner block both
                // start 8 bytes before `ptr` (one address, no `max`).
                // SAFETY: a block of alignment at most 8 was allocated with the inner layout
                // `size + 8`, alignment 8 (by `alloc_with`'s fast path, or through `wrap` for a
                // huge size: the same layout, checked there), and `ptr` is 8 bytes in.
                unsafe {
                    let inner = Layout::from_size_align_unchecked(layout.size() + HEADER, HEADER);
                    self.free_in(ptr, layout, HEADER, inner);
                }
            } else {
                // SAFETY: as `dealloc`.
                unsafe { self.dealloc_other(ptr, layout) }
            }
        }

        #[inline]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let Some((offset, inner_layout)) = wrap(layout) else {
                return std::ptr::null_mut();
            };
            // The new inner layout must be valid too (same alignment, header added).
            let Some(new_layout) = Layout::from_size_align(new_size, layout.align())
                .ok()
                .and_then(wrap)
            else {
                return std::ptr::null_mut();
            };
            // SAFETY: `ptr` was returned by `alloc_with` for `layout`, so the tag slot precedes
            // it and the inner block starts `offset` bytes before it with `inner_layout`.
            let (bits, base) = unsafe { (ptr.sub(HEADER).cast::<u64>().read(), ptr.sub(offset)) };
            // The sample is of the old block: it is forgotten before the block moves (another
            // thread may get the old address and sample it at once).
            let owner = unmark(ptr, bits);
            let moved = self.call(|a| {
                // The inner realloc keeps the first `offset + min(old, new)` bytes, header
                // included, so the owner's tag moves with the block.
                // SAFETY: `base`/`inner_layout` describe the live inner block; the new size is
                // non-zero and forms a valid layout (checked above).
                unsafe { a.realloc(base, inner_layout, new_layout.1.size()) }
            });
            if moved.is_null() {
                return moved;
            }
            let (old, new) = (layout.size() as u64, new_size as u64);
            let sample = batch::with(|c| c.on_move(owner, old, new)).unwrap_or_else(|| {
                batch::direct(owner, old, false);
                batch::direct(owner, new, true);
                false
            });
            // SAFETY: the block at `moved` has the new inner layout, so `offset` bytes in is
            // the user pointer (same offset: same alignment).
            let user = unsafe { moved.add(offset) };
            if (bits as i64) < 0 || sample {
                // SAFETY: `user` is the moved block's, its header the 8 bytes before it.
                unsafe { settle_moved(user, bits, owner, sample.then_some(new)) };
            }
            user
        }
    }
}

/// Safe drivers for the allocator benchmarks (`benches/alloc.rs`), so that no unsafe code
/// lives outside this module. Not part of the API.
#[doc(hidden)]
pub mod bench;

#[cfg(all(test, feature = "enabled"))]
mod tests;
