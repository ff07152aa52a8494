//! Task events: announced (explicit-spawn), spawned, ended. A task of a connection whose
//! details were folded (or ignored) is counted in the folded set, so totals stay exact.

use super::event::SpawnInfo;
use super::records::{FoldedTask, Task};
use super::state::State;
use crate::ids::{Site, Tag, TaskId};
use crate::snapshot::EndedBy;

impl State {
    pub(super) fn task_announced(&mut self, t: Tag, delta: i64, now: u64) {
        let Some(id) = self.conn_of_tag(t) else {
            if let Some(f) = self.folded_tags.get_mut(&t) {
                f.pending += delta;
                self.forget_folded_tag_if_done(t);
            }
            return;
        };
        if let Some(c) = self.conns.get_mut(&id) {
            c.pending += delta;
            self.rejudge(id, now);
        }
    }

    pub(super) fn task_spawned(
        &mut self,
        t: Tag,
        task: TaskId,
        location: Site,
        info: SpawnInfo,
        now: u64,
    ) {
        // A task registering itself (was_pending) may have been seen by a spawn hook too. (Its
        // registration, sent by its first poll, always comes before its end: it is still in
        // the map of alive tasks then.)
        if info.was_pending
            && (self.tasks.contains_key(&task) || self.folded_tasks.contains_key(&task))
        {
            return;
        }
        let conn = self.conn_of_tag(t).and_then(|id| self.conns.get_mut(&id));
        let Some(c) = conn else {
            if let Some(f) = self.folded_tags.get_mut(&t) {
                f.alive += 1;
                f.pending -= i64::from(info.was_pending);
                let orphan = !f.ignored && !info.detached;
                self.counters.spawned += 1;
                self.folded_tasks
                    .insert(task, FoldedTask { tag: t, orphan });
            }
            return;
        };
        self.counters.spawned += 1;
        c.spawned += 1;
        c.alive += 1;
        c.pending -= i64::from(info.was_pending);
        if !info.detached {
            c.alive_attached += 1;
        }
        let (conn_id, judged, closed) = (c.id, c.is_judged(), c.closed_at_ms.is_some());
        let alive_pos = c.alive_ids.len();
        c.alive_ids.push(task);
        self.tasks.insert(
            task,
            Task {
                id: task,
                conn_id,
                name: info.name,
                location,
                spawned_at_ms: now,
                ended_at_ms: None,
                ended_by: None,
                detached: info.detached,
                blocking: info.blocking,
                wrapped: info.wrapped,
                alive_pos,
                // Spawned after the close: every poll it makes is one since the close.
                polls_at_close: closed.then_some(0),
            },
        );
        if judged {
            self.rejudge(conn_id, now);
        }
    }

    /// A task spawned at `now` and ended as `end` says (how, when), with nothing applied in
    /// between (a `TaskSpawned` with its end folded in): the same as [`State::task_spawned`]
    /// then [`State::task_ended`], which it calls for anything but the common case (a listed
    /// connection not judged yet, not an explicit-spawn registration). There it touches no
    /// task map: the record goes straight to its connection's ended list.
    pub(super) fn task_lived(
        &mut self,
        t: Tag,
        task: TaskId,
        location: Site,
        info: SpawnInfo,
        end: (EndedBy, u64),
        now: u64,
    ) {
        let (ended_by, ended_at) = end;
        let conn = if info.was_pending {
            None
        } else {
            self.conn_of_tag(t)
        };
        let Some(c) = conn
            .and_then(|id| self.conns.get_mut(&id))
            .filter(|c| !c.is_judged())
        else {
            self.task_spawned(t, task, location, info, now);
            self.task_ended(task, ended_by, ended_at);
            return;
        };
        self.counters.spawned += 1;
        self.counters.ended += 1;
        c.spawned += 1;
        // (Its alive counts and alive list would go up and back down.)
        let t = Task {
            id: task,
            conn_id: c.id,
            name: info.name,
            location,
            spawned_at_ms: now,
            ended_at_ms: Some(ended_at),
            ended_by: Some(ended_by),
            detached: info.detached,
            blocking: info.blocking,
            wrapped: info.wrapped,
            alive_pos: c.alive_ids.len(),
            polls_at_close: c.closed_at_ms.is_some().then_some(0),
        };
        c.ended.push(t, self.cfg.max_ended_tasks_per_connection);
    }

    pub(super) fn task_ended(&mut self, task: TaskId, ended_by: EndedBy, now: u64) {
        // (Most ends are of listed connections' tasks: no probe while nothing is folded.)
        if !self.folded_tasks.is_empty()
            && let Some(f) = self.folded_tasks.remove(&task)
        {
            self.counters.ended += 1;
            if let Some(e) = self.folded_tags.get_mut(&f.tag) {
                e.alive = e.alive.saturating_sub(1);
                self.forget_folded_tag_if_done(f.tag);
            }
            return;
        }
        // Alive tasks live in the map; an ended one moves to its connection's list.
        let Some(mut t) = self.tasks.remove(&task) else {
            return;
        };
        self.counters.ended += 1;
        t.ended_at_ms = Some(now);
        t.ended_by = Some(ended_by);
        let (conn_id, detached, pos) = (t.conn_id, t.detached, t.alive_pos);
        let Some(c) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if c.alive_ids.get(pos) == Some(&task) {
            c.alive_ids.swap_remove(pos);
            if let Some(&moved) = c.alive_ids.get(pos)
                && let Some(m) = self.tasks.get_mut(&moved)
            {
                m.alive_pos = pos;
            }
        }
        c.alive -= 1;
        if !detached {
            c.alive_attached -= 1;
        }
        c.ended.push(t, self.cfg.max_ended_tasks_per_connection);
        if c.is_judged() {
            self.rejudge(conn_id, now);
        }
    }

    fn forget_folded_tag_if_done(&mut self, t: Tag) {
        if self
            .folded_tags
            .get(&t)
            .is_some_and(|f| f.alive == 0 && f.pending == 0)
        {
            self.folded_tags.remove(&t);
        }
    }
}
