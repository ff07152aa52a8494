//! What one sample of leakscope becomes: a chart [`Point`] and the live summary, one line of
//! JSON that every open `GET /api/events` stream sends. Plain data from a
//! [`leakscope::Snapshot`]: the sampler builds both, the live stream only forwards the JSON.

use std::hash::{DefaultHasher, Hash, Hasher};

use leakscope::{HeapTotals, Snapshot, Totals};
use serde::Serialize;

use crate::view::{ORPHAN_ROWS, OrphanRow, orphan_rows};

/// One sample of the totals.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct Point {
    /// When the snapshot was taken (Unix milliseconds).
    pub t_ms: u64,
    pub open_connections: u64,
    pub live_tasks: u64,
    pub orphan_tasks: u64,
    pub live_bytes: u64,
    pub retained_bytes: u64,
}

impl Point {
    pub(crate) fn of(s: &Snapshot) -> Point {
        Point {
            t_ms: s.taken_at_ms,
            open_connections: s.totals.open_connections,
            live_tasks: s.totals.live_tasks,
            orphan_tasks: s.totals.orphan_tasks,
            live_bytes: s.heap.connection_live_bytes,
            retained_bytes: s.heap.retained_bytes,
        }
    }
}

/// The live summary.
#[derive(Serialize)]
struct Summary<'a> {
    /// When the snapshot was taken (Unix milliseconds).
    t: u64,
    /// Changes when the orphan rows (apart from their ages) or their count change.
    hash: String,
    mode: &'static str,
    mode_limits: &'a str,
    grace_ms: u64,
    totals: &'a Totals,
    heap: &'a HeapTotals,
    orphans: Vec<OrphanRow>,
    /// Orphan tasks with details in the snapshot (the rows are the first of them).
    orphans_listed: u64,
    point: Point,
    warnings: &'a [String],
}

/// The summary of one snapshot, as one line of JSON.
pub(crate) fn summary_json(s: &Snapshot, point: Point) -> Result<String, serde_json::Error> {
    let (orphans, listed) = orphan_rows(s, ORPHAN_ROWS);
    serde_json::to_string(&Summary {
        t: s.taken_at_ms,
        hash: rows_hash(&orphans, listed),
        mode: s.mode.as_str(),
        mode_limits: &s.mode_limits,
        grace_ms: s.grace_ms,
        totals: &s.totals,
        heap: &s.heap,
        orphans,
        orphans_listed: listed,
        point,
        warnings: &s.warnings,
    })
}

/// A hash of the orphan rows without their ages, and of their count.
fn rows_hash(rows: &[OrphanRow], listed: u64) -> String {
    let mut h = DefaultHasher::new();
    listed.hash(&mut h);
    for r in rows {
        (
            r.task_id,
            r.conn_id,
            &r.label,
            &r.peer,
            &r.name,
            &r.spawned_at,
        )
            .hash(&mut h);
    }
    format!("{:016x}", h.finish())
}
