//! Every per-thread hand-off of the tag step, in one place. Each is a `const`-initialised,
//! destructor-free thread-local read and written only on its own thread (the current tag
//! itself lives in `heap::batch`, for the allocator, and so do the two hand-offs every poll
//! writes, so that each poll hook computes one thread-local address):
//!
//! - **polling**: the task the poll hooks are polling on this thread (0 outside a poll);
//! - **panicked**: a task whose poll panicked here (set by the panic hook, or by a wrapped task
//!   that saw the panic unwind out of its future);
//! - **dropped early**: a wrapped task dropped before completing (abort), for its terminate hook;
//! - **pending spawn**: what the next spawn hook should record about the task
//!   `leakscope::spawn` is spawning (name, detached);
//! - **accepted**: a connection the listener wrapper just accepted, for the next task the
//!   accepting task spawns.

use std::cell::{Cell, RefCell};

use crate::collector::SpawnInfo;
use crate::heap::batch;
use crate::ids::{Tag, TaskId};

thread_local! {
    static DROPPED_EARLY: Cell<u64> = const { Cell::new(0) };
    static PENDING: RefCell<Option<SpawnInfo>> = const { RefCell::new(None) };
    static ACCEPTED: Cell<(u64, Tag)> = const { Cell::new((0, Tag::NONE)) };
}

fn raw(t: Option<TaskId>) -> u64 {
    t.map_or(0, |t| t.0)
}

fn task(raw: u64) -> Option<TaskId> {
    (raw != 0).then_some(TaskId(raw))
}

/// The task the poll hooks are polling on this thread, if any.
#[inline]
pub(crate) fn polling() -> Option<TaskId> {
    task(batch::polling())
}

/// Set by the before-poll hook (`Some`, through `batch::enter_poll`) and the after-poll hook
/// (`None`, `batch::leave_poll`), here by a blocking task's span; a new poll forgets an
/// earlier poll's panic.
#[cfg(tokio_unstable)]
#[inline]
pub(crate) fn set_polling(t: Option<TaskId>) {
    batch::set_polling(raw(t));
}

/// The task being polled here panicked.
pub(crate) fn mark_panicked_poll() {
    batch::mark_panicked_poll();
}

/// The task whose poll panicked here, taken.
pub(crate) fn take_panicked() -> Option<TaskId> {
    task(batch::take_panicked())
}

/// A wrapped task was dropped before completing.
pub(crate) fn mark_dropped_early(t: TaskId) {
    let _ = DROPPED_EARLY.try_with(|c| c.set(t.0));
}

/// The wrapped task dropped early here, taken.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn take_dropped_early() -> Option<TaskId> {
    task(DROPPED_EARLY.try_with(|c| c.replace(0)).unwrap_or(0))
}

/// What the next spawn hook on this thread should record.
pub(crate) fn set_pending(info: Option<SpawnInfo>) {
    let _ = PENDING.try_with(|p| *p.borrow_mut() = info);
}

/// Taken by the spawn hook.
pub(crate) fn take_pending() -> Option<SpawnInfo> {
    PENDING.try_with(|p| p.borrow_mut().take()).ok().flatten()
}

/// Clears the pending spawn info when dropped, also when the spawn panics, so a stale name or
/// `detached` flag never reaches the next spawn on this thread.
pub(crate) struct ClearPending;

impl Drop for ClearPending {
    fn drop(&mut self) {
        set_pending(None);
    }
}

/// Called by the listener wrapper as `accept` returns, in the accepting task.
pub(crate) fn set_accepted(tag: Tag) {
    let parent = raw(TaskId::current());
    let _ = ACCEPTED.try_with(|c| c.set((parent, tag)));
}

/// Called by the spawn hook when the spawning code is untagged: the accepted connection, if
/// the spawning task is the one that accepted it.
#[inline]
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) fn take_accepted_for_spawn() -> Tag {
    let pending = ACCEPTED.try_with(|c| c.get().1).unwrap_or(Tag::NONE);
    if pending.is_none() {
        return Tag::NONE;
    }
    let parent = raw(TaskId::current());
    ACCEPTED
        .try_with(|c| {
            let (owner, tag) = c.get();
            if owner == parent {
                c.set((0, Tag::NONE));
                tag
            } else {
                Tag::NONE
            }
        })
        .unwrap_or(Tag::NONE)
}
