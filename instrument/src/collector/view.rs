//! Turns the collector's state into a [`Snapshot`].

use super::state::{Class, State};
use crate::slots;
use crate::snapshot::{
    ConnState, ConnectionInfo, EndedBy, HeapTotals, Mode, Snapshot, TaskInfo, TaskState, Totals,
};

pub(super) fn snapshot(st: &State, mode: Mode) -> Snapshot {
    let now = crate::clock::now_ms();
    let grace = st.cfg.grace.as_millis() as u64;
    let threshold = st.cfg.retained_bytes_threshold;
    let tracking = crate::alloc::is_tracking();
    let past_grace = |closed: Option<u64>| closed.is_some_and(|c| now.saturating_sub(c) > grace);

    let mut orphans_by_conn = super::state::HashMap::<u64, u64>::default();
    let mut tasks: Vec<TaskInfo> = Vec::with_capacity(st.tasks.len());
    for t in st.tasks.values() {
        let conn = st.conns.get(&t.conn_id);
        let closed = conn.and_then(|c| c.closed_at_ms);
        let alive = t.ended_at_ms.is_none();
        let orphan = alive && !t.detached && past_grace(closed);
        if orphan {
            *orphans_by_conn.entry(t.conn_id).or_default() += 1;
        }
        let outlived = closed.and_then(|c| {
            let end = t.ended_at_ms.unwrap_or(now);
            (end > c).then(|| end - c)
        });
        let name = match &t.name {
            Some(n) => format!("conn={} {n}", t.conn_id),
            None => format!("conn={}", t.conn_id),
        };
        tasks.push(TaskInfo {
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
            orphan,
            outlived_close_ms: outlived,
            detached: t.detached,
            kind: if t.blocking { "blocking" } else { "async" }.to_owned(),
        });
    }
    // Orphans first (longest outlived first), then newest tasks.
    tasks.sort_by(|a, b| {
        b.orphan
            .cmp(&a.orphan)
            .then(b.outlived_close_ms.cmp(&a.outlived_close_ms))
            .then(b.id.cmp(&a.id))
    });

    let mut heap = HeapTotals {
        tracking,
        ..HeapTotals::default()
    };
    let mut leaking_memory = 0;
    let mut connections: Vec<ConnectionInfo> = st
        .conns
        .values()
        .map(|c| {
            let counts = slots::read(c.tag);
            let live = if tracking { counts.live_bytes() } else { 0 };
            let retained = if past_grace(c.closed_at_ms) { live } else { 0 };
            let leaking = retained > threshold;
            leaking_memory += u64::from(leaking);
            heap.connection_live_bytes += live;
            heap.retained_bytes += retained;
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
                orphan_tasks: orphans_by_conn.get(&c.id).copied().unwrap_or(0),
                tasks_spawned: c.spawned,
                live_bytes: live,
                retained_bytes: retained,
                allocated_bytes: if tracking { counts.alloc_bytes } else { 0 },
                freed_bytes: if tracking { counts.free_bytes } else { 0 },
                live_blocks: if tracking { counts.live_blocks() } else { 0 },
                leaking_memory: leaking,
            }
        })
        .collect();
    connections.sort_by_key(|c| std::cmp::Reverse(c.id));
    if tracking {
        heap.untagged_live_bytes = slots::untagged().live_bytes();
        heap.evicted_live_bytes = slots::stale_counts().live_bytes();
    }

    let evicted_orphans = st.evicted_tasks.values().filter(|(_, d)| !d).count() as u64;
    let live_tasks = st
        .tasks
        .values()
        .filter(|t| t.ended_at_ms.is_none())
        .count() as u64
        + st.evicted_tasks.len() as u64;
    let totals = Totals {
        connections_opened: st.opened,
        connections_closed: st.closed,
        tasks_spawned: st.spawned,
        orphan_tasks: orphans_by_conn.values().sum::<u64>() + evicted_orphans,
        live_tasks,
        open_connections: st.open_count,
        connections_evicted: st.evicted,
        connections_untracked: st.untracked,
        connections_leaking_memory: leaking_memory,
    };
    let mut warnings = st.warnings.clone();
    if mode != Mode::Hooks {
        warnings.push(mode.limits().to_owned());
    }
    Snapshot {
        mode,
        mode_limits: mode.limits().to_owned(),
        grace_ms: grace,
        retained_bytes_threshold: threshold,
        taken_at_ms: now,
        connections,
        tasks,
        totals,
        heap,
        warnings,
    }
}
