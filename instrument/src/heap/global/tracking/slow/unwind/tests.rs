//! The walker against libgcc's on the same stacks: the same callers, frame for frame, and no
//! walk handed over where it should not be.

use super::rules::UNKNOWN;
use super::*;

type Walks = (Vec<usize>, Vec<usize>, Stats);

/// The same callers; what this walker did.
fn assert_same_callers((ours, theirs, stats): Walks) -> Stats {
    if let Err(e) = same_callers(&ours, &theirs) {
        panic!("{e}");
    }
    stats
}

#[inline(never)]
fn nest(depth: usize) -> Walks {
    let out = if depth == 0 { both() } else { nest(depth - 1) };
    // Not a tail call: this frame stays on the stack during the walks.
    std::hint::black_box(out)
}

/// A frame whose stack is realigned (an over-aligned local), so its frame address is found
/// from RBP, not RSP; it calls `nest(depth)`.
#[repr(align(64))]
struct Aligned([u8; 64]);

#[inline(never)]
fn realigned(depth: usize) -> Walks {
    let local = std::hint::black_box(Aligned([depth as u8; 64]));
    let out = nest(depth);
    std::hint::black_box(&local.0);
    out
}

#[test]
fn walks_like_libgcc_at_every_depth_from_rsp_and_from_rbp() {
    for depth in [0, 1, 2, 7, 30, 100] {
        let plain = assert_same_callers(nest(depth)).from_rbp;
        let with_one = assert_same_callers(realigned(depth)).from_rbp;
        assert_eq!(
            with_one,
            plain + 1,
            "one realigned frame more is one frame stepped from RBP more"
        );
    }
}

#[test]
fn walks_like_libgcc_on_a_small_stack_and_in_tokio_tasks() {
    let small = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| realigned(20))
        .unwrap();
    assert_same_callers(small.join().unwrap());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    async fn inner(depth: usize) -> Walks {
        tokio::task::yield_now().await;
        realigned(depth)
    }
    let got = rt.block_on(async { tokio::spawn(async { inner(9).await }).await.unwrap() });
    assert_same_callers(got);
    // And on the thread that blocks on the runtime.
    assert_same_callers(rt.block_on(inner(4)));
}

#[test]
fn a_walk_fills_at_most_its_buffer_and_reads_each_rule_once() {
    #[inline(never)]
    fn short() -> Option<(usize, Stats)> {
        let mut few = [0usize; 3];
        std::hint::black_box(own_walk(&mut few, true))
    }
    // From one call site, so the second walk's frames are the first's.
    let walks: Vec<_> = (0..2).map(|_| short()).collect();
    let (n, first) = walks[0].unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        walks[1].unwrap(),
        (3, Stats { read: 0, ..first }),
        "all rules were cached"
    );
}

/// The walk inside a signal handler: its caller is the kernel's signal frame, which this
/// walker hands to libgcc.
static IN_HANDLER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    let mut frames = [0usize; 64];
    let got = own_walk(&mut frames, true).map_or(usize::MAX, |(n, _)| n);
    IN_HANDLER.store(got, Ordering::SeqCst);
}

#[test]
fn a_signal_frame_is_handed_to_libgcc() {
    // Rules of the handler's own frames cached first, so the handler allocates nothing.
    let mut frames = [0usize; 64];
    assert!(own_walk(&mut frames, true).is_some());
    // SAFETY: installs a handler for SIGUSR2 (which nothing else in the tests uses) and raises
    // it on this thread; the handler only walks into a local buffer and stores an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
        assert_eq!(libc::raise(libc::SIGUSR2), 0);
    }
    assert_eq!(
        IN_HANDLER.load(Ordering::SeqCst),
        usize::MAX,
        "a walk through a signal frame is handed over"
    );
}

#[test]
fn prepare_learns_the_threads_stack_and_makes_the_walker_once() {
    std::thread::spawn(|| {
        assert_eq!(
            STACK.with(Cell::get),
            (0, 0),
            "a new thread knows no stack yet"
        );
        prepare();
        let (lo, hi) = STACK.with(Cell::get);
        let here = std::ptr::from_ref(&lo) as usize;
        assert!(
            lo <= here && here < hi,
            "{here:#x} outside [{lo:#x}, {hi:#x})"
        );
    })
    .join()
    .unwrap();
    // The process's walker may be made by any walk; a slot of the test's own shows `prepare`'s
    // part: made once, kept, and left alone while busy.
    let slot = Mutex::new(None);
    make_in(&slot);
    let first = slot.lock().unwrap().as_ref().map(|u| u.cache.as_ptr());
    assert!(first.is_some(), "made");
    make_in(&slot);
    assert_eq!(
        slot.lock().unwrap().as_ref().map(|u| u.cache.as_ptr()),
        first,
        "kept"
    );
    let fresh = Mutex::new(None);
    let held = fresh.lock().unwrap();
    make_in(&fresh);
    assert!(held.is_none(), "busy: left to whoever holds it");
}

#[test]
fn a_read_is_an_aligned_word_between_the_walks_frame_and_the_stacks_top() {
    let (lo, span) = (0x7000_0000_1000, 0x100);
    for at in [lo, lo + 8, lo + span - 8, lo + span] {
        assert!(readable(at, lo, span), "{at:#x}");
    }
    for at in [
        lo - 8,
        lo + 1,
        lo + 4,
        lo + span - 1,
        lo + span + 8,
        0,
        usize::MAX - 7,
    ] {
        assert!(!readable(at, lo, span), "{at:#x}");
    }
    // A span that is not a multiple of 8 ends at the last whole word in it.
    assert!(readable(lo + 8, lo, 15) && !readable(lo + 16, lo, 15));
}

proptest::proptest! {
    /// The one-test bounds check against the plain one it replaces, on stacks anywhere in a
    /// 47-bit address space and addresses anywhere at all (near the stack, and wild).
    #[test]
    fn the_bounds_test_is_the_plain_one(
        lo_words in 0usize..(1 << 44),
        span in 0usize..(1 << 24),
        near in -(1isize << 25)..(1isize << 25),
        wild in proptest::prelude::any::<usize>(),
    ) {
        let lo = lo_words * 8;
        let plain = |at: usize| at >= lo && at - lo <= span && at.is_multiple_of(8);
        for at in [lo.wrapping_add_signed(near), wild] {
            proptest::prop_assert_eq!(readable(at, lo, span), plain(at), "at {:#x}", at);
        }
    }
}

/// The loop hands a walk to libgcc on an `UNKNOWN` kind; this checks which rules pack to it.
#[test]
fn a_rule_the_loop_cannot_apply_packs_as_unknown() {
    let step = |rbp| Rule::Step {
        fp: true,
        cfa: 16,
        ra: -8,
        rbp,
    };
    assert_eq!(
        Packed::of(step(Some(-16))),
        Packed {
            kind: FROM_RBP,
            cfa: 16,
            ra: -8,
            rbp: -16
        }
    );
    assert_eq!(Packed::of(step(None)).rbp, 0, "RBP unchanged");
    assert_eq!(
        Packed::of(step(Some(0))).kind,
        UNKNOWN,
        "RBP saved at CFA + 0 would read as unchanged"
    );
    assert_eq!(Packed::of(Rule::End).kind, END);
    assert_eq!(Packed::of(Rule::Unknown).kind, UNKNOWN);
}

#[test]
fn addresses_that_share_a_set_keep_their_rules_until_a_fifth_comes() {
    let rule = |cfa| Packed {
        kind: FROM_RSP,
        cfa,
        ra: -8,
        rbp: 0,
    };
    // Five addresses of one set, found by their hash.
    let target = set_of(0x5555_0000_1000);
    let same: Vec<usize> = (0x5555_0000_1000usize..)
        .filter(|&a| set_of(a) == target)
        .take(WAYS + 1)
        .collect();
    let mut set = [EMPTY; WAYS];
    for (i, &a) in same[..WAYS].iter().enumerate() {
        keep(&mut set, a, rule(i as i32 + 8));
    }
    for (i, &a) in same[..WAYS].iter().enumerate() {
        assert_eq!(cached(&set, a), Some(rule(i as i32 + 8)), "{a:#x}");
    }
    keep(&mut set, same[WAYS], rule(99));
    assert_eq!(cached(&set, same[0]), None, "the oldest goes");
    for (i, &a) in same[1..WAYS].iter().enumerate() {
        assert_eq!(cached(&set, a), Some(rule(i as i32 + 9)), "{a:#x}");
    }
    assert_eq!(cached(&set, same[WAYS]), Some(rule(99)));
    assert_eq!(
        cached(&[EMPTY; WAYS], same[0]),
        None,
        "an empty set holds nothing"
    );
}
