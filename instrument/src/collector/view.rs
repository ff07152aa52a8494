//! Turns the collector's state into a [`Snapshot`]: the full one, and a cheap summary (exact
//! totals, a bounded number of orphan rows) for once-a-second samplers.

use std::fmt::Write;

use super::state::{Class, Conn, State, Task};
use crate::slots;
use crate::snapshot::{
    ConnState, ConnectionInfo, EndedBy, HeapTotals, Mode, Snapshot, TaskInfo, TaskState, Totals,
};

/// What every row needs to know about "now".
struct Ctx {
    now: u64,
    grace: u64,
    threshold: u64,
    tracking: bool,
}

impl Ctx {
    fn new(st: &State) -> Self {
        Ctx {
            now: crate::clock::now_ms(),
            grace: st.cfg.grace.as_millis() as u64,
            threshold: st.cfg.retained_bytes_threshold,
            tracking: crate::alloc::is_tracking(),
        }
    }

    fn past_grace(&self, closed: Option<u64>) -> bool {
        closed.is_some_and(|c| self.now.saturating_sub(c) > self.grace)
    }

    /// Orphans of a connection: its attached alive tasks once its grace period passed.
    fn orphans(&self, c: &Conn) -> u64 {
        if self.past_grace(c.closed_at_ms) {
            c.alive_attached
        } else {
            0
        }
    }

    fn conn(&self, c: &Conn) -> ConnectionInfo {
        let counts = slots::read(c.tag);
        let live = if self.tracking {
            counts.live_bytes()
        } else {
            0
        };
        let retained = if self.past_grace(c.closed_at_ms) {
            live
        } else {
            0
        };
        ConnectionInfo {
            id: c.id,
            label: c.label.clone(),
            peer: c.peer.clone(),
            state: if c.class == Class::Open {
                ConnState::Open
            } else {
                ConnState::Closed
            },
            opened_at_ms: c.opened_at_ms,
            closed_at_ms: c.closed_at_ms,
            close_reason: c.close_reason.map(str::to_owned),
            live_tasks: c.alive,
            orphan_tasks: self.orphans(c),
            tasks_spawned: c.spawned,
            live_bytes: live,
            retained_bytes: retained,
            allocated_bytes: if self.tracking { counts.alloc_bytes } else { 0 },
            freed_bytes: if self.tracking { counts.free_bytes } else { 0 },
            live_blocks: if self.tracking {
                counts.live_blocks()
            } else {
                0
            },
            leaking_memory: retained > self.threshold,
        }
    }

    fn task(&self, t: &Task, conn: Option<&Conn>) -> TaskInfo {
        let closed = conn.and_then(|c| c.closed_at_ms);
        let alive = t.ended_at_ms.is_none();
        let outlived = closed.and_then(|c| {
            let end = t.ended_at_ms.unwrap_or(self.now);
            (end > c).then(|| end - c)
        });
        let mut name = String::with_capacity(48);
        let _ = match &t.name {
            Some(n) => write!(name, "conn={} {n}", t.conn_id),
            None => {
                // Unnamed (a plain tokio::spawn): the file name and line say what it is.
                let file = t.location.file().rsplit(['/', '\\']).next().unwrap_or("");
                write!(name, "conn={} {file}:{}", t.conn_id, t.location.line())
            }
        };
        TaskInfo {
            id: t.id,
            conn_id: t.conn_id,
            name,
            spawned_at: t.location.to_string(),
            state: if alive {
                TaskState::Alive
            } else {
                TaskState::Ended
            },
            ended_by: t.ended_by,
            ended_by_exact: t.ended_by.map(|e| t.wrapped || e != EndedBy::Completed),
            spawned_at_ms: t.spawned_at_ms,
            ended_at_ms: t.ended_at_ms,
            orphan: alive && !t.detached && self.past_grace(closed),
            outlived_close_ms: outlived,
            detached: t.detached,
            kind: if t.blocking { "blocking" } else { "async" }.to_owned(),
        }
    }
}

/// Orphans first (longest outlived first), then newest tasks.
fn sort_tasks(tasks: &mut [TaskInfo]) {
    tasks.sort_by(|a, b| {
        b.orphan
            .cmp(&a.orphan)
            .then(b.outlived_close_ms.cmp(&a.outlived_close_ms))
            .then(b.id.cmp(&a.id))
    });
}

/// Exact totals and heap figures, in one pass over the connections.
fn totals(st: &State, cx: &Ctx) -> (Totals, HeapTotals) {
    let mut heap = HeapTotals {
        tracking: cx.tracking,
        ..HeapTotals::default()
    };
    let (mut orphans, mut live_tasks, mut leaking_memory) = (0, 0, 0);
    for c in st.conns.values() {
        orphans += cx.orphans(c);
        live_tasks += c.alive;
        if cx.tracking {
            let live = slots::read(c.tag).live_bytes();
            heap.connection_live_bytes += live;
            if cx.past_grace(c.closed_at_ms) {
                heap.retained_bytes += live;
                leaking_memory += u64::from(live > cx.threshold);
            }
        }
    }
    if cx.tracking {
        heap.untagged_live_bytes = slots::untagged().live_bytes();
        heap.evicted_live_bytes = slots::stale_counts().live_bytes();
    }
    let evicted_orphans = st.evicted_tasks.values().filter(|(_, d)| !d).count() as u64;
    let totals = Totals {
        connections_opened: st.opened,
        connections_closed: st.closed,
        tasks_spawned: st.spawned,
        orphan_tasks: orphans + evicted_orphans,
        live_tasks: live_tasks + st.evicted_tasks.len() as u64,
        open_connections: st.open_count,
        connections_evicted: st.evicted,
        connections_untracked: st.untracked,
        connections_leaking_memory: leaking_memory,
    };
    (totals, heap)
}

fn assemble(
    st: &State,
    mode: Mode,
    cx: &Ctx,
    connections: Vec<ConnectionInfo>,
    tasks: Vec<TaskInfo>,
) -> Snapshot {
    let (totals, heap) = totals(st, cx);
    let mut warnings = st.warnings.clone();
    if mode != Mode::Hooks {
        warnings.push(mode.limits().to_owned());
    }
    Snapshot {
        mode,
        mode_limits: mode.limits().to_owned(),
        grace_ms: cx.grace,
        retained_bytes_threshold: cx.threshold,
        taken_at_ms: cx.now,
        connections,
        tasks,
        totals,
        heap,
        warnings,
    }
}

/// (orphan, outlived, id) to sort by, and the task with its connection.
type SortKey<'a> = (bool, Option<u64>, u64, &'a Task, Option<&'a Conn>);

/// Everything tracked.
pub(super) fn snapshot(st: &State, mode: Mode) -> Snapshot {
    let cx = Ctx::new(st);
    // Sort small keys, then build the (large) rows in order: moving 100k rows around in a
    // sort costs more than building them.
    let mut order: Vec<SortKey<'_>> = st
        .tasks
        .values()
        .map(|t| {
            let conn = st.conns.get(&t.conn_id);
            let closed = conn.and_then(|c| c.closed_at_ms);
            let orphan = t.ended_at_ms.is_none() && !t.detached && cx.past_grace(closed);
            let outlived = closed.and_then(|c| {
                let end = t.ended_at_ms.unwrap_or(cx.now);
                (end > c).then(|| end - c)
            });
            (orphan, outlived, t.id, t, conn)
        })
        .collect();
    order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    let tasks: Vec<TaskInfo> = order.into_iter().map(|(.., t, c)| cx.task(t, c)).collect();
    let mut connections: Vec<ConnectionInfo> = st.conns.values().map(|c| cx.conn(c)).collect();
    connections.sort_by_key(|c| std::cmp::Reverse(c.id));
    assemble(st, mode, &cx, connections, tasks)
}

/// Exact totals and heap, the `limit` longest-outlived orphan tasks and their connections:
/// O(connections), never O(tasks).
pub(super) fn summary(st: &State, mode: Mode, limit: usize) -> Snapshot {
    let cx = Ctx::new(st);
    let mut leaking: Vec<&Conn> = st.conns.values().filter(|c| cx.orphans(c) > 0).collect();
    leaking.sort_by_key(|c| (c.closed_at_ms, c.id));
    let (mut tasks, mut connections) = (Vec::new(), Vec::new());
    for c in leaking {
        if tasks.len() >= limit {
            break;
        }
        connections.push(cx.conn(c));
        let rows = c
            .alive_ids
            .iter()
            .filter_map(|id| st.tasks.get(id))
            .filter(|t| !t.detached)
            .take(limit - tasks.len())
            .map(|t| cx.task(t, Some(c)));
        tasks.extend(rows);
    }
    sort_tasks(&mut tasks);
    assemble(st, mode, &cx, connections, tasks)
}
