//! The allocator's slow paths: the allocation that closes the lane or samples, the free of a
//! block that is not the lane's, and the sampled block's record and forgetting (unsafe code,
//! allowed by the allocator module it belongs to).

use super::{HEADER, finish};
use crate::heap::batch;
use crate::heap::sample::{self, DEPTH};
use crate::ids::Tag;

/// The allocation slow path (the lane is closed or its budget ran out): counts the block,
/// writes its header and, when the sampling countdown crossed zero, records its sample.
///
/// # Safety
/// As [`finish`].
#[cold]
#[inline(never)]
pub(super) unsafe fn alloc_slow(base: *mut u8, offset: usize, size: u64) -> *mut u8 {
    let (owner, sample) = batch::with(|c| c.alloc_slow(size)).unwrap_or_else(|| {
        batch::direct(Tag::NONE, size, true);
        (Tag::NONE, false)
    });
    // SAFETY: per the contract.
    let user = unsafe { finish(base, offset, owner.header(false)) };
    if sample {
        // The guarded slow path: what it allocates is nobody's, never sampled.
        // SAFETY: `user` was just returned by `finish`: its header precedes it.
        batch::nested(|| unsafe { record(user, size, owner) });
    }
    user
}

/// After a realloc, whose block carries the old block's header, copied: a copied mark goes
/// (the old block's sample was forgotten before the move), and the moved block is sampled
/// (`Some(its size)`) when its move ended the sampling countdown.
///
/// # Safety
/// `user` is a live block's user pointer, its 8-byte header right before it.
#[cold]
#[inline(never)]
pub(super) unsafe fn settle_moved(user: *mut u8, bits: u64, owner: Tag, sample: Option<u64>) {
    if (bits as i64) < 0 {
        // SAFETY: per the contract, the header is the 8 aligned bytes before `user`.
        unsafe { user.sub(HEADER).cast::<u64>().write(owner.header(false)) };
    }
    if let Some(size) = sample {
        // The guarded slow path, as an allocation's.
        // SAFETY: per the contract.
        batch::nested(|| unsafe { record(user, size, owner) });
    }
}

/// Records the sample of the block at `user` (its owner, size and call stack) and marks
/// its header.
///
/// # Safety
/// `user` is a live block returned by `finish`, its 8-byte header right before it.
unsafe fn record(user: *mut u8, size: u64, owner: Tag) {
    sample::record(user as usize, owner, size, |frames| walk(frames) as u8);
    // SAFETY: per the contract, the header is the 8 aligned bytes before `user`.
    unsafe { user.sub(HEADER).cast::<u64>().write(owner.header(true)) };
}

/// The sampled stack: on Linux x86_64 by the cached unwinder (`unwind.rs`), elsewhere by
/// libgcc's.
#[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
fn walk(frames: &mut [usize; DEPTH]) -> usize {
    unwind::walk(frames)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
fn walk(frames: &mut [usize; DEPTH]) -> usize {
    with_libgcc(frames)
}

/// libgcc's walk (through the backtrace crate): its first frames are the trace's own, then
/// the caller's, as [`walk`]'s are.
#[inline(never)]
fn with_libgcc(frames: &mut [usize]) -> usize {
    let mut n = 0;
    #[cfg(unix)]
    // SAFETY: on unix the walk goes through libgcc's unwinder, which is thread-safe:
    // concurrent unsynchronized traces are sound there. What it allocates, if anything, goes
    // to the C library's malloc, not to this allocator.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            frames[n] = frame.ip() as usize;
            n += 1;
            n < frames.len()
        });
    }
    n
}

#[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
pub(in crate::heap::global) mod unwind;

/// Makes the sampled walk's own blocks now (the collector's start), not at the first sample.
pub(crate) fn prepare_walk() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    unwind::prepare();
}

/// The free slow path (the header is not the lane's): forgets a sampled block's sample
/// and counts the free for the owner in the header.
#[cold]
#[inline(never)]
pub(super) fn free_slow(user: *mut u8, bits: u64, size: u64) {
    let owner = unmark(user, bits);
    if batch::with(|c| c.free_slow(owner, size)).is_none() {
        batch::direct(owner, size, false);
    }
}

/// The owner in a header; a sampled block's sample is forgotten (the block is freed or
/// moved).
#[inline]
pub(super) fn unmark(user: *mut u8, bits: u64) -> Tag {
    let (owner, sampled) = Tag::from_header(bits);
    if sampled {
        batch::nested(|| sample::forget(user as usize));
    }
    owner
}
