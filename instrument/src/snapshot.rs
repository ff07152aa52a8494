//! The snapshot: plain data describing every tracked connection and task.
//!
//! These types are the public JSON contract of `GET /api/snapshot`. Field names never change;
//! new fields may be added (the structs are `#[non_exhaustive]`).

mod events;
mod fixes;
mod read;
mod shared;
mod verdicts;

use serde::{Deserialize, Serialize};

pub use events::LogEvent;
#[cfg(feature = "enabled")]
pub(crate) use fixes::fill as fill_fixes;
pub use fixes::{FixHint, FixPattern, pattern_of_trace};
pub use shared::SharedStr;
pub use verdicts::{AllocationSite, RouteInfo, Signature, SignatureKind, Verdict};

/// Which tracking mode is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// tokio's runtime hooks tag every task spawned while a connection's code runs.
    Hooks,
    /// Only tasks spawned with [`crate::spawn`] are tagged (no `--cfg tokio_unstable`, or the
    /// runtime was built without leakscope's hooks).
    ExplicitSpawn,
    /// The `enabled` feature is off: nothing is tracked.
    Disabled,
}

impl Mode {
    /// The mode as it appears in JSON (`"hooks"`, `"explicit-spawn"`, `"disabled"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hooks => "hooks",
            Mode::ExplicitSpawn => "explicit-spawn",
            Mode::Disabled => "disabled",
        }
    }

    /// What this mode cannot see, in one sentence for humans.
    pub fn limits(self) -> &'static str {
        match self {
            Mode::Hooks => {
                "Sees every task spawned while a connection's code runs, except LocalSet tasks \
                 (tokio runs no hooks for them) and a plain tokio::task::spawn_blocking without \
                 leakscope::layer() in the tracing subscriber."
            }
            Mode::ExplicitSpawn => {
                "Sees only tasks spawned with leakscope::spawn; plain tokio::spawn (also inside \
                 third-party code such as axum's upgrade task) is invisible. Build with \
                 RUSTFLAGS=\"--cfg tokio_unstable\" and leakscope::runtime() for full tracking."
            }
            Mode::Disabled => "The leakscope `enabled` feature is off: nothing is tracked.",
        }
    }
}

/// Whether a connection's socket is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnState {
    /// The socket is open.
    Open,
    /// The socket closed (close frame, EOF, error, or every half dropped).
    Closed,
}

/// Whether a task is still alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Spawned and not yet ended.
    Alive,
    /// Ended (see [`EndedBy`]).
    Ended,
}

/// What kind of task: an async task or a `spawn_blocking` closure. JSON: `"async"`,
/// `"blocking"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// A future polled by the runtime.
    Async,
    /// A closure on tokio's blocking pool.
    Blocking,
}

impl TaskKind {
    /// The name as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Async => "async",
            TaskKind::Blocking => "blocking",
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for TaskKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndedBy {
    /// Its future returned.
    Completed,
    /// It was aborted (`JoinHandle::abort`, a dropped `JoinSet`, ...).
    Aborted,
    /// Its future panicked.
    Panicked,
    /// It was still pending when the runtime shut down.
    Shutdown,
}

impl EndedBy {
    /// The name as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Completed => "completed",
            EndedBy::Aborted => "aborted",
            EndedBy::Panicked => "panicked",
            EndedBy::Shutdown => "shutdown",
        }
    }
}

/// Everything leakscope knows, at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The active tracking mode.
    pub mode: Mode,
    /// What the active mode cannot see.
    pub mode_limits: String,
    /// The grace period after a socket closes before its live tasks count as orphans.
    pub grace_ms: u64,
    /// Bytes a closed connection may keep live before it is flagged as leaking memory.
    pub retained_bytes_threshold: u64,
    /// When this snapshot was taken (Unix milliseconds).
    pub taken_at_ms: u64,
    /// Tracked connections, newest first.
    pub connections: Vec<ConnectionInfo>,
    /// Tracked tasks (alive ones always; a bounded number of ended ones per connection).
    pub tasks: Vec<TaskInfo>,
    /// Exact counts since start, including evicted connections.
    pub totals: Totals,
    /// Heap totals (all zero until the tracking allocator is installed).
    pub heap: HeapTotals,
    /// Misconfigurations and dropped data, in words.
    pub warnings: Vec<String>,
    /// Connections that can be tracked at once (open, in grace, or kept closed); beyond it new
    /// connections are counted in `totals.connections_untracked` and a warning says so.
    #[serde(default)]
    pub max_tracked_connections: u64,
    /// Orphans grouped by the code that leaks them and the route, leaks first, largest first.
    #[serde(default)]
    pub signatures: Vec<Signature>,
    /// Per route: its closed connections and whether they keep retaining bytes as a group.
    #[serde(default)]
    pub routes: Vec<RouteInfo>,
}

/// One connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// leakscope's connection id (process-wide, never reused).
    pub id: u64,
    /// The route or listener name (shared by the rows of a route, like a task's name).
    pub label: SharedStr,
    /// The peer address, when known.
    pub peer: Option<SharedStr>,
    /// Open or closed.
    pub state: ConnState,
    /// When the connection opened (Unix milliseconds).
    pub opened_at_ms: u64,
    /// When its socket closed (Unix milliseconds), if it has.
    pub closed_at_ms: Option<u64>,
    /// What closed it, one of: "close frame received", "close frame sent", "closed", "read EOF",
    /// "read error", "write error", "stream ended", "shutdown", "socket dropped",
    /// "every handle dropped", "scope ended", "closed by the application",
    /// "peer left, never read" (a zombie) (or the reason given to `Connection::close_because`).
    pub close_reason: Option<SharedStr>,
    /// Tasks of this connection still alive.
    pub live_tasks: u64,
    /// Alive tasks that outlived the socket by more than the grace period.
    pub orphan_tasks: u64,
    /// Tasks spawned for this connection, in total.
    pub tasks_spawned: u64,
    /// Bytes allocated by this connection and not yet freed.
    pub live_bytes: u64,
    /// Live bytes of a closed connection whose grace period has passed.
    pub retained_bytes: u64,
    /// Bytes allocated in total.
    pub allocated_bytes: u64,
    /// Bytes freed in total.
    pub freed_bytes: u64,
    /// Blocks allocated and not yet freed.
    pub live_blocks: u64,
    /// Whether its retained bytes exceed the threshold.
    pub leaking_memory: bool,
    /// The tokio runtime whose code opened it (`None` without `--cfg tokio_unstable`):
    /// lets a test judge only the connections its own runtime opened.
    #[serde(default)]
    pub runtime_id: Option<u64>,
    /// Where its live bytes were allocated, largest first (estimated from sampled
    /// allocations): filled for a connection looked up alone (`connection_snapshot`) and for
    /// connections leaking memory in a full snapshot; empty otherwise.
    #[serde(default)]
    pub allocation_sites: Vec<AllocationSite>,
    /// Its peer left (FIN or RST) while nobody read the socket: a *zombie*, closed for the
    /// orphan rule from `zombie_since_ms` (needs leakscope to hold the TCP socket: the `serve`
    /// listener wrapper or `io::track`, on Linux).
    #[serde(default)]
    pub zombie: bool,
    /// When its peer's close was first seen unread (Unix ms).
    #[serde(default)]
    pub zombie_since_ms: Option<u64>,
    /// When its socket was last polled for reading (Unix ms, within 10 ms), or when watching
    /// started; `None` when no wrapper sees its reads.
    #[serde(default)]
    pub last_read_ms: Option<u64>,
    /// Set on an open connection with live tasks whose socket nobody has been reading (no
    /// reader waiting on it) for at least `unread_hint`: how long. Its peer may be gone while
    /// a task holds the socket (where leakscope cannot see the kernel's view of it).
    #[serde(default)]
    pub not_read_for_ms: Option<u64>,
    /// The last `tracing` events its code emitted, oldest first (with [`crate::layer`]
    /// installed; at most `events_per_connection`): filled like `allocation_sites`, for a
    /// connection looked up alone and for leaking connections in a full snapshot.
    #[serde(default)]
    pub events: Vec<LogEvent>,
    /// Events emitted before those, no longer kept (the ring holds the last ones only).
    #[serde(default)]
    pub events_dropped: u64,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskInfo {
    /// tokio's task id: the number tokio-console shows.
    pub id: u64,
    /// The connection it belongs to.
    pub conn_id: u64,
    /// `conn=<id> <name>`: the name given to [`crate::spawn_named`], or the spawn location.
    /// Shared by the rows of one connection with the same name.
    pub name: SharedStr,
    /// `file:line:col` of the spawn call, shared by the rows of the same call site.
    pub spawned_at: SharedStr,
    /// Alive or ended.
    pub state: TaskState,
    /// How it ended, once it has.
    pub ended_by: Option<EndedBy>,
    /// Whether `ended_by` is certain. In `hooks` mode tokio does not tell whether a plain
    /// `tokio::spawn`ed task returned or was aborted: both show as `completed` with this
    /// `false`. Tasks spawned with [`crate::spawn`] & co. are always exact.
    pub ended_by_exact: Option<bool>,
    /// When it was spawned (Unix milliseconds).
    pub spawned_at_ms: u64,
    /// When it ended (Unix milliseconds).
    pub ended_at_ms: Option<u64>,
    /// Alive past its connection's close plus the grace period.
    pub orphan: bool,
    /// How long it has outlived (or outlived) its socket's close, in milliseconds.
    pub outlived_close_ms: Option<u64>,
    /// Declared at spawn to outlive its connection ([`crate::spawn_detached`]); never an orphan.
    pub detached: bool,
    /// `"async"` or `"blocking"`.
    pub kind: TaskKind,
    /// Alive past its connection's grace period, but a global started lazily by that
    /// connection (see [`Verdict::Shared`]): not an orphan.
    #[serde(default)]
    pub shared: bool,
    /// Polls so far (alive tasks the runtime hooks see; `None` otherwise).
    #[serde(default)]
    pub polls: Option<u64>,
    /// Polls since its connection closed: 0 for an orphan *parked* since the close (waiting on
    /// something that will never come), more for one *still running* (a loop that ticks). A
    /// first poll made after the close (a task spawned just before it) is not counted.
    #[serde(default)]
    pub polls_since_close: Option<u64>,
    /// When it was last polled (Unix ms, within 10 ms).
    #[serde(default)]
    pub last_poll_ms: Option<u64>,
}

/// Exact counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Totals {
    /// Connections opened.
    pub connections_opened: u64,
    /// Connections whose socket closed.
    pub connections_closed: u64,
    /// Tasks tagged with a connection.
    pub tasks_spawned: u64,
    /// Tasks that are orphans right now (also those of evicted connections).
    pub orphan_tasks: u64,
    /// Tagged tasks alive right now.
    pub live_tasks: u64,
    /// Connections open right now.
    pub open_connections: u64,
    /// Connections whose details were evicted (their counts stay in these totals).
    pub connections_evicted: u64,
    /// Connections opened but not tracked because every slot was in use.
    pub connections_untracked: u64,
    /// Connections flagged as leaking memory: listed ones right now, plus those folded into
    /// the totals while retaining more than the threshold.
    pub connections_leaking_memory: u64,
    /// Connections forgotten as the tool's own traffic while open ([`crate::Connection::ignore`]):
    /// `connections_opened = open_connections + connections_closed + connections_ignored`.
    #[serde(default)]
    pub connections_ignored: u64,
    /// Leaking connections (orphan tasks or retained bytes over the threshold): the listed ones
    /// right now plus `connections_folded_leaking`.
    #[serde(default)]
    pub connections_leaking: u64,
    /// Leaking connections whose details were folded into these totals (beyond
    /// `max_leaking_connections`), counted by their verdict when they were folded.
    #[serde(default)]
    pub connections_folded_leaking: u64,
    /// Tagged tasks that ended: `tasks_spawned = live_tasks + tasks_ended`.
    #[serde(default)]
    pub tasks_ended: u64,
    /// Tasks alive past their connection's grace period that are shared globals, not orphans.
    #[serde(default)]
    pub shared_tasks: u64,
    /// Routes whose closed connections keep retaining bytes as a group (`routes[].verdict`).
    #[serde(default)]
    pub routes_leaking: u64,
    /// Listed connections closed as zombies (`connections[].zombie`).
    #[serde(default)]
    pub zombie_connections: u64,
}

/// Heap totals from the tracking allocator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HeapTotals {
    /// Whether `TrackingAlloc` is the global allocator and tracking.
    pub tracking: bool,
    /// Live bytes charged to connections.
    pub connection_live_bytes: u64,
    /// Retained bytes of closed connections.
    pub retained_bytes: u64,
    /// Live bytes not charged to any connection.
    pub untagged_live_bytes: u64,
    /// Live bytes whose connection was evicted.
    pub evicted_live_bytes: u64,
    /// Mean bytes between two sampled allocations (0: sampling off).
    #[serde(default)]
    pub sample_bytes: u64,
    /// Live sampled allocations (each keeps its owner and call stack, about 300 bytes).
    #[serde(default)]
    pub live_samples: u64,
    /// Samples not kept because the sample table was full.
    #[serde(default)]
    pub samples_dropped: u64,
}

/// Whose live bytes a heap profile ([`crate::heap_profile`]) shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileOf {
    /// Every sampled live block of the process.
    Process,
    /// One connection's (by id).
    Connection(u64),
    /// The listed connections of one route (label).
    Route(String),
}
