//! leakscope: which tasks and which bytes outlived the connection that created them.
//!
//! Wrap a socket handler in one line and leakscope opens a *connection scope*: every task
//! spawned while it runs (plain `tokio::spawn` in third-party code and grandchildren included)
//! and every byte allocated by its code is tagged with the connection. A task still alive a
//! grace period after its socket closed is an **orphan**; bytes still live then are
//! **retained**. [`snapshot`] returns it all as plain data; the `leakscope-dashboard` crate
//! shows it live in a browser.
//!
//! Everything is behind the `enabled` feature, off by default: off, every wrapper is a
//! pass-through and nothing runs. See the repository README for adoption.
//!
//! Modes ([`Mode`]):
//! - `hooks` — built with `--cfg tokio_unstable` and a runtime from [`runtime`] /
//!   [`RuntimeBuilderExt::leakscope`]: every task is seen.
//! - `explicit-spawn` — otherwise: only tasks spawned with [`spawn`], [`spawn_named`],
//!   [`spawn_detached`] and [`spawn_blocking`] are.
//! - `disabled` — the feature is off.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The data flow, one folder per step: wrap -> tag -> heap -> collect -> show.
#[cfg(feature = "enabled")]
mod collector;
mod heap;
mod peer;
mod show;
mod snapshot;
mod tag;
mod verify;
mod wrap;

mod clock;
mod config;
#[cfg(feature = "console")]
pub mod console;
#[cfg(feature = "enabled")]
mod ids;

#[cfg(feature = "axum")]
pub use wrap::axum;
pub use wrap::io;

pub use config::{Builder, Config, ConfigError};
pub use heap::TrackingAlloc;
#[doc(hidden)]
pub use heap::bench as alloc_bench;
pub use snapshot::{
    AllocationSite, ConnState, ConnectionInfo, EndedBy, FixHint, FixPattern, HeapTotals, LogEvent,
    Mode, ProfileOf, RouteInfo, SharedStr, Signature, SignatureKind, Snapshot, TaskInfo, TaskKind,
    TaskState, Totals, Verdict, pattern_of_trace,
};
pub use tag::hooks::{RuntimeBuilderExt, UserHooks, runtime};
pub use tag::layer::{Layer, layer};
pub use tag::spawn::{spawn, spawn_blocking, spawn_detached, spawn_named};
pub use verify::{Mark, OrphanReport, Verify, assert_no_orphans};
pub use wrap::conn::{Connection, Scoped, scope};

/// Whether the `enabled` feature is on (tracking compiled in).
pub const ENABLED: bool = cfg!(feature = "enabled");

/// The active mode.
pub fn mode() -> Mode {
    show::source().mode()
}

/// Everything leakscope knows now. Cheap enough to call every second; with the feature off it
/// is an empty snapshot in `disabled` mode.
pub fn snapshot() -> Snapshot {
    show::source().snapshot()
}

/// A cheap snapshot for samplers that run every second: exact `totals` and `heap`, and only
/// the `orphan_limit` longest-outlived orphan tasks with their connections. Its cost grows
/// with the number of connections, not of tasks.
pub fn summary(orphan_limit: usize) -> Snapshot {
    show::source().summary(orphan_limit)
}

/// Every listed connection, the routes, the signatures and exact totals, without task rows
/// (`tasks` is empty): what a metrics exporter needs (the dashboard's `/metrics` reads it).
/// Its cost grows with the number of connections, not of tasks.
///
/// ```
/// let s = leakscope::connections_snapshot();
/// assert!(s.tasks.is_empty());
/// let orphans_by_route = s.connections.iter().filter(|c| c.orphan_tasks > 0).count();
/// # let _ = orphans_by_route;
/// ```
pub fn connections_snapshot() -> Snapshot {
    show::source().connections()
}

/// One connection and its tasks (alive ones and the last ended ones), as a snapshot with
/// exact totals: a direct lookup that never walks every task. `None` if the connection is not
/// tracked (never existed, or evicted).
pub fn connection_snapshot(id: u64) -> Option<Snapshot> {
    show::source().connection(id)
}

/// One task and its connection, as a snapshot with exact totals: a direct lookup. `None` if the
/// task is not tracked.
pub fn task_snapshot(id: u64) -> Option<Snapshot> {
    show::source().task(id)
}

/// The sampled live heap of a connection, a route or the process, as a pprof profile
/// (`profile.proto`, uncompressed): `go tool pprof`, `pprof` and speedscope read it. Estimates
/// from sampled allocations (see `LEAKSCOPE_SAMPLE_BYTES`). `None` with the feature off or for
/// a connection that is not tracked.
pub fn heap_profile(of: ProfileOf) -> Option<Vec<u8>> {
    show::source().heap_profile(&of)
}

/// The effective configuration (defaults, environment, or what [`Builder::install`] set).
pub fn config() -> Config {
    show::source().config()
}

/// Runs `f` without charging its allocations or spawns to the current connection: for tools
/// (the dashboard) that run inside a tracked process.
pub fn untracked<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "enabled")]
    let _g = tag::untracked();
    f()
}

/// The snapshot's warnings (misconfigurations, dropped data, what the mode cannot see), for
/// printing at startup. Costs a summary, not a snapshot.
pub fn warnings() -> Vec<String> {
    summary(0).warnings
}
