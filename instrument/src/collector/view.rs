//! Turns the collector's state into a [`Snapshot`] in two steps: under the lock, a cheap copy
//! ([`Frozen`]: plain rows, names shared by `Arc`); outside it, the sorting and the rows of the
//! JSON contract. Spawns, ends, opens and closes never wait for a snapshot being built.

use std::fmt::Write;
use std::panic::Location;
use std::sync::Arc;

use super::state::{Class, Conn, Counters, State, Task};
use super::verdicts::Judged;
use crate::heap::slots::{Counts, SlotTable};
use crate::ids::{ConnId, Tag, TaskId};
use crate::snapshot::{
    ConnState, ConnectionInfo, EndedBy, HeapTotals, Mode, Snapshot, TaskInfo, TaskKind, TaskState,
    Totals,
};

/// A connection, copied.
#[derive(Clone)]
pub(super) struct ConnRow {
    id: u64,
    tag: Tag,
    label: Arc<str>,
    peer: Option<Arc<str>>,
    runtime: Option<u64>,
    opened_at_ms: u64,
    closed_at_ms: Option<u64>,
    close_reason: Option<&'static str>,
    alive: u64,
    alive_attached: u64,
    spawned: u64,
    open: bool,
}

/// What the totals need of every connection (plain data, no names).
#[derive(Clone, Copy)]
pub(super) struct ConnTot {
    id: u64,
    tag: Tag,
    closed_at_ms: Option<u64>,
    alive: u64,
    alive_attached: u64,
}

/// What a task row needs of its connection: when it closed, and its route.
type ConnOf = (Option<u64>, Arc<str>);

/// A task, copied.
#[derive(Clone)]
pub(super) struct TaskRow {
    id: u64,
    conn_id: u64,
    name: Option<Arc<str>>,
    location: &'static Location<'static>,
    spawned_at_ms: u64,
    ended_at_ms: Option<u64>,
    ended_by: Option<EndedBy>,
    detached: bool,
    blocking: bool,
    wrapped: bool,
}

/// What a snapshot needs, copied out of the state under its lock.
pub(super) struct Frozen {
    now: u64,
    grace: u64,
    threshold: u64,
    tracking: bool,
    slots: &'static SlotTable,
    capacity: u64,
    /// Every connection, for the totals.
    all: Vec<ConnTot>,
    /// The connections listed as rows.
    conns: Vec<ConnRow>,
    tasks: Vec<TaskRow>,
    counters: Counters,
    open_count: u64,
    folded_alive: u64,
    folded_orphans: u64,
    warnings: Vec<String>,
    /// Signatures, shared globals and routes.
    judged: Judged,
}

fn conn_row(c: &Conn) -> ConnRow {
    ConnRow {
        id: c.id.0,
        tag: c.tag,
        label: c.label.clone(),
        peer: c.peer.clone(),
        runtime: c.runtime,
        opened_at_ms: c.opened_at_ms,
        closed_at_ms: c.closed_at_ms,
        close_reason: c.close_reason,
        alive: c.alive,
        alive_attached: c.alive_attached,
        spawned: c.spawned,
        open: c.class == Class::Open,
    }
}

fn conn_tot(c: &Conn) -> ConnTot {
    ConnTot {
        id: c.id.0,
        tag: c.tag,
        closed_at_ms: c.closed_at_ms,
        alive: c.alive,
        alive_attached: c.alive_attached,
    }
}

fn task_row(t: &Task) -> TaskRow {
    TaskRow {
        id: t.id.0,
        conn_id: t.conn_id.0,
        name: t.name.clone(),
        location: t.location,
        spawned_at_ms: t.spawned_at_ms,
        ended_at_ms: t.ended_at_ms,
        ended_by: t.ended_by,
        detached: t.detached,
        blocking: t.blocking,
        wrapped: t.wrapped,
    }
}

/// Which tasks to copy.
pub(super) enum Which {
    /// Every connection and task.
    All,
    /// Every connection; the alive attached tasks of the first `n` connections with orphans.
    Orphans(usize),
    /// One connection and its tasks.
    Conn(u64),
    /// One task and its connection.
    Task(u64),
}

impl Frozen {
    /// Copies what `which` needs. Runs under the lock: O(connections + copied tasks), no
    /// sorting, no formatting.
    /// `tracking`: whether the tracking allocator counts (heap figures are zero otherwise).
    pub(super) fn copy(st: &State, now: u64, which: Which, tracking: bool) -> Frozen {
        let grace = st.cfg.grace.as_millis() as u64;
        let past = |c: &Conn| {
            c.closed_at_ms
                .is_some_and(|t| now.saturating_sub(t) > grace)
        };
        let mut conns: Vec<ConnRow> = Vec::new();
        let mut tasks: Vec<TaskRow> = Vec::new();
        match which {
            Which::All => {
                conns = st.conns.values().map(conn_row).collect();
                tasks = st.tasks.values().map(task_row).collect();
            }
            Which::Orphans(limit) => {
                let mut leaking: Vec<&Conn> = st
                    .conns
                    .values()
                    .filter(|c| past(c) && c.alive_attached > 0)
                    .collect();
                leaking.sort_unstable_by_key(|c| (c.closed_at_ms, c.id));
                for c in leaking {
                    if tasks.len() >= limit {
                        break;
                    }
                    conns.push(conn_row(c));
                    let rows = c
                        .alive_ids
                        .iter()
                        .filter_map(|id| st.tasks.get(id))
                        .filter(|t| !t.detached)
                        .take(limit - tasks.len())
                        .map(task_row);
                    tasks.extend(rows);
                }
            }
            Which::Conn(id) => {
                if let Some(c) = st.conns.get(&ConnId(id)) {
                    conns.push(conn_row(c));
                    let ids = c.alive_ids.iter().chain(c.ended.iter());
                    tasks = ids.filter_map(|t| st.tasks.get(t)).map(task_row).collect();
                }
            }
            Which::Task(id) => {
                if let Some(t) = st.tasks.get(&TaskId(id)) {
                    tasks.push(task_row(t));
                    conns.extend(st.conns.get(&t.conn_id).map(conn_row));
                }
            }
        }
        let all = st.conns.values().map(conn_tot).collect();
        let folded_orphans = st.folded_tasks.values().filter(|f| f.orphan).count() as u64;
        Frozen {
            now,
            grace,
            threshold: st.cfg.retained_bytes_threshold,
            tracking,
            slots: st.slots,
            capacity: st.slots.capacity() as u64,
            all,
            conns,
            tasks,
            counters: st.counters,
            open_count: st.open_count,
            folded_alive: st.folded_tasks.len() as u64,
            folded_orphans,
            warnings: st.warnings.clone(),
            judged: Judged::copy(st, now, grace, tracking, matches!(which, Which::All)),
        }
    }

    fn past_grace(&self, closed: Option<u64>) -> bool {
        closed.is_some_and(|c| self.now.saturating_sub(c) > self.grace)
    }

    fn counts(&self, tag: Tag) -> Counts {
        if self.tracking {
            self.slots.read(tag)
        } else {
            Counts::default()
        }
    }

    /// Orphans of a connection: its attached alive tasks once its grace period passed, but
    /// shared globals.
    fn orphans(&self, id: u64, closed_at_ms: Option<u64>, alive_attached: u64) -> u64 {
        if self.past_grace(closed_at_ms) {
            alive_attached - self.shared_of(id)
        } else {
            0
        }
    }

    /// A connection's alive tasks that are shared globals.
    fn shared_of(&self, id: u64) -> u64 {
        self.judged.shared_alive.get(&id).copied().unwrap_or(0)
    }

    fn conn(&self, c: &ConnRow, counts: Counts) -> ConnectionInfo {
        let live = counts.live_bytes();
        let retained = if self.past_grace(c.closed_at_ms) {
            live
        } else {
            0
        };
        ConnectionInfo {
            id: c.id,
            label: c.label.to_string(),
            peer: c.peer.as_deref().map(str::to_owned),
            state: if c.open {
                ConnState::Open
            } else {
                ConnState::Closed
            },
            opened_at_ms: c.opened_at_ms,
            closed_at_ms: c.closed_at_ms,
            close_reason: c.close_reason.map(str::to_owned),
            live_tasks: c.alive,
            orphan_tasks: self.orphans(c.id, c.closed_at_ms, c.alive_attached),
            tasks_spawned: c.spawned,
            live_bytes: live,
            retained_bytes: retained,
            allocated_bytes: counts.alloc_bytes,
            freed_bytes: counts.free_bytes,
            live_blocks: counts.live_blocks(),
            leaking_memory: retained > self.threshold,
            runtime_id: c.runtime,
        }
    }

    /// (orphan, shared, outlived close by) of a task of a connection (closed at, label).
    fn judge_task(&self, t: &TaskRow, conn: Option<&ConnOf>) -> (bool, bool, Option<u64>) {
        let closed = conn.and_then(|c| c.0);
        let alive = t.ended_at_ms.is_none();
        let outlived = closed.and_then(|c| {
            let end = t.ended_at_ms.unwrap_or(self.now);
            (end > c).then(|| end - c)
        });
        let past = alive && !t.detached && self.past_grace(closed);
        let shared = past && conn.is_some_and(|c| self.judged.is_shared(t.location, &c.1));
        (past && !shared, shared, outlived)
    }

    fn task(&self, t: &TaskRow, conn: Option<&ConnOf>) -> TaskInfo {
        let (orphan, shared, outlived) = self.judge_task(t, conn);
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
            state: if t.ended_at_ms.is_none() {
                TaskState::Alive
            } else {
                TaskState::Ended
            },
            ended_by: t.ended_by,
            ended_by_exact: t.ended_by.map(|e| t.wrapped || e == EndedBy::Shutdown),
            spawned_at_ms: t.spawned_at_ms,
            ended_at_ms: t.ended_at_ms,
            orphan,
            outlived_close_ms: outlived,
            detached: t.detached,
            kind: if t.blocking {
                TaskKind::Blocking
            } else {
                TaskKind::Async
            },
            shared,
        }
    }

    /// Builds the snapshot (outside the lock).
    pub(super) fn build(self, mode: Mode) -> Snapshot {
        let conn_of: crate::collector::state::HashMap<u64, ConnOf> = self
            .conns
            .iter()
            .map(|c| (c.id, (c.closed_at_ms, c.label.clone())))
            .collect();
        let closed = |t: &TaskRow| conn_of.get(&t.conn_id);
        // Sort small keys, then build the (large) rows in order.
        let mut order: Vec<(bool, Option<u64>, u64, usize)> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (orphan, _, outlived) = self.judge_task(t, closed(t));
                (orphan, outlived, t.id, i)
            })
            .collect();
        order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
        let tasks: Vec<TaskInfo> = order
            .into_iter()
            .map(|(.., i)| self.task(&self.tasks[i], closed(&self.tasks[i])))
            .collect();
        let mut heap = HeapTotals {
            tracking: self.tracking,
            ..HeapTotals::default()
        };
        let (mut orphans, mut live_tasks, mut leaking_memory, mut leaking) = (0, 0, 0, 0);
        for c in &self.all {
            let live = self.counts(c.tag).live_bytes();
            let retained = if self.past_grace(c.closed_at_ms) {
                live
            } else {
                0
            };
            let o = self.orphans(c.id, c.closed_at_ms, c.alive_attached);
            orphans += o;
            live_tasks += c.alive;
            heap.connection_live_bytes += live;
            heap.retained_bytes += retained;
            let memory = retained > self.threshold;
            leaking_memory += u64::from(memory);
            leaking += u64::from(memory || o > 0);
        }
        let mut connections: Vec<ConnectionInfo> = self
            .conns
            .iter()
            .map(|c| self.conn(c, self.counts(c.tag)))
            .collect();
        connections.sort_unstable_by_key(|c| std::cmp::Reverse(c.id));
        if self.tracking {
            heap.untagged_live_bytes = self.slots.untagged().live_bytes();
            heap.evicted_live_bytes = self.slots.stale().live_bytes();
        }
        let routes = self.judged.routes();
        let k = &self.counters;
        let totals = Totals {
            connections_opened: k.opened,
            connections_closed: k.closed,
            tasks_spawned: k.spawned,
            orphan_tasks: orphans + self.folded_orphans,
            live_tasks: live_tasks + self.folded_alive,
            open_connections: self.open_count,
            connections_evicted: k.evicted,
            connections_untracked: k.no_slot,
            connections_leaking_memory: leaking_memory + k.folded_leaking_memory,
            connections_ignored: k.ignored,
            connections_leaking: leaking + k.folded_leaking,
            connections_folded_leaking: k.folded_leaking,
            tasks_ended: k.ended,
            shared_tasks: self.judged.shared_alive.values().sum(),
            routes_leaking: routes
                .iter()
                .filter(|r| r.verdict == crate::snapshot::Verdict::Leak)
                .count() as u64,
        };
        let mut warnings = self.warnings;
        if mode != Mode::Hooks {
            warnings.push(mode.limits().to_owned());
        }
        Snapshot {
            mode,
            mode_limits: mode.limits().to_owned(),
            grace_ms: self.grace,
            retained_bytes_threshold: self.threshold,
            taken_at_ms: self.now,
            connections,
            tasks,
            totals,
            heap,
            warnings,
            max_tracked_connections: self.capacity,
            signatures: self.judged.signatures(),
            routes,
        }
    }
}
