//! The per-thread context: which connection's code runs on this thread right now.
//!
//! A *tag* is a `u64` naming a connection slot: `generation << 32 | slot`; `0` means untagged.
//! The scope future and the poll hooks set it for the length of one synchronous poll and
//! restore it after; the spawn hook reads it to tag children, the allocator to charge bytes.
//! The current tag itself lives in the allocator's per-thread cache (one thread-local access
//! per allocation). Every thread-local here is `const`-initialised with no destructor, so reading it never
//! allocates and works during thread teardown (the allocator depends on that).

use std::cell::Cell;

/// No connection.
pub(crate) const UNTAGGED: u64 = 0;

thread_local! {
    /// The task being polled on this thread (set by the poll hooks), 0 outside a poll.
    static POLLING: Cell<u64> = const { Cell::new(0) };
    /// A task whose poll panicked on this thread (set by the panic hook).
    static PANICKED: Cell<u64> = const { Cell::new(0) };
    /// A task whose leakscope wrapper was dropped before completing (abort or shutdown).
    static DROPPED_EARLY: Cell<u64> = const { Cell::new(0) };
}

/// The tag of the code running on this thread. Never panics, never allocates.
#[inline]
pub(crate) fn current() -> u64 {
    crate::heap::batch::current()
}

#[inline]
fn replace(tag: u64) -> u64 {
    crate::heap::batch::replace_current(tag)
}

/// Sets the current tag until the guard drops, then restores the previous one.
#[must_use]
pub(crate) struct TagGuard {
    prev: u64,
}

impl Drop for TagGuard {
    #[inline]
    fn drop(&mut self) {
        replace(self.prev);
        crate::heap::batch::leave_region();
    }
}

/// Runs the caller as connection `tag` until the guard drops. The guard is an allocator
/// region: counts made meanwhile are batched and flushed when the outermost region ends.
#[inline]
pub(crate) fn enter(tag: u64) -> TagGuard {
    crate::heap::batch::enter_region();
    TagGuard { prev: replace(tag) }
}

/// Marks leakscope's own work: nothing done until the guard drops is charged to a connection.
#[inline]
pub(crate) fn untracked() -> TagGuard {
    enter(UNTAGGED)
}

/// Overwrites the current tag without restoring it (the poll hooks pair these up).
#[inline]
pub(crate) fn set(tag: u64) {
    replace(tag);
}

pub(crate) fn polling() -> u64 {
    POLLING.try_with(Cell::get).unwrap_or(0)
}

pub(crate) fn set_polling(task: u64) {
    let _ = POLLING.try_with(|c| c.set(task));
    let _ = PANICKED.try_with(|c| c.set(0));
}

pub(crate) fn mark_panicked_poll() {
    let _ = PANICKED.try_with(|c| c.set(polling()));
}

pub(crate) fn take_panicked() -> u64 {
    PANICKED.try_with(|c| c.replace(0)).unwrap_or(0)
}

pub(crate) fn mark_dropped_early(task: u64) {
    let _ = DROPPED_EARLY.try_with(|c| c.set(task));
}

pub(crate) fn take_dropped_early() -> u64 {
    DROPPED_EARLY.try_with(|c| c.replace(0)).unwrap_or(0)
}

/// The slot part of a tag.
#[inline]
pub(crate) fn slot_of(tag: u64) -> usize {
    (tag & 0xffff_ffff) as usize
}

/// The generation part of a tag.
#[inline]
pub(crate) fn generation_of(tag: u64) -> u32 {
    (tag >> 32) as u32
}

/// Builds a tag.
#[inline]
pub(crate) fn make(slot: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | slot as u64
}

/// A `tokio::task::Id` as a number (tokio offers no accessor; its `Hash` writes the u64).
pub(crate) fn task_id_u64(id: tokio::task::Id) -> u64 {
    id_u64(&id)
}

/// A tokio id (task or runtime) as a number: its `Hash` writes one integer.
pub(crate) fn id_u64(id: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    struct Capture(u64);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 << 8) | u64::from(*b);
            }
        }
        fn write_u64(&mut self, v: u64) {
            self.0 = v;
        }
    }
    let mut h = Capture(0);
    id.hash(&mut h);
    h.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(current(), UNTAGGED);
        {
            let _a = enter(make(3, 1));
            assert_eq!(slot_of(current()), 3);
            {
                let _b = untracked();
                assert_eq!(current(), UNTAGGED);
            }
            assert_eq!(current(), make(3, 1));
        }
        assert_eq!(current(), UNTAGGED);
    }

    #[tokio::test]
    async fn task_ids_convert_to_their_display_number() {
        let h = tokio::spawn(async {});
        let id = h.id();
        h.await.unwrap();
        assert_eq!(task_id_u64(id).to_string(), id.to_string());
    }
}
