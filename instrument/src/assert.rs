//! Orphan assertions for tests, in the spirit of Go's `goleak.VerifyNone`.

use std::fmt;
use std::time::Duration;

use crate::snapshot::{Snapshot, TaskInfo, TaskState};

/// Fails (panics) if a task of a closed connection is still alive once the grace period has
/// passed, listing each one with its connection, label and spawn location. Retries with
/// backoff (10 ms doubling to 100 ms) while tasks are still winding down, for at most the
/// grace period; uses `tokio::time::sleep`, so the runtime keeps running meanwhile.
///
/// ```no_run
/// # async fn t() {
/// // ... drive connections, close them ...
/// leakscope::assert_no_orphans().await;
/// # }
/// ```
///
/// With the `enabled` feature off it checks nothing and says so on stderr.
#[track_caller]
pub fn assert_no_orphans() -> impl std::future::Future<Output = ()> {
    let caller = std::panic::Location::caller();
    async move {
        if let Err(report) = Verify::new().check().await {
            panic!("{report}\n(assert_no_orphans at {caller})");
        }
    }
}

/// A configurable orphan check.
#[derive(Debug, Clone, Default)]
pub struct Verify {
    timeout: Option<Duration>,
    include_open: bool,
    ignore_locations: Vec<String>,
    ignore_labels: Vec<String>,
}

impl Verify {
    /// Defaults: wait up to the configured grace period; open connections are not checked.
    pub fn new() -> Self {
        Verify::default()
    }

    /// Waits at most this long for tasks to end (default: the grace period).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Also fails on alive tasks of connections that are still open.
    pub fn include_open(mut self, yes: bool) -> Self {
        self.include_open = yes;
        self
    }

    /// Ignores tasks whose spawn location contains `fragment` (like goleak's
    /// `IgnoreTopFunction`).
    pub fn ignore_location(mut self, fragment: impl Into<String>) -> Self {
        self.ignore_locations.push(fragment.into());
        self
    }

    /// Ignores connections whose label equals `label`.
    pub fn ignore_label(mut self, label: impl Into<String>) -> Self {
        self.ignore_labels.push(label.into());
        self
    }

    /// Runs the check.
    pub async fn check(self) -> Result<(), OrphanReport> {
        if !crate::ENABLED {
            eprintln!("leakscope: the `enabled` feature is off; assert_no_orphans checked nothing");
            return Ok(());
        }
        let snap = crate::snapshot();
        let timeout = self.timeout.unwrap_or(Duration::from_millis(snap.grace_ms));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Duration::from_millis(10);
        loop {
            let snap = crate::snapshot();
            let found = self.suspects(&snap);
            if found.is_empty() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(OrphanReport::new(&snap, found));
            }
            tokio::time::sleep(backoff.min(deadline - now)).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    fn suspects(&self, snap: &Snapshot) -> Vec<TaskInfo> {
        snap.tasks
            .iter()
            .filter(|t| t.state == TaskState::Alive && !t.detached)
            .filter(|t| {
                !self
                    .ignore_locations
                    .iter()
                    .any(|f| t.spawned_at.contains(f.as_str()))
            })
            .filter(|t| match snap.connection(t.conn_id) {
                Some(c) => {
                    (self.include_open || c.closed_at_ms.is_some())
                        && !self.ignore_labels.contains(&c.label)
                }
                None => true,
            })
            .cloned()
            .collect()
    }
}

/// The tasks that outlived their connections, ready to print.
#[derive(Debug, Clone)]
pub struct OrphanReport {
    /// One line per task.
    pub lines: Vec<String>,
    /// The tasks.
    pub tasks: Vec<TaskInfo>,
}

impl OrphanReport {
    fn new(snap: &Snapshot, tasks: Vec<TaskInfo>) -> Self {
        let lines = tasks
            .iter()
            .map(|t| {
                let conn = snap.connection(t.conn_id);
                let label = conn.map_or("?", |c| c.label.as_str());
                let peer = conn.and_then(|c| c.peer.as_deref()).unwrap_or("-");
                let outlived = match t.outlived_close_ms {
                    Some(ms) => format!("alive {:.1} s after its socket closed", ms as f64 / 1e3),
                    None => "its connection is still open".to_owned(),
                };
                format!(
                    "task {} `{}` of connection {} {:?} (peer {}), spawned at {}: {}",
                    t.id, t.name, t.conn_id, label, peer, t.spawned_at, outlived
                )
            })
            .collect();
        OrphanReport { lines, tasks }
    }
}

impl fmt::Display for OrphanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "leakscope: {} task(s) outlived their connection:",
            self.lines.len()
        )?;
        for l in &self.lines {
            writeln!(f, "  - {l}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OrphanReport {}
