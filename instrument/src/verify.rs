//! Orphan assertions for tests, in the spirit of Go's `goleak.VerifyNone`.

use std::fmt;
use std::time::Duration;

use crate::snapshot::{ConnState, ConnectionInfo, Snapshot, TaskInfo, TaskState};

/// Fails (panics) if a task outlived its connection, like Go's `goleak.VerifyNone`.
///
/// It first waits (up to the grace period plus 5 s) for every connection to be closed — a
/// connection still open at the timeout fails with "close never seen" (a socket nobody reads,
/// or a client that did not close) — and for their tasks to end. It fails as soon as a verdict
/// is final (a task alive past its connection's close plus the grace period), and passes as
/// soon as every connection is closed with no task left that could become an orphan. It
/// uses `tokio::time::sleep`, so the runtime keeps running meanwhile. The panic names the
/// caller's line.
///
/// ```no_run
/// # async fn t() {
/// // ... drive connections, close them ...
/// leakscope::assert_no_orphans().await;
/// # }
/// ```
///
/// For tests that run in parallel in one process, judge only your own connections:
/// `Verify::since(leakscope::Mark::now())` taken at the start of the test. With the
/// `enabled` feature off it checks nothing and says so on stderr.
#[track_caller]
pub fn assert_no_orphans() -> impl std::future::Future<Output = ()> {
    Verify::new().assert()
}

/// Where a test starts: the connections opened from here on, by this tokio runtime. See
/// [`Verify::since`]. Without `--cfg tokio_unstable` tokio cannot name a runtime: the mark
/// then covers every connection opened after it, also by tests running in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    first_id: u64,
    runtime: Option<u64>,
}

impl Mark {
    /// Marks now: later connections opened by code on the current runtime belong to it.
    pub fn now() -> Mark {
        #[cfg(feature = "enabled")]
        {
            Mark {
                first_id: crate::summary(0).totals.connections_opened + 1,
                runtime: crate::wrap::live::runtime_id(),
            }
        }
        #[cfg(not(feature = "enabled"))]
        Mark {
            first_id: 0,
            runtime: None,
        }
    }

    fn covers(&self, c: &ConnectionInfo) -> bool {
        c.id >= self.first_id
            && match (self.runtime, c.runtime_id) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }
}

/// A configurable orphan check.
#[derive(Debug, Clone, Default)]
pub struct Verify {
    timeout: Option<Duration>,
    include_open: bool,
    allow_open: bool,
    routes: bool,
    since: Option<Mark>,
    ignore_locations: Vec<String>,
    ignore_labels: Vec<String>,
}

/// What one look at the snapshot found.
struct Look {
    /// Final verdicts: orphans.
    orphans: Vec<TaskInfo>,
    /// Tasks of closed connections still within their grace period.
    winding_down: Vec<TaskInfo>,
    /// Connections still open (close not seen yet).
    open: Vec<ConnectionInfo>,
    /// Alive tasks of open connections (`include_open`).
    of_open: Vec<TaskInfo>,
    /// Orphans of connections folded into the totals (not listed).
    folded_orphans: u64,
    /// Routes with a slow-leak verdict (`routes`).
    slow_routes: Vec<crate::snapshot::RouteInfo>,
    /// Whether `of_open` counts.
    include_open: bool,
}

impl Verify {
    /// Defaults: judge every connection; wait up to the grace period plus 5 s for them to
    /// close and for their tasks to end.
    pub fn new() -> Self {
        Verify::default()
    }

    /// Judges only the connections opened since `mark` on the mark's runtime: tests running
    /// in parallel in one process do not see each other's connections.
    pub fn since(mark: Mark) -> Self {
        Verify {
            since: Some(mark),
            ..Verify::default()
        }
    }

    /// Waits at most this long (default: the grace period plus 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Also fails on alive tasks of connections that are still open at the timeout.
    pub fn include_open(mut self, yes: bool) -> Self {
        self.include_open = yes;
        self
    }

    /// Does not wait for open connections to close, nor fail because they did not (for a
    /// test that keeps a connection open on purpose).
    pub fn allow_open(mut self, yes: bool) -> Self {
        self.allow_open = yes;
        self
    }

    /// Ignores tasks whose spawn location contains `fragment` (like goleak's
    /// `IgnoreTopFunction`), e.g. a library's global task started by the first connection.
    pub fn ignore_location(mut self, fragment: impl Into<String>) -> Self {
        self.ignore_locations.push(fragment.into());
        self
    }

    /// Also fails on a route whose closed connections keep retaining bytes as a group (a slow
    /// leak: `Snapshot::routes`, verdict `leak`) among the routes of the judged connections.
    pub fn routes(mut self, yes: bool) -> Self {
        self.routes = yes;
        self
    }

    /// Ignores connections whose label equals `label`.
    pub fn ignore_label(mut self, label: impl Into<String>) -> Self {
        self.ignore_labels.push(label.into());
        self
    }

    /// Runs the check and panics with the report on failure, naming the caller's line.
    #[track_caller]
    pub fn assert(self) -> impl std::future::Future<Output = ()> {
        let caller = std::panic::Location::caller();
        async move {
            if let Err(report) = self.check().await {
                panic!("leakscope check at {caller} failed:\n{report}");
            }
        }
    }

    /// Runs the check.
    pub async fn check(self) -> Result<(), OrphanReport> {
        if !crate::ENABLED {
            eprintln!("leakscope: the `enabled` feature is off; assert_no_orphans checked nothing");
            return Ok(());
        }
        let grace = Duration::from_millis(crate::config().grace.as_millis() as u64);
        let timeout = self.timeout.unwrap_or(grace + Duration::from_secs(5));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Duration::from_millis(10);
        loop {
            let snap = crate::snapshot();
            let look = self.look(&snap);
            if !look.orphans.is_empty() || look.folded_orphans > 0 || !look.slow_routes.is_empty() {
                return Err(OrphanReport::new(&snap, look));
            }
            let open_fails = self.include_open && !look.of_open.is_empty();
            if look.winding_down.is_empty() && look.open.is_empty() && !open_fails {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(OrphanReport::new(&snap, look));
            }
            tokio::time::sleep(backoff.min(deadline - now)).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    fn ignored_task(&self, t: &TaskInfo) -> bool {
        t.state != TaskState::Alive
            || t.detached
            || t.shared
            || self
                .ignore_locations
                .iter()
                .any(|f| t.spawned_at.contains(f.as_str()))
    }

    fn look(&self, snap: &Snapshot) -> Look {
        let judged = |c: &ConnectionInfo| {
            self.since.is_none_or(|m| m.covers(c))
                && !self.ignore_labels.iter().any(|l| *l == c.label)
        };
        let mut look = Look {
            orphans: Vec::new(),
            winding_down: Vec::new(),
            open: Vec::new(),
            of_open: Vec::new(),
            folded_orphans: 0,
            slow_routes: Vec::new(),
            include_open: self.include_open,
        };
        for c in snap.connections.iter().filter(|c| judged(c)) {
            if c.state == ConnState::Open && !self.allow_open {
                look.open.push(c.clone());
            }
        }
        for t in snap.tasks.iter().filter(|t| !self.ignored_task(t)) {
            let Some(c) = snap.connection(t.conn_id).filter(|c| judged(c)) else {
                continue;
            };
            match (c.state, t.orphan) {
                (ConnState::Open, _) => look.of_open.push(t.clone()),
                (ConnState::Closed, true) => look.orphans.push(t.clone()),
                (ConnState::Closed, false) => look.winding_down.push(t.clone()),
            }
        }
        if self.routes {
            let mine = |label: &str| {
                snap.connections
                    .iter()
                    .any(|c| judged(c) && c.label == label)
            };
            look.slow_routes = snap
                .routes
                .iter()
                .filter(|r| r.verdict == crate::snapshot::Verdict::Leak && mine(&r.label))
                .cloned()
                .collect();
        }
        if self.since.is_none() && self.ignore_locations.is_empty() && self.ignore_labels.is_empty()
        {
            let listed = snap.orphans().count() as u64;
            look.folded_orphans = snap.totals.orphan_tasks.saturating_sub(listed);
        }
        look
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
    fn new(snap: &Snapshot, look: Look) -> Self {
        let mut tasks = look.orphans;
        tasks.extend(look.winding_down);
        tasks.extend(look.of_open.into_iter().filter(|_| look.include_open));
        let mut lines: Vec<String> = tasks
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
        for c in &look.open {
            lines.push(format!(
                "connection {} {:?} (peer {}): close never seen — the client did not close it, \
                 or nobody reads its socket ({} live tasks)",
                c.id,
                c.label,
                c.peer.as_deref().unwrap_or("-"),
                c.live_tasks
            ));
        }
        for r in &look.slow_routes {
            lines.push(format!(
                "route {:?}: a slow leak, {} of its closed connections still retain {} B each \
                 ({} B in all)",
                r.label, r.connections_retaining, r.retained_bytes_per_connection, r.retained_bytes
            ));
        }
        if look.folded_orphans > 0 {
            lines.push(format!(
                "{} orphan task(s) of connections whose details were folded into the totals \
                 (beyond max_leaking_connections)",
                look.folded_orphans
            ));
        }
        OrphanReport { lines, tasks }
    }
}

impl fmt::Display for OrphanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "leakscope: {} finding(s): tasks that outlived their connection, or connections \
             never seen closing:",
            self.lines.len()
        )?;
        for l in &self.lines {
            writeln!(f, "  - {l}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OrphanReport {}
