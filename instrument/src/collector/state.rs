//! The collector's state: connections, tasks and exact totals, changed only by
//! [`State::apply`]. The grace, retention and capacity rules live in `retention.rs`.
//!
//! A connection's life: `Open` → (socket closes) `Grace` → (close + grace passed: judged)
//! `Clean` or `Leaking`; a judged connection moves between the two as its tasks end or spawn,
//! until it is evicted (`Clean` by retention or `max_closed_connections`, `Leaking` beyond
//! `max_leaking_connections`, folded into totals). Nothing is evicted before it is judged.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::event::{Applied, Event};
pub(crate) use super::records::{
    Class, Conn, Counters, Ended, FoldedConn, FoldedTask, HashMap, IdHasher, Task,
};
use super::sites::Sites;
use crate::config::Config;
use crate::heap::slots::{FIRST_CONN_SLOT, SlotTable};
use crate::ids::{ConnId, Tag, TaskId};
use crate::peer::Peer;

pub(crate) struct State {
    pub cfg: Config,
    pub slots: &'static SlotTable,
    next_id: u64,
    next_seq: u64,
    pub conns: HashMap<ConnId, Conn>,
    pub tasks: HashMap<TaskId, Task>,
    slot_conn: Vec<Option<ConnId>>,
    slot_gen: Vec<u32>,
    free_slots: Vec<usize>,
    /// Closed connections by class, oldest first: seq -> id.
    pub(super) grace: BTreeMap<u64, ConnId>,
    pub(super) clean: BTreeMap<u64, ConnId>,
    pub(super) leaking: BTreeMap<u64, ConnId>,
    /// Open connections that got no slot (their close must be counted once).
    no_slot_open: HashSet<ConnId, BuildHasherDefault<IdHasher>>,
    /// Alive tasks of folded or ignored connections.
    pub folded_tasks: HashMap<TaskId, FoldedTask>,
    /// Tags of folded or ignored connections with alive or pending tasks.
    pub folded_tags: HashMap<Tag, FoldedConn>,
    pub warnings: Vec<String>,
    /// Per route and spawn site: what judged connections left behind.
    pub sites: Sites,
    pub counters: Counters,
    pub open_count: u64,
    /// Every eviction as (id, closed_at, judged at, leaking): for the model test.
    #[cfg(test)]
    pub evictions: Vec<(ConnId, u64, u64, bool)>,
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
            slot_conn: vec![None; end],
            slot_gen: vec![0; end],
            free_slots: (FIRST_CONN_SLOT..end).rev().collect(),
            grace: BTreeMap::new(),
            clean: BTreeMap::new(),
            leaking: BTreeMap::new(),
            no_slot_open: HashSet::default(),
            folded_tasks: HashMap::default(),
            folded_tags: HashMap::default(),
            warnings,
            sites: Sites::default(),
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
                reads,
            } => {
                self.maintain(now);
                let (id, tag) = self.open(label, peer, runtime, now);
                if let Some(c) = self.conns.get_mut(&id) {
                    c.reads = reads;
                }
                return Applied::Opened { id, tag };
            }
            Event::Closed { id, reason } => {
                self.close(id, reason, now);
                self.maintain(now);
            }
            Event::Zombie {
                id,
                since_ms,
                reason,
            } => {
                // Closed for the orphan rule from when its peer's close was first seen unread.
                let since = since_ms.min(now);
                if let Some(c) = self.conns.get_mut(&id)
                    && c.class == Class::Open
                {
                    c.zombie_since_ms = Some(since);
                }
                self.close(id, reason, since);
                self.maintain(now);
            }
            Event::Relabelled { id, label } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.label = label;
                }
            }
            Event::PeerSet { id, peer } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.peer = Some(Peer::Text(peer));
                }
            }
            Event::Ignored { id } => self.ignore(id),
            Event::TaskAnnounced { tag, delta } => self.task_announced(tag, delta, now),
            Event::TaskSpawned {
                tag,
                task,
                location,
                info,
                ended: None,
            } => self.task_spawned(tag, task, location, info, now),
            Event::TaskSpawned {
                tag,
                task,
                location,
                info,
                ended: Some(end),
            } => self.task_lived(tag, task, location, info, end, now),
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
        peer: Option<Peer>,
        runtime: Option<u64>,
        now: u64,
    ) -> (ConnId, Tag) {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.counters.opened += 1;
        self.open_count += 1;
        let Some(slot) = self.free_slot(now) else {
            self.counters.no_slot += 1;
            self.no_slot_open.insert(id);
            self.warn(format!(
                "more than {} connections open or awaiting their verdict at once: new ones are \
                 counted (totals.connections_untracked) but not tracked; raise \
                 LEAKSCOPE_MAX_TRACKED",
                self.slots.capacity()
            ));
            return (id, Tag::NONE);
        };
        self.slot_conn[slot] = Some(id);
        let t = Tag::new(slot, self.slot_gen[slot]);
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
                ended: Ended::default(),
                alive_ids: Vec::new(),
                class: Class::Open,
                seq: 0,
                reads: None,
                zombie_since_ms: None,
            },
        );
        (id, t)
    }

    fn close(&mut self, id: ConnId, reason: &'static str, now: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            // Untracked (no slot): count its close once. Ignored or folded: already counted.
            if self.no_slot_open.remove(&id) {
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
        // What its tasks had done by then: later polls say whether an orphan still runs.
        for t in &c.alive_ids {
            if let Some(task) = self.tasks.get_mut(t) {
                task.polls_at_close = crate::tag::task_table::activity(*t).map(|a| a.0);
            }
        }
        self.counters.closed += 1;
        self.open_count -= 1;
        self.set_class(id, Class::Grace);
    }

    /// Forgets a connection's details (the tool's own traffic). An open one counts once as
    /// ignored (never as closed); its alive tasks stay counted until they end, never as orphans.
    fn ignore(&mut self, id: ConnId) {
        if self.no_slot_open.remove(&id) {
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
    pub(crate) fn conn_of_tag(&self, t: Tag) -> Option<ConnId> {
        let slot = t.slot();
        if t.is_none() || slot >= self.slot_gen.len() || Tag::new(slot, self.slot_gen[slot]) != t {
            return None;
        }
        self.slot_conn[slot]
    }

    /// Moves a connection to class `next`, keeping every class queue exact.
    pub(super) fn set_class(&mut self, id: ConnId, next: Class) {
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

    pub(super) fn queue(&mut self, class: Class) -> Option<&mut BTreeMap<u64, ConnId>> {
        match class {
            Class::Open => None,
            Class::Grace => Some(&mut self.grace),
            Class::Clean => Some(&mut self.clean),
            Class::Leaking => Some(&mut self.leaking),
        }
    }

    /// Forgets a connection's details and recycles its slot. Its alive tasks move to the folded
    /// set (as the tool's own if `ignored`), so totals stay exact.
    pub(super) fn remove(&mut self, id: ConnId, ignored: bool) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        if let Some(q) = self.queue(c.class) {
            q.remove(&c.seq);
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
        let slot = c.tag.slot();
        if slot < self.slot_conn.len() && self.slot_conn[slot] == Some(id) {
            // Recycle now: the old owner's live bytes move to the stale bucket, and its late
            // frees go there too (never to the slot's next owner).
            let old = self.slot_gen[slot];
            let next = (old + 1) % Tag::GENERATIONS;
            self.slot_gen[slot] = next;
            self.slots.recycle(slot, old, next);
            self.slot_conn[slot] = None;
            self.free_slots.push(slot);
        }
        // After the recycle: a late event of this connection now finds its tag stale.
        super::logs::forget(c.tag);
    }

    pub(super) fn pop_free_slot(&mut self) -> Option<usize> {
        self.free_slots.pop()
    }

    /// Grows the slot table by a chunk, if the configuration allows.
    pub(super) fn grow_slots(&mut self) -> bool {
        let Some(new) = self.slots.grow() else {
            return false;
        };
        self.slot_conn.resize(new.end, None);
        self.slot_gen.resize(new.end, 0);
        self.free_slots.extend(new.rev());
        true
    }

    /// The size of every internal collection, for the model test's bounds.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> [usize; 8] {
        [
            self.conns.len(),
            self.tasks.len() + self.conns.values().map(|c| c.ended.len()).sum::<usize>(),
            self.grace.len(),
            self.clean.len(),
            self.leaking.len(),
            self.no_slot_open.len(),
            self.folded_tasks.len(),
            self.folded_tags.len(),
        ]
    }

    /// Live bytes charged to a connection now.
    pub(crate) fn live_bytes(&self, c: &Conn) -> u64 {
        self.slots.read(c.tag).live_bytes()
    }
}
