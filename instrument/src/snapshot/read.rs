//! One definition of how a row reads: a red connection, a task's state and what it has done
//! since its connection closed, in the words every view (dashboard, reports, tests) uses.

use super::{ConnectionInfo, TaskInfo, TaskState};

impl ConnectionInfo {
    /// The one definition of a red row: a connection with orphan tasks, or one retaining more
    /// than the threshold past its grace period.
    pub fn is_leaking(&self) -> bool {
        self.orphan_tasks > 0 || self.leaking_memory
    }
}

impl TaskInfo {
    /// What an orphan (or any task of a closed connection) has done since the close, in words:
    /// `parked since close` (waiting on something that will never come: a channel, a
    /// oneshot, a `Notify`) or `still running: polled N times since close` (a loop that ticks).
    /// `None` when leakscope does not count its polls (explicit-spawn mode) or it is not alive.
    pub fn activity_text(&self) -> Option<String> {
        match self.polls_since_close? {
            0 => Some("parked since close".to_owned()),
            n => Some(format!("still running: polled {n} times since close")),
        }
    }

    /// The task's state in words, as every view shows it: `orphan`, `ended: <how>`,
    /// `alive (detached)` or `alive`.
    pub fn state_text(&self) -> String {
        match (self.orphan, self.state, self.ended_by) {
            (true, _, _) => "orphan".to_owned(),
            (false, TaskState::Ended, Some(by)) => format!("ended: {}", by.as_str()),
            (false, TaskState::Ended, None) => "ended".to_owned(),
            (false, _, _) if self.detached => "alive (detached)".to_owned(),
            _ => "alive".to_owned(),
        }
    }
}
