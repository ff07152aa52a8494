//! Regions: a tag guard's or a scope's ([`enter_scope`], [`leave_scope`]), and a task poll's
//! ([`enter_poll`], [`leave_poll`]), which the poll hooks enter and leave once per poll. A
//! worker thread runs its polls outside every other region, so the common case of a poll is a
//! handful of plain stores: nothing to close on entry (outside every region the lane is
//! closed), and no lane to reopen on exit. Anything else (a poll inside a region or a nested
//! section: a runtime driven from connection code) takes the general path, which leaves the
//! thread untagged after the poll, as the hooks always have: the enclosing region's code then
//! runs as nobody until that region ends (a region's tag is restored by its own guard, a
//! poll's is not saved by the hooks).
//!
//! The poll's hand-offs (the task being polled, a task whose poll panicked) live in the same
//! thread-local as the lane, so that each hook computes one thread-local address.

use super::{CACHE, CLOSED, Cache};
use crate::ids::Tag;

impl Cache {
    /// Enters a region as `tag`; returns the tag to restore.
    #[inline]
    pub(super) fn enter_scope(&self, tag: Tag) -> Tag {
        // A closed lane (outside every region) has nothing to close: budget, armed 0.
        if self.lane.get() != CLOSED {
            self.close_lane(0);
        }
        debug_assert!(self.budget.get() == 0 && self.armed.get() == 0);
        self.regions.set(self.regions.get().wrapping_add(1)); // (2^32 nested regions: never)
        let prev = self.current.replace(tag);
        self.open_lane();
        prev
    }

    /// Leaves a region, restoring `prev`; leaving the outermost one flushes.
    #[inline]
    pub(super) fn leave_scope(&self, prev: Tag) {
        self.close_lane(0);
        let d = self.regions.get().saturating_sub(1);
        self.regions.set(d);
        self.current.set(prev);
        if d == 0 && self.dirty.get() {
            self.flush();
        }
        self.open_lane();
    }

    /// Changes the current tag without entering a region.
    pub(super) fn replace_current(&self, tag: Tag) -> Tag {
        self.close_lane(0);
        let prev = self.current.replace(tag);
        self.open_lane();
        prev
    }

    /// The before-poll hook: task `task` (its raw id) of `tag` is being polled here.
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    #[inline(always)]
    pub(super) fn enter_poll(&self, task: u64, tag: Tag) {
        self.polling.set(task);
        // A new poll forgets an earlier poll's panic.
        self.panicked.set(0);
        if self.depth.get() | self.regions.get() == 0 {
            // Outside every region the lane is closed, its budget and armed bytes 0.
            debug_assert!(
                self.lane.get() == CLOSED && self.budget.get() == 0 && self.armed.get() == 0
            );
            self.regions.set(1);
            self.current.set(tag);
            self.arm_lane();
        } else {
            self.enter_scope(tag);
        }
    }

    /// The after-poll hook: the poll ended; the thread's tag is none again, and leaving the
    /// outermost region flushes.
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    #[inline(always)]
    pub(super) fn leave_poll(&self) {
        self.polling.set(0);
        self.panicked.set(0);
        if self.depth.get() == 0 && self.regions.get() == 1 {
            self.close_lane(0);
            self.regions.set(0);
            self.current.set(Tag::NONE);
            if self.dirty.get() {
                self.flush();
            }
        } else {
            self.leave_scope(Tag::NONE);
        }
    }
}

/// Makes `tag` the current tag without entering a region (its counts are not batched, so
/// code that may never return, a blocking task parked for good, strands none); returns the
/// previous tag.
#[inline]
pub(crate) fn replace_current(tag: Tag) -> Tag {
    CACHE
        .try_with(|c| c.replace_current(tag))
        .unwrap_or(Tag::NONE)
}

/// Enters a region as `tag` (counts are batched until the outermost region is left);
/// returns the tag to pass to [`leave_scope`].
#[inline]
pub(crate) fn enter_scope(tag: Tag) -> Tag {
    CACHE.try_with(|c| c.enter_scope(tag)).unwrap_or(Tag::NONE)
}

/// Leaves a region, restoring `prev`; leaving the outermost one flushes this thread's counts.
#[inline]
pub(crate) fn leave_scope(prev: Tag) {
    let _ = CACHE.try_with(|c| c.leave_scope(prev));
}

/// Enters task `task`'s poll as `tag` (the before-poll hook).
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub(crate) fn enter_poll(task: u64, tag: Tag) {
    let _ = CACHE.try_with(|c| c.enter_poll(task, tag));
}

/// Leaves the poll (the after-poll hook): its batched counts are flushed.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub(crate) fn leave_poll() {
    let _ = CACHE.try_with(Cache::leave_poll);
}

/// The raw id of the task being polled here (0 outside a poll).
#[inline]
pub(crate) fn polling() -> u64 {
    CACHE.try_with(|c| c.polling.get()).unwrap_or(0)
}

/// Sets the task being polled here without entering a region (a blocking task's span); a new
/// poll forgets an earlier poll's panic.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub(crate) fn set_polling(task: u64) {
    let _ = CACHE.try_with(|c| {
        c.polling.set(task);
        c.panicked.set(0);
    });
}

/// The task being polled here panicked.
pub(crate) fn mark_panicked_poll() {
    let _ = CACHE.try_with(|c| c.panicked.set(c.polling.get()));
}

/// The task whose poll panicked here (0: none), taken.
pub(crate) fn take_panicked() -> u64 {
    CACHE.try_with(|c| c.panicked.replace(0)).unwrap_or(0)
}
