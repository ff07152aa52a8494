//! One definition of how a row reads: a red connection, a task's state and what it has done
//! since its connection closed, in the words every view (dashboard, reports, tests) uses; and
//! the snapshot's own lookups.

use super::{ConnectionInfo, HeapTotals, Mode, Snapshot, TaskInfo, TaskState, Totals};

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

impl Snapshot {
    /// An empty snapshot in the given mode.
    pub fn empty(mode: Mode, grace_ms: u64) -> Self {
        Snapshot {
            mode,
            mode_limits: mode.limits().to_owned(),
            grace_ms,
            retained_bytes_threshold: 0,
            taken_at_ms: crate::clock::now_ms(),
            connections: Vec::new(),
            tasks: Vec::new(),
            totals: Totals::default(),
            heap: HeapTotals::default(),
            warnings: Vec::new(),
            max_tracked_connections: 0,
            signatures: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// The orphan tasks, oldest close first.
    pub fn orphans(&self) -> impl Iterator<Item = &TaskInfo> {
        self.tasks.iter().filter(|t| t.orphan)
    }

    /// The connection with this id, if still tracked.
    pub fn connection(&self, id: u64) -> Option<&ConnectionInfo> {
        self.connections.iter().find(|c| c.id == id)
    }

    /// The tasks of one connection.
    pub fn tasks_of(&self, conn_id: u64) -> impl Iterator<Item = &TaskInfo> {
        self.tasks.iter().filter(move |t| t.conn_id == conn_id)
    }
}
