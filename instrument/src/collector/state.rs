//! The collector's state and its bounded-memory rules.
//!
//! Memory stays bounded by configuration:
//! - open connections and alive tasks are kept (they cost the user far more than their record);
//! - a closed connection that leaks nothing is *clean*: kept for `retention`, at most
//!   `max_closed_connections` of them, oldest evicted first;
//! - a closed connection with alive tasks or retained bytes is *leaking*: kept with details up
//!   to `max_leaking_connections`; beyond that the oldest is evicted and its alive tasks are
//!   folded into an id set (8 bytes each) so the totals stay exact;
//! - per connection, the details of at most `max_ended_tasks_per_connection` ended tasks.

use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;

use super::SpawnInfo;
use crate::clock::{coarse_ms, now_ms};
use crate::config::Config;
use crate::slots::{self, FIRST_CONN_SLOT, MAX_SLOTS};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Open,
    Clean,
    Leaking,
}

pub(crate) struct Conn {
    pub id: u64,
    pub tag: u64,
    pub label: String,
    pub peer: Option<String>,
    pub opened_at_ms: u64,
    pub closed_at_ms: Option<u64>,
    pub close_reason: Option<&'static str>,
    /// Alive tasks, detached ones included.
    pub alive: u64,
    /// Alive tasks that may become orphans (not detached).
    pub alive_attached: u64,
    /// Tasks spawned with `leakscope::spawn` in explicit-spawn mode that have not been polled
    /// yet (they register from inside, on their first poll): they keep the connection from
    /// counting as clean.
    pub pending: u64,
    pub spawned: u64,
    pub ended: VecDeque<u64>,
    /// Ids of its alive tasks (each task knows its position, for O(1) removal).
    pub alive_ids: Vec<u64>,
    pub class: Class,
}

pub(crate) struct Task {
    pub id: u64,
    pub conn_id: u64,
    pub name: Option<Box<str>>,
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

pub(crate) struct State {
    pub cfg: Config,
    next_id: u64,
    pub conns: HashMap<u64, Conn>,
    pub tasks: HashMap<u64, Task>,
    slot_conn: Vec<u64>,
    slot_gen: Vec<u32>,
    free_slots: Vec<usize>,
    clean_queue: VecDeque<u64>,
    leaking_queue: VecDeque<u64>,
    clean_count: usize,
    leaking_count: usize,
    /// Alive tasks of evicted connections: task id -> (tag, detached).
    pub evicted_tasks: HashMap<u64, (u64, bool)>,
    /// Tags of evicted connections with alive (or not yet registered) tasks, which may still
    /// spawn children -> (alive, pending).
    evicted_tags: HashMap<u64, (u64, u64)>,
    pub warnings: Vec<String>,
    pub opened: u64,
    pub closed: u64,
    pub spawned: u64,
    pub evicted: u64,
    pub untracked: u64,
    pub open_count: u64,
}

impl State {
    pub(crate) fn new(cfg: Config, warnings: Vec<String>) -> Self {
        State {
            cfg,
            next_id: 1,
            conns: HashMap::default(),
            tasks: HashMap::default(),
            slot_conn: vec![0; MAX_SLOTS],
            slot_gen: vec![0; MAX_SLOTS],
            free_slots: (FIRST_CONN_SLOT..MAX_SLOTS).rev().collect(),
            clean_queue: VecDeque::new(),
            leaking_queue: VecDeque::new(),
            clean_count: 0,
            leaking_count: 0,
            evicted_tasks: HashMap::default(),
            evicted_tags: HashMap::default(),
            warnings,
            opened: 0,
            closed: 0,
            spawned: 0,
            evicted: 0,
            untracked: 0,
            open_count: 0,
        }
    }

    pub(crate) fn warn(&mut self, msg: String) {
        if self.warnings.len() < 32 && !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub(crate) fn open(&mut self, label: &str, peer: Option<String>) -> (u64, u64) {
        let now = now_ms();
        self.maintain(now);
        let id = self.next_id;
        self.next_id += 1;
        self.opened += 1;
        self.open_count += 1;
        let Some(slot) = self.free_slots.pop() else {
            self.untracked += 1;
            self.warn(format!(
                "more than {} connections tracked at once: new ones are counted but not \
                 tracked; lower the retention or the caps",
                MAX_SLOTS - FIRST_CONN_SLOT
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
                label: label.to_owned(),
                peer,
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
            },
        );
        (id, t)
    }

    pub(crate) fn set_label(&mut self, id: u64, label: &str) {
        if let Some(c) = self.conns.get_mut(&id) {
            label.clone_into(&mut c.label);
        }
    }

    pub(crate) fn set_peer(&mut self, id: u64, peer: String) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.peer = Some(peer);
        }
    }

    pub(crate) fn close(&mut self, id: u64, reason: &'static str) {
        let now = now_ms();
        let Some(c) = self.conns.get_mut(&id) else {
            // Untracked (no slot) or already evicted: keep the totals exact anyway.
            if id < self.next_id {
                self.closed += 1;
                self.open_count = self.open_count.saturating_sub(1);
            }
            return;
        };
        if c.closed_at_ms.is_some() {
            return;
        }
        c.closed_at_ms = Some(now);
        c.close_reason = Some(reason);
        self.closed += 1;
        self.open_count = self.open_count.saturating_sub(1);
        self.reclassify(id);
        self.maintain(now);
    }

    /// Drops a connection as if it had never been tracked (the dashboard's own requests).
    pub(crate) fn ignore(&mut self, id: u64) {
        let Some(c) = self.conns.get(&id) else { return };
        let (closed, class) = (c.closed_at_ms.is_some(), c.class);
        match class {
            Class::Clean => self.clean_count -= 1,
            Class::Leaking => self.leaking_count -= 1,
            Class::Open => {}
        }
        self.opened = self.opened.saturating_sub(1);
        if closed {
            self.closed = self.closed.saturating_sub(1);
        } else {
            self.open_count = self.open_count.saturating_sub(1);
        }
        self.spawned = self.spawned.saturating_sub(c.spawned);
        // Its tasks are forgotten too: they were the tool's, not the app's.
        self.evict(id, false);
        self.evicted = self.evicted.saturating_sub(1);
    }

    pub(crate) fn conn_of_tag(&self, t: u64) -> Option<u64> {
        let slot = tag::slot_of(t);
        if t == tag::UNTAGGED || slot >= MAX_SLOTS || tag::make(slot, self.slot_gen[slot]) != t {
            return None;
        }
        Some(self.slot_conn[slot]).filter(|&id| id != 0)
    }

    /// An explicit-spawn task was created for tag `t`; it registers on its first poll.
    pub(crate) fn task_pending(&mut self, t: u64, delta: i64) {
        let conn = self.conn_of_tag(t).filter(|id| self.conns.contains_key(id));
        let Some(id) = conn else {
            if let Some(e) = self.evicted_tags.get_mut(&t) {
                e.1 = e.1.saturating_add_signed(delta);
                self.forget_evicted_tag_if_done(t);
            }
            return;
        };
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.pending = c.pending.saturating_add_signed(delta);
        if c.closed_at_ms.is_some() {
            self.reclassify(id);
        }
    }

    pub(crate) fn task_spawned(
        &mut self,
        t: u64,
        task: u64,
        location: &'static Location<'static>,
        info: SpawnInfo,
    ) {
        let conn = self.conn_of_tag(t).and_then(|id| self.conns.get_mut(&id));
        let Some(c) = conn else {
            if let Some(e) = self.evicted_tags.get_mut(&t) {
                e.0 += 1;
                if info.was_pending {
                    e.1 = e.1.saturating_sub(1);
                }
                self.spawned += 1;
                self.evicted_tasks.insert(task, (t, info.detached));
            }
            return;
        };
        self.spawned += 1;
        c.spawned += 1;
        c.alive += 1;
        if info.was_pending {
            c.pending = c.pending.saturating_sub(1);
        }
        if !info.detached {
            c.alive_attached += 1;
        }
        let (conn_id, closed) = (c.id, c.closed_at_ms.is_some());
        let alive_pos = c.alive_ids.len();
        c.alive_ids.push(task);
        self.tasks.insert(
            task,
            Task {
                id: task,
                conn_id,
                name: info.name,
                location,
                spawned_at_ms: coarse_ms(),
                ended_at_ms: None,
                ended_by: None,
                detached: info.detached,
                blocking: info.blocking,
                wrapped: info.wrapped,
                alive_pos,
            },
        );
        if closed {
            self.reclassify(conn_id);
        }
    }

    pub(crate) fn task_ended(&mut self, task: u64, ended_by: EndedBy) {
        if let Some((t, _)) = self.evicted_tasks.remove(&task) {
            if let Some(e) = self.evicted_tags.get_mut(&t) {
                e.0 = e.0.saturating_sub(1);
                self.forget_evicted_tag_if_done(t);
            }
            return;
        }
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        if t.ended_at_ms.is_some() {
            return;
        }
        t.ended_at_ms = Some(coarse_ms());
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
        c.alive = c.alive.saturating_sub(1);
        if !detached {
            c.alive_attached = c.alive_attached.saturating_sub(1);
        }
        c.ended.push_back(task);
        let closed = c.closed_at_ms.is_some();
        while c.ended.len() > keep {
            if let Some(old) = c.ended.pop_front() {
                self.tasks.remove(&old);
            }
        }
        if closed {
            self.reclassify(conn_id);
        }
    }

    fn forget_evicted_tag_if_done(&mut self, t: u64) {
        if self.evicted_tags.get(&t) == Some(&(0, 0)) {
            self.evicted_tags.remove(&t);
        }
    }

    fn live_bytes(&self, c: &Conn) -> u64 {
        slots::read(c.tag).live_bytes()
    }

    /// Moves a closed connection between the clean and leaking classes.
    fn reclassify(&mut self, id: u64) {
        let Some(c) = self.conns.get(&id) else { return };
        if c.closed_at_ms.is_none() {
            return;
        }
        let leaking = c.alive_attached + c.pending > 0;
        let next = if leaking {
            Class::Leaking
        } else {
            Class::Clean
        };
        self.set_class(id, next);
    }

    fn set_class(&mut self, id: u64, next: Class) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.class == next {
            return;
        }
        match c.class {
            Class::Clean => self.clean_count -= 1,
            Class::Leaking => self.leaking_count -= 1,
            Class::Open => {}
        }
        c.class = next;
        match next {
            Class::Clean => {
                self.clean_count += 1;
                self.clean_queue.push_back(id);
            }
            Class::Leaking => {
                self.leaking_count += 1;
                self.leaking_queue.push_back(id);
            }
            Class::Open => {}
        }
    }

    /// Applies the retention and capacity rules. Cheap when nothing is due.
    pub(crate) fn maintain(&mut self, now: u64) {
        let retention = self.cfg.retention.as_millis() as u64;
        let grace = self.cfg.grace.as_millis() as u64;
        let threshold = self.cfg.retained_bytes_threshold;
        while let Some(&id) = self.clean_queue.front() {
            let Some(c) = self.conns.get(&id) else {
                self.clean_queue.pop_front();
                continue;
            };
            if c.class != Class::Clean {
                self.clean_queue.pop_front();
                continue;
            }
            let closed = c.closed_at_ms.unwrap_or(now);
            let expired = now.saturating_sub(closed) > retention.max(grace);
            if !expired && self.clean_count <= self.cfg.max_closed_connections {
                break;
            }
            self.clean_queue.pop_front();
            // Past its grace period a clean connection that still holds bytes is leaking memory.
            if now.saturating_sub(closed) > grace && self.live_bytes(c) > threshold {
                self.set_class(id, Class::Leaking);
                continue;
            }
            self.clean_count -= 1;
            self.evict(id, true);
        }
        while self.leaking_count > self.cfg.max_leaking_connections {
            let Some(id) = self.leaking_queue.pop_front() else {
                break;
            };
            let Some(c) = self.conns.get(&id) else {
                continue;
            };
            if c.class != Class::Leaking {
                continue;
            }
            self.leaking_count -= 1;
            self.evict(id, true);
        }
    }

    /// Forgets a closed connection's details; its alive tasks stay counted if `count_alive`.
    fn evict(&mut self, id: u64, count_alive: bool) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        self.evicted += 1;
        for t in c.ended {
            self.tasks.remove(&t);
        }
        if (!c.alive_ids.is_empty() || c.pending > 0) && count_alive {
            self.evicted_tags
                .insert(c.tag, (c.alive_ids.len() as u64, c.pending));
        }
        for t in &c.alive_ids {
            if let Some(task) = self.tasks.remove(t)
                && count_alive
            {
                self.evicted_tasks.insert(*t, (c.tag, task.detached));
            }
        }
        // Recycle the slot now: its live bytes move to the stale bucket and late frees of this
        // connection's memory go there too.
        let slot = tag::slot_of(c.tag);
        if slot < MAX_SLOTS && self.slot_conn[slot] == id {
            let g = self.slot_gen[slot].wrapping_add(1);
            self.slot_gen[slot] = g;
            slots::recycle(slot, c.tag, g);
            self.slot_conn[slot] = 0;
            self.free_slots.push(slot);
        }
    }
}
