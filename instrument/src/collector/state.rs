//! The collector's state: connections, tasks and exact totals, changed only by
//! [`State::apply`]. The grace, retention and capacity rules live in `retention.rs`.
//!
//! A connection's life: `Open` → (socket closes) `Grace` → (close + grace passed: judged)
//! `Clean` or `Leaking`; a judged connection moves between the two as its tasks end or spawn,
//! until it is evicted (`Clean` by retention or `max_closed_connections`, `Leaking` beyond
//! `max_leaking_connections`, folded into totals). Nothing is evicted before it is judged.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::sync::Arc;

use super::event::{Applied, Event, SpawnInfo};
use crate::config::Config;
use crate::slots::{FIRST_CONN_SLOT, SlotTable};
use crate::snapshot::EndedBy;
use crate::tag;

/// Hashes the `u64` ids this state is keyed by with one multiply (Fibonacci hashing): ids are
/// sequential, not attacker-controlled, and SipHash was the bulk of a tagged spawn's cost.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by connection or task id.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Where a connection is in its life (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Open,
    Grace,
    Clean,
    Leaking,
}

pub(crate) struct Conn {
    pub id: u64,
    pub tag: u64,
    pub label: Arc<str>,
    pub peer: Option<Arc<str>>,
    pub runtime: Option<u64>,
    pub opened_at_ms: u64,
    pub closed_at_ms: Option<u64>,
    pub close_reason: Option<&'static str>,
    /// Alive tasks, detached ones included.
    pub alive: u64,
    /// Alive tasks that may become orphans (not detached).
    pub alive_attached: u64,
    /// Explicit-spawn tasks not polled yet: they keep the connection from counting as clean.
    /// Signed: an announcement and the task's registration may arrive in either order.
    pub pending: i64,
    pub spawned: u64,
    pub ended: VecDeque<u64>,
    /// Ids of its alive tasks (each task knows its position, for O(1) removal).
    pub alive_ids: Vec<u64>,
    pub class: Class,
    /// Its key in its class's queue (`Grace`, `Clean`, `Leaking`).
    pub seq: u64,
}

pub(crate) struct Task {
    pub id: u64,
    pub conn_id: u64,
    pub name: Option<Arc<str>>,
    pub location: &'static Location<'static>,
    pub spawned_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    pub ended_by: Option<EndedBy>,
    pub detached: bool,
    pub blocking: bool,
    pub wrapped: bool,
    /// Position in its connection's `alive_ids` while alive.
    pub alive_pos: usize,
}

/// An alive task whose connection's details are gone (folded or ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FoldedTask {
    pub tag: u64,
    /// Counts as an orphan (not detached, not the tool's own).
    pub orphan: bool,
}

/// What a folded (or ignored) connection still has running: its tasks may spawn children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FoldedConn {
    pub alive: u64,
    pub pending: i64,
    /// Its tasks are the tool's own (an ignored connection): never orphans.
    pub ignored: bool,
}

/// Exact counters since start; none ever decreases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub opened: u64,
    pub closed: u64,
    pub ignored: u64,
    pub untracked: u64,
    pub evicted: u64,
    pub spawned: u64,
    pub ended: u64,
    /// Connections folded into totals while leaking (their verdict at that moment).
    pub folded_leaking: u64,
    /// Of those, the ones retaining more than the threshold.
    pub folded_leaking_memory: u64,
}

pub(crate) struct State {
    pub cfg: Config,
    pub slots: &'static SlotTable,
    next_id: u64,
    next_seq: u64,
    pub conns: HashMap<u64, Conn>,
    pub tasks: HashMap<u64, Task>,
    slot_conn: Vec<u64>,
    slot_gen: Vec<u32>,
    free_slots: Vec<usize>,
    /// Closed connections by class, oldest first: seq -> id.
    pub(super) grace: BTreeMap<u64, u64>,
    pub(super) clean: BTreeMap<u64, u64>,
    pub(super) leaking: BTreeMap<u64, u64>,
    /// Open connections that got no slot (their close must be counted once).
    untracked_open: HashSet<u64, BuildHasherDefault<IdHasher>>,
    /// Alive tasks of folded or ignored connections.
    pub folded_tasks: HashMap<u64, FoldedTask>,
    /// Tags of folded or ignored connections with alive or pending tasks.
    pub folded_tags: HashMap<u64, FoldedConn>,
    pub warnings: Vec<String>,
    pub counters: Counters,
    pub open_count: u64,
    /// Every eviction as (id, closed_at, judged at, leaking): for the model test.
    #[cfg(test)]
    pub evictions: Vec<(u64, u64, u64, bool)>,
}

impl State {
    pub(crate) fn new(cfg: Config, slots: &'static SlotTable, warnings: Vec<String>) -> Self {
        let end = slots.end();
        State {
            cfg,
            slots,
            next_id: 1,
            next_seq: 1,
            conns: HashMap::default(),
            tasks: HashMap::default(),
            slot_conn: vec![0; end],
            slot_gen: vec![0; end],
            free_slots: (FIRST_CONN_SLOT..end).rev().collect(),
            grace: BTreeMap::new(),
            clean: BTreeMap::new(),
            leaking: BTreeMap::new(),
            untracked_open: HashSet::default(),
            folded_tasks: HashMap::default(),
            folded_tags: HashMap::default(),
            warnings,
            counters: Counters::default(),
            open_count: 0,
            #[cfg(test)]
            evictions: Vec::new(),
        }
    }

    /// Applies one event at time `now` (leakscope's clock, in ms).
    pub(crate) fn apply(&mut self, ev: Event, now: u64) -> Applied {
        match ev {
            Event::Opened {
                label,
                peer,
                runtime,
            } => {
                self.maintain(now);
                let (id, tag) = self.open(label, peer, runtime, now);
                return Applied::Opened { id, tag };
            }
            Event::Closed { id, reason } => {
                self.close(id, reason, now);
                self.maintain(now);
            }
            Event::Relabelled { id, label } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.label = label;
                }
            }
            Event::PeerSet { id, peer } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.peer = Some(peer);
                }
            }
            Event::Ignored { id } => self.ignore(id),
            Event::TaskAnnounced { tag, delta } => self.task_announced(tag, delta, now),
            Event::TaskSpawned {
                tag,
                task,
                location,
                info,
            } => self.task_spawned(tag, task, location, info, now),
            Event::TaskEnded { task, ended_by } => self.task_ended(task, ended_by, now),
            Event::Warned(msg) => self.warn(msg),
            Event::Tick => self.maintain(now),
        }
        Applied::Done
    }

    pub(crate) fn warn(&mut self, msg: String) {
        if self.warnings.len() < 32 && !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    fn open(
        &mut self,
        label: Arc<str>,
        peer: Option<Arc<str>>,
        runtime: Option<u64>,
        now: u64,
    ) -> (u64, u64) {
        let id = self.next_id;
        self.next_id += 1;
        self.counters.opened += 1;
        self.open_count += 1;
        let Some(slot) = self.free_slot(now) else {
            self.counters.untracked += 1;
            self.untracked_open.insert(id);
            self.warn(format!(
                "more than {} connections open or awaiting their verdict at once: new ones are \
                 counted (totals.connections_untracked) but not tracked; raise \
                 LEAKSCOPE_MAX_TRACKED",
                self.slots.capacity()
            ));
            return (id, tag::UNTAGGED);
        };
        self.slot_conn[slot] = id;
        let t = tag::make(slot, self.slot_gen[slot]);
        self.conns.insert(
            id,
            Conn {
                id,
                tag: t,
                label,
                peer,
                runtime,
                opened_at_ms: now,
                closed_at_ms: None,
                close_reason: None,
                alive: 0,
                alive_attached: 0,
                pending: 0,
                spawned: 0,
                ended: VecDeque::new(),
                alive_ids: Vec::new(),
                class: Class::Open,
                seq: 0,
            },
        );
        (id, t)
    }

    fn close(&mut self, id: u64, reason: &'static str, now: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            // Untracked (no slot): count its close once. Ignored or folded: already counted.
            if self.untracked_open.remove(&id) {
                self.counters.closed += 1;
                self.open_count -= 1;
            }
            return;
        };
        if c.class != Class::Open {
            return;
        }
        c.closed_at_ms = Some(now);
        c.close_reason = Some(reason);
        self.counters.closed += 1;
        self.open_count -= 1;
        self.set_class(id, Class::Grace);
    }

    /// Forgets a connection's details (the tool's own traffic). An open one counts once as
    /// ignored (never as closed); its alive tasks stay counted until they end, never as orphans.
    fn ignore(&mut self, id: u64) {
        if self.untracked_open.remove(&id) {
            self.counters.ignored += 1;
            self.open_count -= 1;
            return;
        }
        let Some(c) = self.conns.get(&id) else { return };
        if c.class == Class::Open {
            self.counters.ignored += 1;
            self.open_count -= 1;
        }
        self.remove(id, true);
    }

    /// The connection id behind a tag, if it is still tracked.
    pub(crate) fn conn_of_tag(&self, t: u64) -> Option<u64> {
        let slot = tag::slot_of(t);
        if t == tag::UNTAGGED
            || slot >= self.slot_gen.len()
            || tag::make(slot, self.slot_gen[slot]) != t
        {
            return None;
        }
        Some(self.slot_conn[slot]).filter(|&id| id != 0)
    }

    fn task_announced(&mut self, t: u64, delta: i64, now: u64) {
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

    fn task_spawned(
        &mut self,
        t: u64,
        task: u64,
        location: &'static Location<'static>,
        info: SpawnInfo,
        now: u64,
    ) {
        if self.tasks.contains_key(&task) || self.folded_tasks.contains_key(&task) {
            return; // registered already (by the spawn hook and by itself)
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
        let conn_id = c.id;
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
            },
        );
        self.rejudge(conn_id, now);
    }

    fn task_ended(&mut self, task: u64, ended_by: EndedBy, now: u64) {
        if let Some(f) = self.folded_tasks.remove(&task) {
            self.counters.ended += 1;
            if let Some(e) = self.folded_tags.get_mut(&f.tag) {
                e.alive = e.alive.saturating_sub(1);
                self.forget_folded_tag_if_done(f.tag);
            }
            return;
        }
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        if t.ended_at_ms.is_some() {
            return;
        }
        self.counters.ended += 1;
        t.ended_at_ms = Some(now);
        t.ended_by = Some(ended_by);
        let (conn_id, detached, pos) = (t.conn_id, t.detached, t.alive_pos);
        let keep = self.cfg.max_ended_tasks_per_connection;
        let Some(c) = self.conns.get_mut(&conn_id) else {
            self.tasks.remove(&task);
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
        c.ended.push_back(task);
        while c.ended.len() > keep {
            if let Some(old) = c.ended.pop_front() {
                self.tasks.remove(&old);
            }
        }
        self.rejudge(conn_id, now);
    }

    fn forget_folded_tag_if_done(&mut self, t: u64) {
        if self
            .folded_tags
            .get(&t)
            .is_some_and(|f| f.alive == 0 && f.pending == 0)
        {
            self.folded_tags.remove(&t);
        }
    }

    /// Moves a connection to class `next`, keeping every class queue exact.
    pub(super) fn set_class(&mut self, id: u64, next: Class) {
        let seq = self.next_seq;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.class == next {
            return;
        }
        let old = (c.class, c.seq);
        c.class = next;
        c.seq = seq;
        self.next_seq += 1;
        if let Some(q) = self.queue(old.0) {
            q.remove(&old.1);
        }
        if let Some(q) = self.queue(next) {
            q.insert(seq, id);
        }
    }

    pub(super) fn queue(&mut self, class: Class) -> Option<&mut BTreeMap<u64, u64>> {
        match class {
            Class::Open => None,
            Class::Grace => Some(&mut self.grace),
            Class::Clean => Some(&mut self.clean),
            Class::Leaking => Some(&mut self.leaking),
        }
    }

    /// Forgets a connection's details and recycles its slot. Its alive tasks move to the folded
    /// set (as the tool's own if `ignored`), so totals stay exact.
    pub(super) fn remove(&mut self, id: u64, ignored: bool) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        if let Some(q) = self.queue(c.class) {
            q.remove(&c.seq);
        }
        for t in c.ended {
            self.tasks.remove(&t);
        }
        if !c.alive_ids.is_empty() || c.pending != 0 {
            let f = FoldedConn {
                alive: c.alive_ids.len() as u64,
                pending: c.pending,
                ignored,
            };
            self.folded_tags.insert(c.tag, f);
        }
        for t in &c.alive_ids {
            if let Some(task) = self.tasks.remove(t) {
                let orphan = !ignored && !task.detached;
                self.folded_tasks
                    .insert(*t, FoldedTask { tag: c.tag, orphan });
            }
        }
        let slot = tag::slot_of(c.tag);
        if slot < self.slot_conn.len() && self.slot_conn[slot] == id {
            // Recycle now: the old owner's live bytes move to the stale bucket, and its late
            // frees go there too (never to the slot's next owner).
            let old = self.slot_gen[slot];
            let next = old.wrapping_add(1);
            self.slot_gen[slot] = next;
            self.slots.recycle(slot, old, next);
            self.slot_conn[slot] = 0;
            self.free_slots.push(slot);
        }
    }

    pub(super) fn pop_free_slot(&mut self) -> Option<usize> {
        self.free_slots.pop()
    }

    /// Grows the slot table by a chunk, if the configuration allows.
    pub(super) fn grow_slots(&mut self) -> bool {
        let Some(new) = self.slots.grow() else {
            return false;
        };
        self.slot_conn.resize(new.end, 0);
        self.slot_gen.resize(new.end, 0);
        self.free_slots.extend(new.rev());
        true
    }

    /// The size of every internal collection, for the model test's bounds.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> [usize; 8] {
        [
            self.conns.len(),
            self.tasks.len(),
            self.grace.len(),
            self.clean.len(),
            self.leaking.len(),
            self.untracked_open.len(),
            self.folded_tasks.len(),
            self.folded_tags.len(),
        ]
    }

    /// Live bytes charged to a connection now.
    pub(crate) fn live_bytes(&self, c: &Conn) -> u64 {
        self.slots.read(c.tag).live_bytes()
    }
}
