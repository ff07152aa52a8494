//! Step 2, **tag**: which connection's code runs on this thread right now, and which task
//! belongs to which connection.
//!
//! - `context`: the thread's current tag and the per-poll markers the hooks leave;
//! - `hooks`: tokio's runtime hooks (spawn, poll, terminate) that carry the tag into every task;
//! - `task_table`: task id -> tag, read lock-free by the poll hooks;
//! - `spawn`: `leakscope::spawn*`, the wrapped task and its lifecycle.
//!
//! Imports run one way: this step uses `heap` (where the current tag lives, for the allocator)
//! and reaches the collector only through its events.

#[cfg(feature = "enabled")]
mod context;
pub(crate) mod hooks;
pub(crate) mod spawn;
#[cfg(feature = "enabled")]
pub(crate) mod task_table;

#[cfg(feature = "enabled")]
pub(crate) use context::*;
