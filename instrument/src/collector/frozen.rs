//! The copy a snapshot takes under the collector's lock ([`Frozen`]): plain rows, names
//! shared by `Arc`, no sorting, no formatting. `view.rs` builds the snapshot from it outside
//! the lock.

use crate::wrap::watch::{ReadWatch, Reads};
use std::sync::Arc;

use super::state::{Class, Conn, Counters, State, Task};
use super::verdicts::Judged;
use crate::heap::slots::SlotTable;
use crate::ids::{ConnId, Site, Tag, TaskId};
use crate::peer::Peer;
use crate::snapshot::EndedBy;

/// A connection, copied.
#[derive(Clone)]
pub(super) struct ConnRow {
    pub(super) id: u64,
    pub(super) tag: Tag,
    pub(super) label: Arc<str>,
    pub(super) peer: Option<Peer>,
    pub(super) runtime: Option<u64>,
    pub(super) opened_at_ms: u64,
    pub(super) closed_at_ms: Option<u64>,
    pub(super) close_reason: Option<&'static str>,
    pub(super) alive: u64,
    pub(super) alive_attached: u64,
    pub(super) spawned: u64,
    pub(super) open: bool,
    pub(super) reads: Option<Reads>,
    pub(super) zombie_since_ms: Option<u64>,
}

/// What the totals need of every connection (plain data, no names).
#[derive(Clone, Copy)]
pub(super) struct ConnTot {
    pub(super) id: u64,
    pub(super) tag: Tag,
    pub(super) closed_at_ms: Option<u64>,
    pub(super) alive: u64,
    pub(super) alive_attached: u64,
    pub(super) zombie: bool,
}

/// What a task row needs of its connection: when it closed, and its route.
pub(super) type ConnOf = (Option<u64>, Arc<str>);

/// A task, copied.
#[derive(Clone)]
pub(super) struct TaskRow {
    pub(super) id: u64,
    pub(super) conn_id: u64,
    pub(super) name: Option<Arc<str>>,
    pub(super) location: Site,
    pub(super) spawned_at_ms: u64,
    pub(super) ended_at_ms: Option<u64>,
    pub(super) ended_by: Option<EndedBy>,
    pub(super) detached: bool,
    pub(super) blocking: bool,
    pub(super) wrapped: bool,
    pub(super) polls_at_close: Option<u64>,
}

/// What a snapshot needs, copied out of the state under its lock.
pub(super) struct Frozen {
    pub(super) now: u64,
    pub(super) grace: u64,
    pub(super) threshold: u64,
    /// Open connections with live tasks unread this long get a hint.
    pub(super) unread_hint: u64,
    pub(super) tracking: bool,
    pub(super) slots: &'static SlotTable,
    pub(super) capacity: u64,
    /// Every connection, for the totals.
    pub(super) all: Vec<ConnTot>,
    /// The connections listed as rows.
    pub(super) conns: Vec<ConnRow>,
    pub(super) tasks: Vec<TaskRow>,
    pub(super) counters: Counters,
    pub(super) open_count: u64,
    pub(super) folded_alive: u64,
    pub(super) folded_orphans: u64,
    pub(super) warnings: Vec<String>,
    /// Signatures, shared globals and routes.
    pub(super) judged: Judged,
    /// Which connections get their allocation sites.
    pub(super) sites_for: SitesFor,
}

fn conn_row(c: &Conn) -> ConnRow {
    ConnRow {
        id: c.id.0,
        tag: c.tag,
        label: c.label.clone(),
        // (An address is formatted by the view, outside the lock.)
        peer: c.peer.clone(),
        runtime: c.runtime,
        opened_at_ms: c.opened_at_ms,
        closed_at_ms: c.closed_at_ms,
        close_reason: c.close_reason,
        alive: c.alive,
        alive_attached: c.alive_attached,
        spawned: c.spawned,
        open: c.class == Class::Open,
        reads: c.reads.as_deref().and_then(ReadWatch::get),
        zombie_since_ms: c.zombie_since_ms,
    }
}

fn conn_tot(c: &Conn) -> ConnTot {
    ConnTot {
        id: c.id.0,
        tag: c.tag,
        closed_at_ms: c.closed_at_ms,
        alive: c.alive,
        alive_attached: c.alive_attached,
        zombie: c.zombie_since_ms.is_some(),
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
        polls_at_close: t.polls_at_close,
    }
}

/// Which connections get their allocation sites (symbolizing costs, the first time).
#[derive(Clone, Copy)]
pub(super) enum SitesFor {
    None,
    /// Those leaking memory or on a slow-leaking route (full snapshots).
    Leaking,
    /// Every listed one (a connection looked up alone).
    Every,
}

/// Which tasks to copy.
pub(super) enum Which {
    /// Every connection and task.
    All,
    /// Every connection; the alive attached tasks of the first `n` connections with orphans.
    Orphans(usize),
    /// Every connection, no task.
    Connections,
    /// One connection and its tasks.
    Conn(u64),
    /// One task and its connection.
    Task(u64),
}

impl Frozen {
    /// Copies what `which` needs. Runs under the lock: O(connections + copied tasks; a lookup by
    /// id also reads the ended rings whose id range holds it), no sorting, no formatting.
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
                // (Two passes: a chained iterator made the copy 7% slower.)
                tasks = st.tasks.values().map(task_row).collect();
                let ended = st.conns.values().flat_map(|c| c.ended.iter());
                tasks.extend(ended.map(task_row));
            }
            Which::Connections => conns = st.conns.values().map(conn_row).collect(),
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
                    let alive = c.alive_ids.iter().filter_map(|t| st.tasks.get(t));
                    tasks = alive.chain(c.ended.iter()).map(task_row).collect();
                }
            }
            Which::Task(id) => {
                // An ended task is in its connection's ring: only rings whose id range holds
                // it are read (the copy is O(connections) anyway, below).
                let ended = || {
                    let rings = st.conns.values().filter(|c| c.ended.may_hold(id));
                    rings.flat_map(|c| c.ended.iter()).find(|t| t.id.0 == id)
                };
                if let Some(t) = st.tasks.get(&TaskId(id)).or_else(ended) {
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
            unread_hint: st.cfg.unread_hint.as_millis() as u64,
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
            judged: Judged::copy(
                st,
                now,
                grace,
                tracking,
                matches!(which, Which::All | Which::Connections),
            ),
            sites_for: match which {
                Which::All | Which::Connections => SitesFor::Leaking,
                Which::Conn(_) => SitesFor::Every,
                _ => SitesFor::None,
            },
        }
    }
}
