//! The walker against libgcc's on the same stacks: the same callers, frame for frame, and no
//! walk handed over.

use super::*;

fn assert_same_callers((ours, theirs): (Vec<usize>, Vec<usize>)) {
    if let Err(e) = same_callers(&ours, &theirs) {
        panic!("{e}");
    }
}

/// A frame whose stack is realigned (an over-aligned local): its frame address is found from
/// RBP, not RSP.
#[repr(align(64))]
struct Aligned([u8; 64]);

#[inline(never)]
fn nest(depth: usize, realign_at: usize) -> (Vec<usize>, Vec<usize>) {
    let out = if depth == 0 {
        both()
    } else if depth == realign_at {
        let local = std::hint::black_box(Aligned([depth as u8; 64]));
        let out = nest(depth - 1, realign_at);
        std::hint::black_box(&local.0);
        out
    } else {
        nest(depth - 1, realign_at)
    };
    // Not a tail call: this frame stays on the stack during the walks.
    std::hint::black_box(out)
}

#[test]
fn walks_like_libgcc_at_every_depth() {
    for depth in [0, 1, 2, 7, 30, 100] {
        assert_same_callers(nest(depth, usize::MAX));
        if depth > 0 {
            assert_same_callers(nest(depth, depth / 2 + 1));
        }
    }
    // The realigned frames were stepped from RBP (so that rule was compared too).
    let unwinder = UNWINDER.lock().unwrap();
    let cache = &unwinder.as_ref().unwrap().cache;
    let from_rbp = cache
        .iter()
        .filter(|(_, r)| matches!(r, Rule::Step { fp: true, .. }))
        .count();
    assert!(from_rbp > 0, "no frame found from RBP");
}

#[test]
fn walks_like_libgcc_on_a_small_stack_and_in_tokio_tasks() {
    let small = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| nest(20, 5))
        .unwrap();
    assert_same_callers(small.join().unwrap());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    async fn inner(depth: usize) -> (Vec<usize>, Vec<usize>) {
        tokio::task::yield_now().await;
        nest(depth, 3)
    }
    let got = rt.block_on(async { tokio::spawn(async { inner(9).await }).await.unwrap() });
    assert_same_callers(got);
    // And on the thread that blocks on the runtime.
    assert_same_callers(rt.block_on(inner(4)));
}

#[test]
fn a_walk_fills_at_most_its_buffer_and_rules_are_cached() {
    #[inline(never)]
    fn short() -> (usize, usize) {
        let mut few = [0usize; 3];
        let n = own_walk(&mut few).unwrap();
        let again = own_walk(&mut few).unwrap();
        std::hint::black_box((n, again))
    }
    assert_eq!(short(), (3, 3));
    let before = handed_over();
    let mut frames = [0usize; 32];
    assert!(walk(&mut frames) > 0);
    assert_eq!(
        handed_over(),
        before,
        "an ordinary stack is walked without libgcc"
    );
}
