//! Task id -> connection tag, read by the poll hooks without locks.
//!
//! A 4-way set-associative table indexed by `task_id % SETS` (131,072 entries, 4 MiB of
//! zeroed static memory, resident as it is touched), plus a small lock-free overflow array
//! for the rare task whose set is full, where an id may sit only in a window of [`PROBE`]
//! entries from its hash. Nothing here locks, allocates or panics: the poll path reads at most
//! four entries, and the overflow window only for ids whose set has overflowed. Only the spawn hook of task X inserts X and only its terminate hook removes
//! it, and lookups of X happen between the two (in X's polls), so an entry needs no version.
//! When no tagged task is alive a lookup is a single atomic load.
//!
//! If even the overflow window is full (more than 131,072 tagged tasks alive, or many with
//! colliding ids), the task is still known to the collector, but its polls run untagged (its
//! allocations are nobody's): [`dropped`] counts such tasks and the terminate hook reports the
//! end of every unknown task while it is non-zero, so no task is left alive by mistake.

// Read and written by the runtime hooks, which need `--cfg tokio_unstable`.
#![cfg_attr(not(tokio_unstable), allow(dead_code))]

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::ids::{Tag, TaskId};

const SETS: usize = 1 << 15;
const WAYS: usize = 4;
const OVERFLOW: usize = 1024;
/// Overflow entries an id may use, from its hash on.
const PROBE: usize = 32;
const LOCKED: u64 = u64::MAX;

struct Entry {
    id: AtomicU64,
    tag: AtomicU64,
    /// Polls so far, and the last one's time (coarse ms): written only by the thread polling
    /// the task (one at a time), read by snapshots.
    polls: AtomicU64,
    last_poll: AtomicU64,
}

impl Entry {
    const fn empty() -> Self {
        Entry {
            id: AtomicU64::new(0),
            tag: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            last_poll: AtomicU64::new(0),
        }
    }
}

static TABLE: [[Entry; WAYS]; SETS] = [const { [const { Entry::empty() }; WAYS] }; SETS];
/// Per set: how many of its ids live in the overflow array (or were dropped).
static SPILLED: [AtomicU32; SETS] = [const { AtomicU32::new(0) }; SETS];
static SPILL: [Entry; OVERFLOW] = [const { Entry::empty() }; OVERFLOW];
static LIVE: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn set(id: u64) -> usize {
    (id as usize) & (SETS - 1)
}

/// Claims an empty entry of `entries` for (`id`, `tag`).
fn claim(entries: &[Entry], id: u64, tag: u64) -> bool {
    for e in entries {
        if e.id.load(Ordering::Relaxed) == 0
            && e.id
                .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            e.tag.store(tag, Ordering::Relaxed);
            e.polls.store(0, Ordering::Relaxed);
            e.last_poll.store(0, Ordering::Relaxed);
            e.id.store(id, Ordering::Release);
            return true;
        }
    }
    false
}

#[inline]
fn find(entries: &[Entry], id: u64) -> Option<&Entry> {
    entries.iter().find(|e| e.id.load(Ordering::Acquire) == id)
}

/// The overflow entries `id` may use: [`PROBE`] of them from its hash on, wrapping around
/// (so a lookup of an id that is nowhere reads [`PROBE`] entries, not the whole array).
fn window(id: u64) -> &'static [Entry] {
    let start = (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize % (OVERFLOW / PROBE);
    &SPILL[start * PROBE..(start + 1) * PROBE]
}

/// Records that task `id` belongs to `tag`. Returns `false` if the task could not be placed
/// (its polls will run untagged; see the module docs).
pub(crate) fn insert(id: TaskId, tag: Tag) -> bool {
    let (id, tag) = (id.0, tag.to_bits());
    LIVE.fetch_add(1, Ordering::Relaxed);
    let s = set(id);
    if claim(&TABLE[s], id, tag) {
        return true;
    }
    SPILLED[s].fetch_add(1, Ordering::Release);
    if claim(window(id), id, tag) {
        return true;
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
    false
}

/// The tag of task `id` (none for an untagged task).
#[inline]
pub(crate) fn get(id: TaskId) -> Tag {
    entry_of(id.0).map_or(Tag::NONE, |e| Tag::from_bits(e.tag.load(Ordering::Relaxed)))
}

/// The before-poll hook: task `id` is being polled (counted, timed); its tag.
#[inline]
pub(crate) fn poll(id: TaskId, now_ms: u64) -> Tag {
    let Some(e) = entry_of(id.0) else {
        return Tag::NONE;
    };
    // One poller at a time: a plain load and store, no read-modify-write.
    e.polls
        .store(e.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    e.last_poll.store(now_ms, Ordering::Relaxed);
    Tag::from_bits(e.tag.load(Ordering::Relaxed))
}

/// (polls so far, last poll in coarse ms) of a tagged task alive now.
pub(crate) fn activity(id: TaskId) -> Option<(u64, u64)> {
    let e = entry_of(id.0)?;
    let polls = e.polls.load(Ordering::Relaxed);
    let last = e.last_poll.load(Ordering::Relaxed);
    (e.id.load(Ordering::Acquire) == id.0).then_some((polls, last))
}

/// Inlined into the hooks (a call would make each save registers): the id's set, and the
/// overflow only where some ids of that set spilled.
#[inline(always)]
fn entry_of(id: u64) -> Option<&'static Entry> {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let s = set(id);
    if let Some(e) = find(&TABLE[s], id) {
        return Some(e);
    }
    spilled_entry_of(s, id)
}

#[cold]
#[inline(never)]
fn spilled_entry_of(set: usize, id: u64) -> Option<&'static Entry> {
    if SPILLED[set].load(Ordering::Acquire) == 0 {
        return None;
    }
    find(window(id), id)
}

/// What [`remove`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removed {
    /// The task's tag.
    Tagged(Tag),
    /// Not in the table: an untagged task.
    Untagged,
    /// Not in the table, but some tasks could not be placed: it may be one of them.
    Unknown,
}

/// Forgets task `id`.
#[inline]
pub(crate) fn remove(id: TaskId) -> Removed {
    let id = id.0;
    if LIVE.load(Ordering::Relaxed) == 0 {
        return Removed::Untagged;
    }
    let s = set(id);
    let hit = find(&TABLE[s], id).or_else(|| {
        (SPILLED[s].load(Ordering::Acquire) != 0)
            .then(|| find(window(id), id))
            .flatten()
    });
    if let Some(e) = hit {
        let in_spill = SPILL.as_ptr_range().contains(&std::ptr::from_ref(e));
        let tag = e.tag.swap(0, Ordering::Relaxed);
        e.id.store(0, Ordering::Release);
        if in_spill {
            SPILLED[s].fetch_sub(1, Ordering::Release);
        }
        LIVE.fetch_sub(1, Ordering::Relaxed);
        return Removed::Tagged(Tag::from_bits(tag));
    }
    if DROPPED.load(Ordering::Relaxed) != 0 {
        Removed::Unknown
    } else {
        Removed::Untagged
    }
}

/// Tagged tasks that could not be placed since start (their polls ran untagged).
pub(crate) fn dropped() -> usize {
    DROPPED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_ids_spill_and_come_back_without_locks() {
        // Ids far above what tokio hands out in this test binary, all in one set.
        let base = (1u64 << 40) + 7;
        let ids: Vec<TaskId> = (0..6).map(|i| TaskId(base + i * SETS as u64)).collect();
        let tag = |i: usize| Tag::new(100 + i, 1);
        for (i, &id) in ids.iter().enumerate() {
            assert!(insert(id, tag(i)));
        }
        assert!(SPILLED[set(base)].load(Ordering::Relaxed) >= 2);
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(get(id), tag(i));
        }
        assert_eq!(get(TaskId(base + 1)), Tag::NONE);
        for (i, &id) in ids.iter().enumerate().rev() {
            assert_eq!(remove(id), Removed::Tagged(tag(i)));
            assert_eq!(get(id), Tag::NONE);
        }
        assert_eq!(SPILLED[set(base)].load(Ordering::Relaxed), 0);
        assert_eq!(remove(TaskId(base)), Removed::Untagged);
    }
}
