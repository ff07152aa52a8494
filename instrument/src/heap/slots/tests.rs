//! The slot table: late updates after recycling, word-generation wrap, growth.

use super::*;
use crate::ids::Tag;

fn make(slot: usize, generation: u32) -> Tag {
    Tag::new(slot, generation)
}

fn alloc(n: u64) -> Delta {
    Delta {
        alloc_bytes: n,
        alloc_blocks: 1,
        ..Delta::default()
    }
}
fn free(n: u64) -> Delta {
    Delta {
        free_bytes: n,
        free_blocks: 1,
        ..Delta::default()
    }
}

#[test]
fn updates_for_a_recycled_generation_go_to_the_stale_bucket() {
    let t = SlotTable::new(2, 1, GEN_BITS);
    let slot = FIRST_CONN_SLOT + 3;
    t.recycle(slot, 0, 1);
    let t1 = make(slot, 1);
    t.apply(t1, &alloc(100));
    assert_eq!(t.read(t1).live_bytes(), 100);
    let before = t.stale();
    t.recycle(slot, 1, 2);
    let t2 = make(slot, 2);
    assert_eq!(t.read(t2), Counts::default());
    // The old owner's free arrives late: it must not touch generation 2.
    t.apply(t1, &free(100));
    assert_eq!(t.read(t2), Counts::default());
    let after = t.stale();
    assert_eq!(after.alloc_bytes - before.alloc_bytes, 100);
    assert_eq!(after.free_bytes - before.free_bytes, 100);
}

#[test]
fn a_free_never_credits_a_later_owner_even_when_word_generations_wrap() {
    // Two generation bits in the words: generation 1 and 5 look alike there.
    let t = SlotTable::new(0, 1, 2);
    let slot = FIRST_CONN_SLOT;
    t.recycle(slot, 0, 1);
    t.apply(make(slot, 1), &alloc(64));
    for g in 1..5 {
        t.recycle(slot, g, g + 1);
    }
    let t5 = make(slot, 5);
    t.apply(t5, &alloc(10));
    t.apply(make(slot, 1), &free(64));
    assert_eq!(t.read(t5).alloc_bytes, 10);
    assert_eq!(t.read(t5).free_bytes, 0);
}

#[test]
fn tags_outside_the_table_go_to_the_stale_bucket() {
    let t = SlotTable::new(1, 2, GEN_BITS);
    t.apply(make(FIRST_CONN_SLOT + 3, 0), &alloc(7));
    assert_eq!(t.stale().alloc_bytes, 7, "a chunk not grown yet");
    assert_eq!(t.grow(), Some(FIRST_CONN_SLOT + 2..FIRST_CONN_SLOT + 4));
    assert_eq!(t.grow(), None, "at capacity");
    t.apply(make(FIRST_CONN_SLOT + 3, 0), &alloc(5));
    assert_eq!(t.read(make(FIRST_CONN_SLOT + 3, 0)).alloc_bytes, 5);
}
