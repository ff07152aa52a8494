//! The grace, retention and capacity rules: when a closed connection is judged, when it is
//! evicted, and what is folded into the totals. Cheap when nothing is due: each rule looks at
//! the oldest entry of one queue.
//!
//! - `Grace` connections are judged once `closed + grace` has passed: `Leaking` if a task that
//!   may become an orphan is alive (or an explicit-spawn task has not started yet) or more
//!   than the threshold of bytes is still live, `Clean` otherwise. They are never evicted
//!   before that, whatever the caps.
//! - `Clean` connections are evicted after `max(retention, grace)` or beyond
//!   `max_closed_connections`, oldest first; one found retaining bytes then turns `Leaking`.
//! - `Leaking` connections beyond `max_leaking_connections` are folded, oldest first: their
//!   details go, their alive tasks stay counted (`FoldedTask`) and the connection is counted
//!   in `Counters::folded_leaking`.
//! - When a connection opens and no slot is free, the oldest judged clean connection gives up
//!   its slot; with none, the table grows by a chunk (up to `max_tracked_connections`); then
//!   the oldest leaking one is folded; only when every slot is open or in grace is the new
//!   connection left without a slot (counted, and a warning says so).

use super::state::{Class, State};
use crate::ids::{ConnId, Site};

impl State {
    fn grace_ms(&self) -> u64 {
        self.cfg.grace.as_millis() as u64
    }

    /// Whether a closed connection is leaking now (tasks, pending tasks or bytes).
    fn is_leaking(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| {
            c.alive_attached > 0
                || c.pending > 0
                || self.live_bytes(c) > self.cfg.retained_bytes_threshold
        })
    }

    /// Re-judges a judged connection after one of its tasks spawned or ended.
    pub(super) fn rejudge(&mut self, id: ConnId, _now: u64) {
        let Some(c) = self.conns.get(&id) else { return };
        if matches!(c.class, Class::Clean | Class::Leaking) {
            let next = if self.is_leaking(id) {
                Class::Leaking
            } else {
                Class::Clean
            };
            self.set_class(id, next);
        }
    }

    /// Applies the rules at time `now`.
    pub(crate) fn maintain(&mut self, now: u64) {
        let grace = self.grace_ms();
        // 1. Judge every connection whose grace period has passed.
        while let Some((_, &id)) = self.grace.first_key_value() {
            let closed = self.conns.get(&id).and_then(|c| c.closed_at_ms);
            if closed.is_some_and(|c| now.saturating_sub(c) <= grace) {
                break;
            }
            let next = if self.is_leaking(id) {
                Class::Leaking
            } else {
                Class::Clean
            };
            self.record_verdict(id, now);
            self.set_class(id, next);
        }
        // 2. Clean ones: retention and cap.
        let keep = (self.cfg.retention.as_millis() as u64).max(grace);
        while let Some((_, &id)) = self.clean.first_key_value() {
            let closed = self
                .conns
                .get(&id)
                .and_then(|c| c.closed_at_ms)
                .unwrap_or(0);
            let expired = now.saturating_sub(closed) > keep;
            if !expired && self.clean.len() <= self.cfg.max_closed_connections {
                break;
            }
            self.evict_judged(id, now);
        }
        // 3. Leaking ones beyond their cap are folded.
        while self.leaking.len() > self.cfg.max_leaking_connections {
            let Some((_, &id)) = self.leaking.first_key_value() else {
                break;
            };
            self.evict_judged(id, now);
        }
    }

    /// Remembers, per route and spawn site, what a connection being judged left behind.
    fn record_verdict(&mut self, id: ConnId, now: u64) {
        let Some(c) = self.conns.get(&id) else { return };
        let mut leaked_from: Vec<Site> = c
            .alive_ids
            .iter()
            .filter_map(|t| self.tasks.get(t))
            .filter(|t| !t.detached)
            .map(|t| t.location)
            .collect();
        leaked_from.sort_unstable_by_key(|l| (l.file(), l.line(), l.to_string()));
        leaked_from.dedup();
        let label = c.label.clone();
        if self.sites.judged(id, &label, &leaked_from, now) {
            self.warn(format!(
                "more than {} routes or {} spawn sites per route: leak signatures stop \
                 tracking new ones (their orphans stay orphans)",
                super::sites::MAX_LABELS,
                super::sites::MAX_SITES
            ));
        }
    }

    /// Evicts a judged connection: a clean one that turned out to retain bytes becomes
    /// leaking instead (and is evicted only if the leaking cap requires it).
    fn evict_judged(&mut self, id: ConnId, now: u64) {
        let Some(c) = self.conns.get(&id) else { return };
        let (class, closed) = (c.class, c.closed_at_ms.unwrap_or(0));
        let leaking = self.is_leaking(id);
        if class == Class::Clean && leaking {
            self.set_class(id, Class::Leaking);
            return;
        }
        // Folded by the verdict the snapshot would show: orphan tasks or retained bytes.
        let (orphans, memory) = self.conns.get(&id).map_or((false, false), |c| {
            let memory = self.live_bytes(c) > self.cfg.retained_bytes_threshold;
            (c.alive_attached > 0, memory)
        });
        if orphans || memory {
            self.counters.folded_leaking += 1;
            self.counters.folded_leaking_memory += u64::from(memory);
        }
        #[cfg(test)]
        self.evictions.push((id, closed, now, orphans || memory));
        let _ = (closed, now);
        self.counters.evicted += 1;
        self.remove(id, false);
    }

    /// A slot for a new connection: a free one, else the one of the oldest judged connection
    /// (clean first, then leaking, which is folded into the totals).
    pub(super) fn free_slot(&mut self, now: u64) -> Option<usize> {
        if let Some(s) = self.pop_free_slot() {
            return Some(s);
        }
        loop {
            let clean = self.clean.first_key_value().map(|(_, &id)| id);
            if clean.is_none() && self.grow_slots() {
                return self.pop_free_slot();
            }
            let victim = clean.or_else(|| self.leaking.first_key_value().map(|(_, &id)| id))?;
            let was_clean = self.conns.get(&victim).map(|c| c.class) == Some(Class::Clean);
            if was_clean && self.is_leaking(victim) {
                // Retains bytes after all: judge it leaking; the loop then folds it if no
                // clean one is left.
                self.set_class(victim, Class::Leaking);
                continue;
            }
            self.evict_judged(victim, now);
            if let Some(s) = self.pop_free_slot() {
                return Some(s);
            }
        }
    }
}
