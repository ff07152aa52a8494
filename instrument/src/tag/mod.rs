//! Step 2, **tag**: which connection's code runs on this thread right now, and which task
//! belongs to which connection.
//!
//! - `context`: the thread's current tag and the guard that sets it;
//! - `handoff`: every other per-thread hand-off (the task being polled, a panic, a pending
//!   spawn's name, an accepted connection);
//! - `hooks`: tokio's runtime hooks (spawn, poll, terminate) that carry the tag into every task;
//! - `task_table`: task id -> tag, read lock-free by the poll hooks;
//! - `spawn`: `leakscope::spawn*`, the wrapped task and its lifecycle;
//! - `explicit`: what only explicit-spawn mode needs (the task that reads a tracked socket);
//! - `layer`: the `tracing` layer that sees a plain `spawn_blocking` (no spawn hook fires).
//!
//! Imports run one way: this step uses `heap` (where the current tag lives, for the allocator)
//! and reaches the collector only through its events.

#[cfg(feature = "enabled")]
mod context;
#[cfg(feature = "enabled")]
pub(crate) mod explicit;
#[cfg(feature = "enabled")]
pub(crate) mod handoff;
pub(crate) mod hooks;
pub(crate) mod layer;
pub(crate) mod spawn;
#[cfg(feature = "enabled")]
pub(crate) mod task_table;

#[cfg(feature = "enabled")]
pub(crate) use context::*;
