//! The batch against a model: every count reaches the shared counters exactly, nothing is
//! stranded outside a region, and nested sections are nobody's.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

#[test]
fn a_fifth_tag_flushes_a_victim_entry() {
    let base = slots::test_tag(2, 1);
    let other = slots::test_tag(3, 1);
    let c = Cache::new();
    let prev = c.enter_scope(Tag::NONE);
    c.free_slow(base, 10);
    for i in 1..=ENTRIES as u32 {
        c.free_slow(Tag::new(other.slot(), other.generation() + i), 1);
    }
    // `base` lost its entry, so its count reached the shared counters.
    assert_eq!(slots::global().read(base).free_bytes, 10);
    c.leave_scope(prev);
}

#[test]
fn outside_a_region_every_count_reaches_the_counters_at_once() {
    let t = slots::test_tag(9, 1);
    let c = Cache::new();
    c.current.set(t);
    assert_eq!(c.alloc_fast(33), None, "no lane outside a region");
    assert_eq!(c.alloc_slow(33).0, t);
    assert_eq!(slots::global().read(t).alloc_bytes, 33);
    c.sample_left.set(1 << 20);
    let prev = c.enter_scope(t);
    assert_eq!(c.alloc_fast(8), Some(t.to_bits()), "the lane is open");
    assert!(c.free_fast(t.to_bits(), 7));
    assert_eq!(
        slots::global().read(t).free_bytes,
        0,
        "batched inside a region"
    );
    c.leave_scope(prev);
    let r = slots::global().read(t);
    assert_eq!(
        (r.alloc_bytes, r.free_bytes),
        (41, 7),
        "flushed on leaving it"
    );
}

#[test]
fn the_lane_flushes_every_256_kib() {
    let t = slots::test_tag(10, 1);
    let c = Cache::new();
    let prev = c.enter_scope(t);
    let mut n = 0u64;
    while slots::global().read(t).alloc_bytes == 0 {
        if c.alloc_fast(1024).is_none() {
            c.alloc_slow(1024);
        }
        n += 1;
        assert!(n <= 2 * FLUSH_BYTES / 1024 + 1, "no flush after {n} KiB");
    }
    c.leave_scope(prev);
}

#[test]
fn a_realloc_that_exhausts_the_lane_reopens_it() {
    let t = slots::test_tag(11, 1);
    let c = Cache::new();
    c.sample_left.set(1 << 30);
    let prev = c.enter_scope(t);
    assert_eq!(c.alloc_fast(16), Some(t.to_bits()));
    // Larger than what is left of the lane's budget: counted, and the lane gets a new budget,
    // so the next moves and allocations take the fast path again.
    let big = FLUSH_BYTES;
    c.on_move(t, 16, big);
    assert_eq!(c.lane.get(), t.to_bits(), "the lane is open");
    assert_eq!(c.budget.get(), FLUSH_BYTES, "with a new budget");
    assert_eq!(
        slots::global().read(t).alloc_bytes,
        16 + big,
        "counted on closing"
    );
    assert_eq!(c.alloc_fast(8), Some(t.to_bits()));
    c.leave_scope(prev);
    let r = slots::global().read(t);
    assert_eq!((r.alloc_blocks, r.free_blocks), (3, 1));
    assert_eq!((r.alloc_bytes, r.free_bytes), (16 + big + 8, 16));
}

#[test]
fn a_move_that_ends_the_countdown_is_sampled_and_draws_the_next() {
    let t = slots::test_tag(12, 1);
    let c = Cache::new();
    c.rng.set(0x2545_f491_4f6c_dd1d); // not the thread's first draw
    c.sample_left.set(1000);
    let prev = c.enter_scope(t);
    assert_eq!(c.alloc_fast(16), Some(t.to_bits()));
    assert!(!c.on_move(t, 16, 100), "within the countdown: not sampled");
    assert!(c.on_move(t, 100, 5000), "past it: sampled");
    assert!(c.sample_left.get() > 0, "the next countdown is drawn");
    assert_eq!(c.budget.get(), c.armed.get());
    assert!(c.budget.get() > 0, "the lane is open with a budget");
    c.leave_scope(prev);
    let r = slots::global().read(t);
    assert_eq!((r.alloc_blocks, r.free_blocks), (3, 2));
    assert_eq!((r.alloc_bytes, r.free_bytes), (16 + 100 + 5000, 16 + 100));
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    /// Enter a region as tag k (0: none).
    Enter(usize),
    /// Enter a task poll's region as tag k (the poll hooks' path).
    Poll(usize),
    /// Leave the innermost region (a poll's as the after-poll hook does).
    Leave,
    /// Set the current tag to k without a region.
    Set(usize),
    Alloc(u64),
    /// Free a live block (index modulo the live ones).
    Free(usize),
    /// Realloc a live block to a new size.
    Move(usize, u64),
    Nest,
    Unnest,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize).prop_map(Op::Enter),
        2 => (0..4usize).prop_map(Op::Poll),
        3 => Just(Op::Leave),
        1 => (0..4usize).prop_map(Op::Set),
        6 => prop_oneof![1..64u64, 1..300_000u64].prop_map(Op::Alloc),
        5 => any::<usize>().prop_map(Op::Free),
        2 => (any::<usize>(), prop_oneof![1..64u64, 1..300_000u64]).prop_map(|(i, s)| Op::Move(i, s)),
        1 => Just(Op::Nest),
        1 => Just(Op::Unnest),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// After every step: shared counters + what the thread still holds = the model, per tag;
    /// outside every region the thread holds nothing; allocations in a nested section are
    /// nobody's; a sample is only ever requested outside nested sections.
    #[test]
    fn counts_are_exact_and_never_stranded(ops in proptest::collection::vec(op(), 1..200)) {
        // Tags 1..=3 are slots no other test uses; tag 0 is nobody (shared with the harness,
        // so only its ownership is checked, not its counts).
        let tags: Vec<Tag> = std::iter::once(Tag::NONE)
            .chain((0..3).map(|k| slots::test_tag(20 + k, 7)))
            .collect();
        let base: Vec<Delta> = tags.iter().map(|&t| slots::global().read(t)).collect();
        let c = Cache::new();
        let mut model: HashMap<Tag, Delta> = HashMap::new();
        let mut live: Vec<(Tag, u64)> = Vec::new();
        // The tag each region restores; `None` for a poll's (the after-poll hook leaves none).
        let mut scopes: Vec<Option<Tag>> = Vec::new();
        let mut nests: Vec<u32> = Vec::new();
        for op in ops {
            match op {
                Op::Enter(k) => scopes.push(Some(c.enter_scope(tags[k]))),
                Op::Poll(k) => {
                    c.enter_poll(7, tags[k]);
                    scopes.push(None);
                    prop_assert_eq!((c.current.get(), c.polling.get()), (tags[k], 7));
                }
                Op::Leave => match scopes.pop() {
                    Some(Some(p)) => c.leave_scope(p),
                    Some(None) => {
                        c.leave_poll();
                        prop_assert_eq!((c.current.get(), c.polling.get()), (Tag::NONE, 0));
                    }
                    None => {}
                },
                Op::Set(k) => { c.replace_current(tags[k]); }
                Op::Alloc(size) => {
                    let owner = match c.alloc_fast(size) {
                        Some(bits) => Tag::from_bits(bits),
                        None => {
                            let (owner, sample) = c.alloc_slow(size);
                            prop_assert!(!sample || nests.is_empty(), "sampled while nested");
                            owner
                        }
                    };
                    let want = if nests.is_empty() { c.current.get() } else { Tag::NONE };
                    prop_assert_eq!(owner, want);
                    let m = model.entry(owner).or_default();
                    m.alloc_bytes += size;
                    m.alloc_blocks += 1;
                    live.push((owner, size));
                }
                Op::Free(i) if !live.is_empty() => {
                    let (owner, size) = live.swap_remove(i % live.len());
                    if !c.free_fast(owner.to_bits(), size) {
                        c.free_slow(owner, size);
                    }
                    let m = model.entry(owner).or_default();
                    m.free_bytes += size;
                    m.free_blocks += 1;
                }
                Op::Move(i, new) if !live.is_empty() => {
                    let i = i % live.len();
                    let (owner, old) = live[i];
                    let sample = c.on_move(owner, old, new);
                    prop_assert!(!sample || nests.is_empty(), "sampled while nested");
                    live[i].1 = new;
                    let m = model.entry(owner).or_default();
                    m.free_bytes += old;
                    m.free_blocks += 1;
                    m.alloc_bytes += new;
                    m.alloc_blocks += 1;
                }
                Op::Free(_) | Op::Move(..) => {}
                Op::Nest => nests.push(c.enter_nested()),
                Op::Unnest => if let Some(d) = nests.pop() { c.leave_nested(d) },
            }
            if scopes.is_empty() {
                // What `enter_poll`'s short path relies on: outside every region the lane is
                // closed, with nothing armed.
                prop_assert_eq!((c.lane.get(), c.budget.get(), c.armed.get()), (CLOSED, 0, 0));
            }
            let held = held(&c);
            for (k, &t) in tags.iter().enumerate().skip(1) {
                let now = slots::global().read(t);
                let h = held.get(&t).copied().unwrap_or_default();
                let want = model.get(&t).copied().unwrap_or_default();
                let got = Delta {
                    alloc_bytes: now.alloc_bytes - base[k].alloc_bytes + h.alloc_bytes,
                    alloc_blocks: now.alloc_blocks - base[k].alloc_blocks + h.alloc_blocks,
                    free_bytes: now.free_bytes - base[k].free_bytes + h.free_bytes,
                    free_blocks: now.free_blocks - base[k].free_blocks + h.free_blocks,
                };
                prop_assert_eq!(got, want, "tag {}", k);
                if scopes.is_empty() {
                    prop_assert_eq!(h, Delta::default(), "stranded outside a region: tag {}", k);
                }
            }
        }
        while let Some(d) = nests.pop() {
            c.leave_nested(d);
        }
        while let Some(p) = scopes.pop() {
            match p {
                Some(p) => c.leave_scope(p),
                None => c.leave_poll(),
            }
        }
        prop_assert!(held(&c).values().all(|d| *d == Delta::default()));
    }
}

/// What the thread holds per tag (lane and cache), not yet in the shared counters.
fn held(c: &Cache) -> HashMap<Tag, Delta> {
    let mut out: HashMap<Tag, Delta> = HashMap::new();
    for i in 0..ENTRIES {
        let d = c.counts[i].get();
        let e = out.entry(c.tags[i].get()).or_default();
        e.alloc_bytes += d.alloc_bytes;
        e.alloc_blocks += d.alloc_blocks;
        e.free_bytes += d.free_bytes;
        e.free_blocks += d.free_blocks;
    }
    if c.lane.get() != CLOSED {
        let e = out.entry(Tag::from_bits(c.lane.get())).or_default();
        e.alloc_bytes += c.armed.get().wrapping_sub(c.budget.get());
        e.alloc_blocks += c.lane_alloc_blocks.get();
        e.free_bytes += c.lane_free_bytes.get();
        e.free_blocks += c.lane_free_blocks.get();
    }
    out
}

/// The poll's hand-offs, on this thread's cache: the task being polled, a panic marked in its
/// poll (taken once), and a new poll or the poll's end forgetting an unclaimed panic.
#[cfg(tokio_unstable)]
#[test]
fn a_polls_panic_is_taken_once_and_forgotten_by_the_next_poll() {
    use super::{enter_poll, leave_poll, mark_panicked_poll, polling, take_panicked};
    enter_poll(5, Tag::NONE);
    assert_eq!(polling(), 5);
    mark_panicked_poll();
    assert_eq!(take_panicked(), 5);
    assert_eq!(take_panicked(), 0, "taken once");
    mark_panicked_poll();
    leave_poll();
    assert_eq!(
        (polling(), take_panicked()),
        (0, 0),
        "the poll's end forgets it"
    );
    enter_poll(6, Tag::NONE);
    mark_panicked_poll();
    enter_poll(7, Tag::NONE);
    assert_eq!(
        (polling(), take_panicked()),
        (7, 0),
        "a new poll forgets it"
    );
    leave_poll();
    leave_poll();
    assert_eq!(super::current(), Tag::NONE);
}
