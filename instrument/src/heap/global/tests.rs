//! The allocator's rules, exercised directly on a `TrackingAlloc<System>` instance (no global
//! state besides the slot counters), so they can run under Miri. The crate's unit tests also
//! run with `TrackingAlloc` as their global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use super::TrackingAlloc;
use crate::heap::slots;
use crate::tag;

#[global_allocator]
static GLOBAL: TrackingAlloc<System> = TrackingAlloc::system();

static ALLOCATED_BEFORE_MAIN: AtomicBool = AtomicBool::new(false);

extern "C" fn before_main() {
    let v: Vec<u64> = (0..100).collect();
    ALLOCATED_BEFORE_MAIN.store(v.iter().sum::<u64>() == 4950, Ordering::Relaxed);
}

#[cfg(all(target_os = "linux", not(miri)))]
#[used]
// SAFETY: `.init_array` holds `extern "C" fn()` pointers run by the loader before `main`;
// `before_main` has that signature and only uses the allocator and an atomic.
#[unsafe(link_section = ".init_array")]
static RUN_BEFORE_MAIN: extern "C" fn() = before_main;

extern "C" fn at_exit() {
    // Runs after `main` returned, while the process tears down: if the allocator could not
    // serve here (a destroyed thread-local, a panic), the test binary would exit non-zero.
    let v: Vec<u8> = vec![7; 4096];
    assert_eq!(std::hint::black_box(v).len(), 4096);
}

#[cfg(all(target_os = "linux", not(miri)))]
#[used]
// SAFETY: `.fini_array` holds `extern "C" fn()` pointers run at exit; `at_exit` has that
// signature and only uses the allocator.
#[unsafe(link_section = ".fini_array")]
static RUN_AT_EXIT: extern "C" fn() = at_exit;

const A: TrackingAlloc<System> = TrackingAlloc::system();

fn sizes() -> Vec<usize> {
    if cfg!(miri) {
        vec![1, 7, 8, 24, 1024]
    } else {
        vec![1, 7, 8, 24, 63, 1000, 1024, 4096, 65_536, 3 << 20]
    }
}

fn fill(p: *mut u8, n: usize, seed: u8) {
    for i in 0..n {
        // SAFETY: the caller passes a live block of at least `n` bytes.
        unsafe { p.add(i).write(seed.wrapping_add(i as u8)) };
    }
}

fn check(p: *const u8, n: usize, seed: u8) {
    for i in 0..n {
        // SAFETY: the caller passes a live block of at least `n` initialised bytes.
        let b = unsafe { p.add(i).read() };
        assert_eq!(b, seed.wrapping_add(i as u8), "byte {i} of {n}");
    }
}

#[test]
fn every_alignment_and_size_round_trips_through_realloc() {
    for shift in 0..=12 {
        let align = 1usize << shift;
        for size in sizes() {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size; every pointer is used within its layout and freed once
            // with the layout it was (re)allocated with.
            unsafe {
                let p = A.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "align {align} size {size}");
                fill(p, size, 3);
                let grown = A.realloc(p, layout, size * 2);
                assert!(!grown.is_null());
                assert_eq!(grown as usize % align, 0, "grown, align {align}");
                check(grown, size, 3);
                let big = Layout::from_size_align(size * 2, align).unwrap();
                let shrunk = A.realloc(grown, big, size.div_ceil(2));
                assert_eq!(shrunk as usize % align, 0, "shrunk, align {align}");
                check(shrunk, size.div_ceil(2), 3);
                A.dealloc(
                    shrunk,
                    Layout::from_size_align(size.div_ceil(2), align).unwrap(),
                );
            }
        }
    }
}

#[test]
fn alloc_zeroed_is_zeroed_under_every_alignment() {
    for shift in 0..=12 {
        let layout = Layout::from_size_align(4096 + 17, 1 << shift).unwrap();
        // SAFETY: non-zero size; read within the block, freed once with its layout.
        unsafe {
            let p = A.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert!((0..layout.size()).all(|i| p.add(i).read() == 0));
            A.dealloc(p, layout);
        }
    }
}

#[test]
fn oversized_requests_return_null_instead_of_panicking() {
    // The header pushes this layout past what any allocator can give (or past isize::MAX).
    let layout = Layout::from_size_align(isize::MAX as usize - 15, 16).unwrap();
    // SAFETY: a valid non-zero layout; a null result is allowed and checked.
    let p = unsafe { A.alloc(layout) };
    assert!(p.is_null());
    // Either side of the fast path's size test (`(size >> 57) | align <= 8`), and the largest
    // sizes small alignments allow: the header's room must be checked on both paths.
    for (size, align) in [
        ((9 << 57) - 1, 8),
        (9 << 57, 1),
        (isize::MAX as usize - 7, 8),
        (isize::MAX as usize, 1),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: as above.
        let (p, z) = unsafe { (A.alloc(layout), A.alloc_zeroed(layout)) };
        assert!(p.is_null() && z.is_null(), "{size} bytes");
    }
    let small = Layout::from_size_align(16, 8).unwrap();
    // SAFETY: `p2` is a live 16-byte block; realloc to an overflowing size must fail cleanly
    // and leave the block valid, which the dealloc then frees.
    unsafe {
        let p2 = A.alloc(small);
        assert!(A.realloc(p2, small, usize::MAX - 2).is_null());
        A.dealloc(p2, small);
    }
}

#[test]
fn blocks_are_charged_to_the_tag_that_allocated_them_and_credited_on_free() {
    let t = slots::test_tag(4, 7);
    let layout = Layout::from_size_align(100, 8).unwrap();
    // SAFETY: a live block freed once with its layout (after a realloc to 300 bytes).
    let p = unsafe {
        let _g = tag::enter(t);
        A.alloc(layout)
    };
    crate::heap::flush();
    assert_eq!(slots::global().read(t).live_bytes(), 100);
    // realloc outside the scope stays with the owner; the free credits it.
    // SAFETY: as above.
    unsafe {
        let p = A.realloc(p, layout, 300);
        crate::heap::flush();
        assert_eq!(slots::global().read(t).live_bytes(), 300);
        A.dealloc(p, Layout::from_size_align(300, 8).unwrap());
    }
    crate::heap::flush();
    let c = slots::global().read(t);
    assert_eq!((c.live_bytes(), c.live_blocks()), (0, 0));
    assert_eq!(c.alloc_bytes, 400);
}

/// An inner allocator that allocates for its own bookkeeping, as dhat does.
struct Bookkeeping;

// SAFETY: forwards to `System`; the extra `Vec` is an ordinary allocation via the global
// allocator and is freed before returning.
unsafe impl GlobalAlloc for Bookkeeping {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let note = vec![0u8; 1000];
        std::hint::black_box(&note);
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[test]
fn an_inner_allocators_own_bookkeeping_is_not_charged_to_the_connection() {
    let t = slots::test_tag(5, 3);
    let nested = TrackingAlloc::new(Bookkeeping);
    let layout = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: a live block freed once with its layout.
    unsafe {
        let _g = tag::enter(t);
        let p = nested.alloc(layout);
        crate::heap::flush();
        assert_eq!(
            slots::global().read(t).alloc_bytes,
            64,
            "the 1000-byte note must not count"
        );
        nested.dealloc(p, layout);
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn the_allocator_serves_allocations_made_before_main() {
    assert!(ALLOCATED_BEFORE_MAIN.load(Ordering::Relaxed));
    let _ = vec![0u8; 300 * 1024]; // enough pending bytes to force a flush
    crate::heap::flush();
    assert!(crate::heap::is_tracking());
}

#[test]
fn frees_on_another_thread_credit_the_owner() {
    let t = slots::test_tag(6, 1);
    let v = {
        let _g = tag::enter(t);
        vec![1u8; 5000]
    };
    crate::heap::flush();
    assert_eq!(slots::global().read(t).live_bytes(), 5000);
    std::thread::spawn(move || {
        drop(v);
        crate::heap::flush();
    })
    .join()
    .unwrap();
    assert_eq!(slots::global().read(t).live_bytes(), 0);
}

#[test]
fn thread_local_destructors_can_allocate_and_free() {
    struct AllocatesOnDrop(Vec<u8>);
    impl Drop for AllocatesOnDrop {
        fn drop(&mut self) {
            let more = vec![1u8; 10_000];
            self.0.extend_from_slice(&more);
            assert_eq!(self.0.len(), 10_100);
        }
    }
    thread_local! {
        static LOCAL: std::cell::RefCell<Option<AllocatesOnDrop>> = const { std::cell::RefCell::new(None) };
    }
    let t = slots::test_tag(7, 1);
    std::thread::spawn(move || {
        let _g = tag::enter(t);
        LOCAL.with(|l| *l.borrow_mut() = Some(AllocatesOnDrop(vec![0u8; 100])));
    })
    .join()
    .expect("the thread and its TLS destructors finished");
}

#[test]
fn many_threads_charging_one_connection_add_up_exactly() {
    let t = slots::test_tag(8, 1);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let _g = tag::enter(t);
                let mut keep = Vec::new();
                for i in 0..1000 {
                    let b = vec![0u8; 1 + i % 300];
                    if i % 10 == 0 {
                        keep.push(b);
                    }
                }
                let kept: usize = keep.iter().map(Vec::len).sum();
                let cap = keep.capacity() * std::mem::size_of::<Vec<u8>>();
                std::mem::forget(keep);
                crate::heap::flush();
                (kept + cap) as u64
            })
        })
        .map(|h| h.join().unwrap())
        .collect();
    let expected: u64 = threads.iter().sum();
    assert_eq!(slots::global().read(t).live_bytes(), expected);
}

#[test]
fn a_sampled_block_is_marked_recorded_and_forgotten_on_free_and_realloc() {
    use crate::heap::sample;
    // Every byte samples on a thread of its own (its first draw samples nothing).
    let t = slots::test_tag(10, 1);
    std::thread::spawn(move || {
        let before = sample::interval();
        sample::set_interval(1);
        let _g = tag::enter(t);
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: blocks freed once with the layout they have; never read.
        unsafe {
            let warm = A.alloc(layout); // arms this thread's countdown
            A.dealloc(warm, layout);
            let p = A.alloc(layout);
            let mine = || sample::live(|owner| owner == t).len();
            assert_eq!(mine(), 1, "recorded with its owner");
            let q = A.realloc(p, layout, 4096);
            // The old block's sample is forgotten; the move ends the countdown (every byte
            // samples), so the moved block is sampled itself, and marked.
            let sizes = || -> Vec<u64> {
                let live = sample::live(|owner| owner == t);
                live.iter().map(|s| s.size).collect()
            };
            assert_eq!(
                sizes(),
                [4096],
                "the moved block's sample, not the old one's"
            );
            let big = Layout::from_size_align(4096, 8).unwrap();
            A.dealloc(q, big);
            assert_eq!(
                mine(),
                0,
                "the moved block's mark forgets its sample on free"
            );
            let r = A.alloc(layout);
            assert_eq!(mine(), 1);
            A.dealloc(r, layout);
            assert_eq!(mine(), 0, "forgotten on free");
        }
        sample::set_interval(before);
    })
    .join()
    .unwrap();
}
