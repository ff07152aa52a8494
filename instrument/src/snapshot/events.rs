//! A connection's own log lines: the last `tracing` events its code emitted.

use serde::{Deserialize, Serialize};

/// One `tracing` event emitted while a connection's code ran (its handler, its tasks, their
/// blocking tasks), kept with the connection by [`crate::layer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogEvent {
    /// When it was emitted (Unix milliseconds).
    pub at_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The event's target (by default its module path).
    pub target: String,
    /// Its message (cut at [`LogEvent::MAX_TEXT`] bytes, with `…`).
    pub message: String,
    /// Its other fields, `name=value` separated by spaces (cut the same way).
    pub fields: String,
    /// The id of the task that emitted it, when a task did (`None` in a blocking thread's
    /// code that is no task, or without `--cfg tokio_unstable`).
    #[serde(default)]
    pub task_id: Option<u64>,
}

impl LogEvent {
    /// The longest message or fields text kept, in bytes.
    pub const MAX_TEXT: usize = 256;
}
