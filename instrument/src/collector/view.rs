//! Builds a [`Snapshot`] from the copy taken under the lock (`frozen.rs`), outside it: the
//! sorting, the verdicts and the rows of the JSON contract. Spawns, ends, opens and closes
//! never wait for a snapshot being built.

use super::allocations;
use super::frozen::{ConnOf, ConnRow, Frozen, SitesFor, TaskRow};
use super::rows::{Names, order_key, sort_desc};
use crate::heap::slots::Counts;
use crate::ids::Tag;
use crate::snapshot::{
    ConnState, ConnectionInfo, EndedBy, HeapTotals, Mode, SharedStr, Snapshot, TaskInfo, TaskKind,
    TaskState, Totals,
};

impl Frozen {
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

    /// Inlined, as [`Frozen::task`] is, so the row is written in place in the vector.
    #[inline(always)]
    fn conn(&self, c: &ConnRow, counts: Counts) -> ConnectionInfo {
        let live = counts.live_bytes();
        let retained = if self.past_grace(c.closed_at_ms) {
            live
        } else {
            0
        };
        ConnectionInfo {
            id: c.id,
            label: c.label.clone().into(),
            peer: c.peer.as_ref().map(|p| SharedStr::from(p.text())),
            state: if c.open {
                ConnState::Open
            } else {
                ConnState::Closed
            },
            opened_at_ms: c.opened_at_ms,
            closed_at_ms: c.closed_at_ms,
            close_reason: c.close_reason.map(SharedStr::from_static),
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
            allocation_sites: Vec::new(),
            zombie: c.zombie_since_ms.is_some(),
            zombie_since_ms: c.zombie_since_ms,
            last_read_ms: c.reads.map(|r| r.last_ms),
            not_read_for_ms: self.unread_for(c),
            events: Vec::new(),
            events_dropped: 0,
        }
    }

    /// How long nobody has read an open connection's socket, if that deserves a hint: live
    /// tasks, no reader waiting, unread for at least the configured time.
    fn unread_for(&self, c: &ConnRow) -> Option<u64> {
        let r = c.reads?;
        let idle = self.now.saturating_sub(r.last_ms);
        (c.open && c.alive > 0 && !r.waiting && idle >= self.unread_hint).then_some(idle)
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

    /// Inlined so the row is written in place in the rows' vector: out of line, each row
    /// (a few hundred bytes) was built on the stack and copied, 5% of a snapshot's time.
    #[inline(always)]
    fn task(&self, t: &TaskRow, judged: Judged, names: &mut Names) -> TaskInfo {
        let (orphan, shared, outlived) = judged.verdict;
        let activity = t
            .ended_at_ms
            .is_none()
            .then(|| crate::tag::task_table::activity(crate::ids::TaskId(t.id)))
            .flatten();
        let name = names.name(t.conn_id, judged.location, t.name.as_ref());
        TaskInfo {
            id: t.id,
            conn_id: t.conn_id,
            name,
            spawned_at: names.strings[judged.location as usize].0.clone(),
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
            polls: activity.map(|a| a.0),
            polls_since_close: activity
                .zip(t.polls_at_close)
                .map(|((polls, _), at)| polls_since(polls, at)),
            last_poll_ms: activity.map(|a| a.1).filter(|&ms| ms != 0),
        }
    }

    /// Fills the allocation sites and the log lines of the rows that get them (see [`SitesFor`]).
    fn fill_sites(&self, rows: &mut [ConnectionInfo], routes: &[crate::snapshot::RouteInfo]) {
        let slow = |label: &str| {
            routes
                .iter()
                .any(|r| r.label == label && r.verdict == crate::snapshot::Verdict::Leak)
        };
        let wanted = |c: &ConnectionInfo| match self.sites_for {
            SitesFor::None => false,
            SitesFor::Every => true,
            SitesFor::Leaking => c.leaking_memory || (c.retained_bytes > 0 && slow(&c.label)),
        };
        let tags: crate::collector::state::HashMap<u64, Tag> =
            self.conns.iter().map(|c| (c.id, c.tag)).collect();
        let want = rows
            .iter()
            .enumerate()
            .filter(|(_, c)| wanted(c))
            .filter_map(|(i, c)| Some((*tags.get(&c.id)?, i)))
            .collect();
        allocations::fill(rows, &want);
        // The same rows get their log lines, and in a full snapshot also the connections
        // leaking tasks.
        let events = rows.iter().enumerate().filter(|(_, c)| {
            wanted(c) || (matches!(self.sites_for, SitesFor::Leaking) && c.orphan_tasks > 0)
        });
        let events: Vec<(Tag, usize)> = events
            .filter_map(|(i, c)| Some((*tags.get(&c.id)?, i)))
            .collect();
        super::logs::fill(rows, events);
    }

    /// Builds the snapshot (outside the lock).
    pub(super) fn build(mut self, mode: Mode) -> Snapshot {
        let conn_of: crate::collector::state::HashMap<u64, ConnOf> = self
            .conns
            .iter()
            .map(|c| (c.id, (c.closed_at_ms, c.label.clone())))
            .collect();
        let closed = |t: &TaskRow| conn_of.get(&t.conn_id);
        // Judge each task once, intern its spawn location's strings, sort small keys, then
        // build the (large) rows in order.
        let mut names = Names::with_capacity(self.conns.len());
        let judged: Vec<Judged> = self
            .tasks
            .iter()
            .map(|t| Judged {
                verdict: self.judge_task(t, closed(t)),
                location: names.index(t.location),
            })
            .collect();
        let mut order: Vec<([u64; 2], u32)> = judged
            .iter()
            .zip(&self.tasks)
            .enumerate()
            .map(|(i, (j, t))| (order_key(j.verdict.0, j.verdict.2, t.id), i as u32))
            .collect();
        sort_desc(&mut order);
        let tasks: Vec<TaskInfo> = order
            .into_iter()
            .map(|(_, i)| self.task(&self.tasks[i as usize], judged[i as usize], &mut names))
            .collect();
        let mut heap = HeapTotals {
            tracking: self.tracking,
            ..HeapTotals::default()
        };
        let (mut orphans, mut live_tasks, mut leaking_memory, mut leaking) = (0, 0, 0, 0);
        let zombies = self.all.iter().filter(|c| c.zombie).count() as u64;
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
        // Sorted as small rows, before the large ones are built.
        let mut conns = std::mem::take(&mut self.conns);
        conns.sort_unstable_by_key(|c| std::cmp::Reverse(c.id));
        let mut connections: Vec<ConnectionInfo> = conns
            .iter()
            .map(|c| self.conn(c, self.counts(c.tag)))
            .collect();
        self.conns = conns; // `fill_sites` finds the rows' tags there
        let routes = self.judged.routes();
        self.fill_sites(&mut connections, &routes);
        let mut signatures = self.judged.signatures();
        let judged_of = |label: &str| self.judged.judged_of(label);
        signatures.extend(allocations::signatures(&connections, &routes, judged_of));
        crate::snapshot::fill_fixes(&mut signatures, &tasks);
        if self.tracking {
            heap.untagged_live_bytes = self.slots.untagged().live_bytes();
            heap.evicted_live_bytes = self.slots.stale().live_bytes();
            heap.sample_bytes = crate::heap::sample::interval();
            heap.live_samples = crate::heap::sample::count() as u64;
            heap.samples_dropped = crate::heap::sample::dropped();
        }
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
            zombie_connections: zombies,
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
            signatures,
            routes,
        }
    }
}

/// A task's verdict (orphan, shared, outlived close by) and its interned location.
#[derive(Clone, Copy)]
struct Judged {
    verdict: (bool, bool, Option<u64>),
    location: u32,
}

/// Polls since the close, not counting a first poll made after it: a task spawned just before
/// the close runs once to reach its await point, and is parked there as much as one that got
/// there before.
fn polls_since(polls: u64, at_close: u64) -> u64 {
    let first_after = u64::from(at_close == 0 && polls > 0);
    polls.saturating_sub(at_close) - first_after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_poll_after_the_close_is_not_running() {
        assert_eq!(polls_since(1, 0), 0);
        assert_eq!(polls_since(0, 0), 0);
        assert_eq!(polls_since(5, 0), 4);
        assert_eq!(polls_since(3, 3), 0);
        assert_eq!(polls_since(7, 3), 4);
    }
}
