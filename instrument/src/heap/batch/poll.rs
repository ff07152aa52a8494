//! The poll hooks' region, entered and left once per task poll. A worker thread runs its polls
//! outside every other region, so the common case is a handful of plain stores: nothing to
//! close on entry (outside every region the lane is closed), and no lane to reopen on exit.
//! Anything else (a poll inside a region or a nested section: a runtime driven from connection
//! code) takes the general path, [`Cache::enter_scope`] and [`Cache::leave_scope`].
//!
//! The poll's hand-offs (the task being polled, a task whose poll panicked) live in the same
//! thread-local as the lane, so that each hook computes one thread-local address.

use super::{CACHE, CLOSED, Cache};
use crate::ids::Tag;

impl Cache {
    /// The before-poll hook: task `task` (its raw id) of `tag` is being polled here.
    #[inline(always)]
    pub(super) fn enter_poll(&self, task: u64, tag: Tag) {
        self.polling.set(task);
        // A new poll forgets an earlier poll's panic.
        self.panicked.set(0);
        if self.depth.get() | self.regions.get() == 0 {
            // Outside every region the lane is closed, its budget and armed bytes 0.
            debug_assert!(self.lane.get() == CLOSED && self.budget.get() == 0);
            self.regions.set(1);
            self.current.set(tag);
            self.arm_lane();
        } else {
            self.enter_scope(tag);
        }
    }

    /// The after-poll hook: the poll ended; the thread's tag is none again, and leaving the
    /// outermost region flushes.
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

/// Enters task `task`'s poll as `tag` (the before-poll hook).
#[inline]
pub(crate) fn enter_poll(task: u64, tag: Tag) {
    let _ = CACHE.try_with(|c| c.enter_poll(task, tag));
}

/// Leaves the poll (the after-poll hook): its batched counts are flushed.
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
