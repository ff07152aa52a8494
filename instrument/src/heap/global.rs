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

    use super::TrackingAlloc;
    use crate::heap::batch;
    use crate::heap::sample::{self, DEPTH};
    use crate::ids::Tag;

    const HEADER: usize = 8;

    /// The offset of the user pointer from the inner block, and the inner block's layout.
    /// `None` when the sizes overflow (the caller then returns null).
    #[inline(always)]
    pub(super) fn wrap(layout: Layout) -> Option<(usize, Layout)> {
        let offset = layout.align().max(HEADER);
        let size = layout.size().checked_add(offset)?;
        if size > isize::MAX as usize - (offset - 1) {
            return None;
        }
        // SAFETY: `offset` is a power of two (the larger of two powers of two) and `size`
        // rounded up to it does not exceed `isize::MAX` (checked just above): exactly the
        // conditions `Layout::from_size_align` checks.
        Some((offset, unsafe {
            Layout::from_size_align_unchecked(size, offset)
        }))
    }

    /// [`wrap`] for a layout that already succeeded once (the block being freed was allocated
    /// with it), without the overflow checks.
    #[inline(always)]
    fn wrap_known(layout: Layout) -> (usize, Layout) {
        let offset = layout.align().max(HEADER);
        // SAFETY: `wrap(layout)` returned `Some` when this block was allocated, which proves
        // `offset` is a power of two and `size + offset`, rounded up to it, fits `isize`.
        (offset, unsafe {
            Layout::from_size_align_unchecked(layout.size() + offset, offset)
        })
    }

    /// Writes the owner's tag into the header of the inner block at `base` and returns the
    /// user pointer.
    ///
    /// # Safety
    /// `base` is a live block of at least `offset + user size` bytes with `offset >= 8`,
    /// aligned to `offset` (which is a multiple of 8).
    #[inline(always)]
    unsafe fn finish(base: *mut u8, offset: usize, owner: Tag) -> *mut u8 {
        // SAFETY: per the contract, `base + offset` is inside the block (or one past its end
        // for a zero-size request) and the 8 bytes before it are inside the block and
        // 8-aligned.
        unsafe {
            let user = base.add(offset);
            user.sub(HEADER).cast::<u64>().write(owner.header(false));
            user
        }
    }

    /// Records the sample of the block at `user` (its owner, size and call stack) and marks
    /// its header.
    ///
    /// # Safety
    /// `user` is a live block returned by `finish`, its 8-byte header right before it.
    #[cold]
    #[inline(never)]
    unsafe fn record(user: *mut u8, size: u64, owner: Tag) {
        sample::record(user as usize, owner, size, |frames| {
            let mut n = 0;
            #[cfg(unix)]
            // SAFETY: on unix the walk goes through libgcc's unwinder, which is thread-safe:
            // concurrent unsynchronized traces are sound there. It does not allocate.
            unsafe {
                backtrace::trace_unsynchronized(|frame| {
                    frames[n] = frame.ip() as usize;
                    n += 1;
                    n < DEPTH
                });
            }
            n as u8
        });
        // SAFETY: per the contract, the header is the 8 aligned bytes before `user`.
        unsafe { user.sub(HEADER).cast::<u64>().write(owner.header(true)) };
    }

    /// A freed (or moved) block carried the sampled mark: forgets its sample; its owner.
    #[cold]
    #[inline(never)]
    fn unmark(user: *mut u8, bits: u64) -> Tag {
        let forget = || sample::forget(user as usize);
        if batch::with(|c| {
            let outer = c.enter_nested();
            forget();
            c.leave_nested(outer);
        })
        .is_none()
        {
            forget();
        }
        Tag::from_header(bits).0
    }

    impl<A: GlobalAlloc> TrackingAlloc<A> {
        /// Allocates through `inner` with room for the header, writes the tag, and counts.
        #[inline(always)]
        unsafe fn alloc_with(&self, layout: Layout, zeroed: bool) -> *mut u8 {
            let Some((offset, inner_layout)) = wrap(layout) else {
                return std::ptr::null_mut();
            };
            let raw = |a: &A| {
                // SAFETY: `inner_layout` has a non-zero size (it includes the header) and a
                // valid power-of-two alignment, as `GlobalAlloc::alloc` requires.
                unsafe {
                    if zeroed {
                        a.alloc_zeroed(inner_layout)
                    } else {
                        a.alloc(inner_layout)
                    }
                }
            };
            let size = layout.size() as u64;
            let counted = batch::with(|c| {
                let outermost = c.enter();
                let base = raw(&self.inner);
                c.leave();
                if base.is_null() {
                    return base;
                }
                // Nested calls (an inner allocator's own bookkeeping) are nobody's.
                let owner = if outermost {
                    c.current.get()
                } else {
                    Tag::NONE
                };
                c.on_alloc(owner, size);
                // SAFETY: `base` is a fresh block of `inner_layout`, as `finish` requires.
                let user = unsafe { finish(base, offset, owner) };
                if c.sample_due(size) && outermost {
                    // The guarded slow path: what it allocates is nobody's, never sampled.
                    c.enter();
                    // SAFETY: `user` was just returned by `finish`: its header precedes it.
                    unsafe { record(user, size, owner) };
                    c.leave();
                }
                user
            });
            counted.unwrap_or_else(|| {
                let base = raw(&self.inner);
                if base.is_null() {
                    return base;
                }
                batch::direct(Tag::NONE, size, true);
                // SAFETY: as above.
                unsafe { finish(base, offset, Tag::NONE) }
            })
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
            let (offset, inner_layout) = wrap_known(layout);
            // SAFETY: `ptr` was returned by `alloc_with` for this `layout`, so the tag slot
            // 8 bytes before it was written there and `ptr - offset` is the inner block.
            let (bits, base) = unsafe { (ptr.sub(HEADER).cast::<u64>().read(), ptr.sub(offset)) };
            // A sampled block has its header's top bit set: the one test on the free path.
            let owner = if (bits as i64) < 0 {
                unmark(ptr, bits)
            } else {
                Tag::from_bits(bits)
            };
            let size = layout.size() as u64;
            let free = |a: &A| {
                // SAFETY: `base` is the inner block, allocated with `inner_layout`.
                unsafe { a.dealloc(base, inner_layout) }
            };
            let counted = batch::with(|c| {
                c.on_free(owner, size);
                // An inner allocator that allocates while freeing is charged to nobody.
                let outer = c.enter_nested();
                free(&self.inner);
                c.leave_nested(outer);
            });
            if counted.is_none() {
                batch::direct(owner, size, false);
                free(&self.inner);
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
            let sampled = (bits as i64) < 0;
            let owner = if sampled {
                unmark(ptr, bits)
            } else {
                Tag::from_bits(bits)
            };
            let grow = |a: &A| {
                // The inner realloc keeps the first `offset + min(old, new)` bytes, header
                // included, so the owner's tag moves with the block.
                // SAFETY: `base`/`inner_layout` describe the live inner block; the new size is
                // non-zero and forms a valid layout (checked above).
                unsafe { a.realloc(base, inner_layout, new_layout.1.size()) }
            };
            let moved = batch::with(|c| {
                c.enter();
                let moved = grow(&self.inner);
                c.leave();
                if !moved.is_null() {
                    c.on_free(owner, layout.size() as u64);
                    c.on_alloc(owner, new_size as u64);
                }
                moved
            })
            .unwrap_or_else(|| {
                let moved = grow(&self.inner);
                if !moved.is_null() {
                    batch::direct(owner, layout.size() as u64, false);
                    batch::direct(owner, new_size as u64, true);
                }
                moved
            });
            if moved.is_null() {
                return moved;
            }
            // SAFETY: the block at `moved` has the new inner layout, so `offset` bytes in is
            // the user pointer (same offset: same alignment).
            let user = unsafe { moved.add(offset) };
            if sampled {
                // The sample was of the old block (forgotten above): the moved one carries the
                // copied mark, which goes.
                // SAFETY: the 8 bytes before `user` are the moved block's header (inside the
                // block and 8-aligned, as in `finish`).
                unsafe { user.sub(HEADER).cast::<u64>().write(owner.header(false)) };
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
