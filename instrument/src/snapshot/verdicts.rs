//! Verdicts above single connections: leak signatures (which code leaks, on which route, how
//! often) and per-route slow leaks. Part of the snapshot's JSON contract (add-only).

use serde::{Deserialize, Serialize};

/// What a signature groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureKind {
    /// Orphan tasks spawned at one site.
    Task,
    /// Retained bytes allocated at one site.
    Bytes,
}

/// A signature's or a route's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Leaks per connection: fix it.
    Leak,
    /// A global started by one connection (a library's reaper, a client's idle task): not a
    /// per-connection leak, not counted as orphans.
    Shared,
    /// Nothing leaks (routes).
    Ok,
}

/// Orphans (or retained bytes) grouped by the code that caused them and the route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Signature {
    /// `"task"` or `"bytes"`.
    pub kind: SignatureKind,
    /// `file:line:col` of the spawn (or allocation) site.
    pub site: String,
    /// The route (connection label).
    pub label: String,
    /// `"leak"` or `"shared"`.
    pub verdict: Verdict,
    /// Connections of the route that leaked from this site, since start.
    pub connections_leaked: u64,
    /// Connections of the route judged (closed, grace passed), since start.
    pub connections_closed: u64,
    /// Tasks from this site alive past their connection's grace period now (orphans, or shared).
    pub orphan_tasks: u64,
    /// Retained bytes of the listed connections that leaked from this site.
    pub retained_bytes: u64,
    /// `retained_bytes` per listed connection that leaked from this site.
    pub bytes_per_connection: u64,
    /// When the first connection that leaked from this site was judged (Unix ms).
    pub first_seen_ms: u64,
    /// When the last one was (Unix ms).
    pub last_seen_ms: u64,
    /// The first connection that leaked from this site ("started by connection N" for a
    /// shared task).
    pub started_by: Option<u64>,
    /// For a leak: its likely pattern and the section of `docs/fixes.md` with the fix.
    #[serde(default)]
    pub fix: Option<super::FixHint>,
}

/// One route's closed connections, and whether they keep bytes alive as a group: a slow leak
/// (a few KiB kept per connection, each below the per-connection threshold) shows here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RouteInfo {
    /// The route (connection label).
    pub label: String,
    /// Connections of the route judged (closed, grace passed), since start.
    pub connections_closed: u64,
    /// Of the listed judged connections of the route, those still retaining bytes.
    pub connections_retaining: u64,
    /// Bytes the listed judged connections of the route retain.
    pub retained_bytes: u64,
    /// `retained_bytes` per listed judged connection.
    pub retained_bytes_per_connection: u64,
    /// `"leak"` when the route's closed connections keep retaining (see the rule in the README),
    /// `"ok"` otherwise.
    pub verdict: Verdict,
}

/// Where some of a connection's live bytes were allocated, from sampled allocations (see
/// `LEAKSCOPE_SAMPLE_BYTES`): the first frame that is neither leakscope's, the standard
/// library's nor the allocator's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AllocationSite {
    /// `file:line`.
    pub site: String,
    /// The function.
    pub function: String,
    /// Estimated live bytes allocated there (sum of the samples' weights).
    pub bytes: u64,
    /// Live samples behind the estimate.
    pub samples: u64,
}
