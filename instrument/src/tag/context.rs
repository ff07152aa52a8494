//! The current tag: which connection's code runs on this thread right now.
//!
//! The scope future and the poll hooks set it for the length of one synchronous poll and
//! restore it after; the spawn hook reads it to tag children, the allocator to charge bytes.
//! It lives in the allocator's per-thread cache (`heap::batch`), so an allocation reaches
//! everything it needs through one thread-local access. A [`TagGuard`] is also an allocator
//! *region*: counts made inside it are batched and flushed when the outermost region ends.

use crate::heap::batch;
use crate::ids::Tag;

/// The tag of the code running on this thread. Never panics, never allocates.
#[inline]
pub(crate) fn current() -> Tag {
    batch::current()
}

/// Sets the current tag until the guard drops, then restores the previous one.
#[must_use]
pub(crate) struct TagGuard {
    prev: Tag,
}

impl Drop for TagGuard {
    #[inline]
    fn drop(&mut self) {
        batch::leave_scope(self.prev);
    }
}

/// Runs the caller as connection `tag` until the guard drops.
#[inline]
pub(crate) fn enter(tag: Tag) -> TagGuard {
    TagGuard {
        prev: batch::enter_scope(tag),
    }
}

/// Runs the caller as connection `tag` until the guard drops, without batching its
/// allocation counts: for a blocking task, which may park for good before its end (a region's
/// batched counts would wait for it).
#[inline]
pub(crate) fn enter_unbatched(tag: Tag) -> UnbatchedGuard {
    UnbatchedGuard {
        prev: batch::replace_current(tag),
    }
}

/// See [`enter_unbatched`].
#[must_use]
pub(crate) struct UnbatchedGuard {
    prev: Tag,
}

impl Drop for UnbatchedGuard {
    fn drop(&mut self) {
        batch::replace_current(self.prev);
    }
}

/// Marks leakscope's own work: nothing done until the guard drops is charged to a connection.
#[inline]
pub(crate) fn untracked() -> TagGuard {
    enter(Tag::NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(current(), Tag::NONE);
        {
            let _a = enter(Tag::new(3, 1));
            assert_eq!(current().slot(), 3);
            {
                let _b = untracked();
                assert_eq!(current(), Tag::NONE);
            }
            assert_eq!(current(), Tag::new(3, 1));
        }
        assert_eq!(current(), Tag::NONE);
    }
}
