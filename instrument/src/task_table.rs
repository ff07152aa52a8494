//! Task id -> connection tag, readable without locks from the poll hooks.
//!
//! A direct-mapped table indexed by `task_id % SIZE`: tokio hands out task ids from one
//! counter, so live tagged tasks rarely collide; a colliding task goes to a small locked
//! overflow map. Only the spawn hook of task X inserts X and only its terminate hook removes
//! it, and lookups of X happen between the two (in X's polls), so an entry needs no version.
//! When no tagged task is alive the lookup is a single atomic load.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const SIZE: usize = 1 << 16;
const LOCKED: u64 = u64::MAX;

struct Entry {
    id: AtomicU64,
    tag: AtomicU64,
}

static TABLE: [Entry; SIZE] = [const {
    Entry {
        id: AtomicU64::new(0),
        tag: AtomicU64::new(0),
    }
}; SIZE];
static LIVE: AtomicUsize = AtomicUsize::new(0);
static OVERFLOW_LEN: AtomicUsize = AtomicUsize::new(0);
static OVERFLOW: Mutex<Option<HashMap<u64, u64>>> = Mutex::new(None);

#[inline]
fn entry(id: u64) -> &'static Entry {
    &TABLE[(id as usize) & (SIZE - 1)]
}

fn overflow<R>(f: impl FnOnce(&mut HashMap<u64, u64>) -> R) -> R {
    let mut guard = OVERFLOW.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// Records that task `id` belongs to `tag`.
pub(crate) fn insert(id: u64, tag: u64) {
    LIVE.fetch_add(1, Ordering::Relaxed);
    let e = entry(id);
    if e.id
        .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        e.tag.store(tag, Ordering::Relaxed);
        e.id.store(id, Ordering::Release);
    } else {
        overflow(|m| m.insert(id, tag));
        OVERFLOW_LEN.fetch_add(1, Ordering::Release);
    }
}

/// The tag of task `id`, or 0.
#[inline]
pub(crate) fn get(id: u64) -> u64 {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    let e = entry(id);
    if e.id.load(Ordering::Acquire) == id {
        return e.tag.load(Ordering::Relaxed);
    }
    if OVERFLOW_LEN.load(Ordering::Acquire) == 0 {
        return 0;
    }
    overflow(|m| m.get(&id).copied().unwrap_or(0))
}

/// Forgets task `id`, returning its tag (0 if it had none).
#[inline]
pub(crate) fn remove(id: u64) -> u64 {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    let e = entry(id);
    if e.id.load(Ordering::Acquire) == id {
        let tag = e.tag.swap(0, Ordering::Relaxed);
        e.id.store(0, Ordering::Release);
        LIVE.fetch_sub(1, Ordering::Relaxed);
        return tag;
    }
    if OVERFLOW_LEN.load(Ordering::Acquire) == 0 {
        return 0;
    }
    match overflow(|m| m.remove(&id)) {
        Some(tag) => {
            OVERFLOW_LEN.fetch_sub(1, Ordering::Release);
            LIVE.fetch_sub(1, Ordering::Relaxed);
            tag
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_ids_go_to_overflow_and_come_back() {
        // Ids far above what tokio hands out in this test binary.
        let a = (1u64 << 40) + 7;
        let b = a + SIZE as u64;
        insert(a, 11);
        insert(b, 22);
        assert_eq!(get(a), 11);
        assert_eq!(get(b), 22);
        assert_eq!(get(a + 1), 0);
        assert_eq!(remove(b), 22);
        assert_eq!(get(b), 0);
        assert_eq!(remove(a), 11);
        assert_eq!(remove(a), 0);
    }
}
