//! The collector's records: connections, tasks, what folded connections leave behind, the
//! exact counters, and the id-keyed maps they live in.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::ids::{ConnId, Site, Tag, TaskId};
use crate::peer::Peer;
use crate::snapshot::EndedBy;
use crate::wrap::watch::ReadWatch;

/// Hashes the `u64` ids this state is keyed by: ids are sequential, not attacker-controlled,
/// and SipHash was the bulk of a tagged spawn's cost. The hash's low bits, which pick a key's
/// bucket, grow with the id (`id + id / 8`): a map iterates its ids in their order (modulo its
/// size), so the snapshot's copy of the tasks is nearly in the order its rows are listed in,
/// and reading them in that order runs through memory instead of jumping. The skipped
/// bucket after every eight ids keeps runs of full buckets short, so removing a key frees its
/// bucket: with no gaps, sequential ids filled whole groups of buckets, each removal left a
/// tombstone, and the tasks' map was rebuilt every 80 spawns (25 instructions per tagged
/// spawn, callgrind). The top 7 bits (hashbrown's tag of a slot) are a multiply's (Fibonacci
/// hashing), so sequential ids do not share a tag. A key of several words mixes each with one
/// multiply.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const FIBONACCI: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let x = self.0;
        x.wrapping_add(x >> 3) ^ (x.wrapping_mul(FIBONACCI) & !(u64::MAX >> 7))
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(FIBONACCI);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = self.0.wrapping_mul(FIBONACCI) ^ v;
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A map keyed by connection or task id.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Where a connection is in its life (see `state.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Open,
    Grace,
    Clean,
    Leaking,
}

pub(crate) struct Conn {
    pub id: ConnId,
    pub tag: Tag,
    pub label: Arc<str>,
    pub peer: Option<Peer>,
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
    /// Its last ended tasks, at most `max_ended_tasks_per_connection`: kept here, not in the
    /// task map, which holds alive tasks only.
    pub ended: Ended,
    /// Ids of its alive tasks (each task knows its position, for O(1) removal).
    pub alive_ids: Vec<TaskId>,
    pub class: Class,
    /// Its key in its class's queue (`Grace`, `Clean`, `Leaking`).
    pub seq: u64,
    /// Its socket's reads, when a wrapper sees them.
    pub reads: Option<Arc<ReadWatch>>,
    /// Closed as a zombie: its peer left at this time (first seen) and nobody read.
    pub zombie_since_ms: Option<u64>,
}

impl Conn {
    /// Closed and past its grace period: its class follows its tasks and bytes.
    pub(crate) fn is_judged(&self) -> bool {
        matches!(self.class, Class::Clean | Class::Leaking)
    }
}

pub(crate) struct Task {
    pub id: TaskId,
    pub conn_id: ConnId,
    pub name: Option<Arc<str>>,
    pub location: Site,
    pub spawned_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    pub ended_by: Option<EndedBy>,
    pub detached: bool,
    pub blocking: bool,
    pub wrapped: bool,
    /// Position in its connection's `alive_ids` while alive.
    pub alive_pos: usize,
    /// Its polls when its connection closed (0 for a task spawned after the close).
    pub polls_at_close: Option<u64>,
}

/// A connection's last ended tasks: a ring that overwrites its oldest once full (one record
/// written per end, no hashing, no shifting).
pub(crate) struct Ended {
    ring: Vec<Task>,
    /// Where the next one goes once the ring is full (its oldest).
    next: usize,
    /// The lowest and highest task id it ever held: a lookup by id skips rings that cannot
    /// hold it.
    lo: u64,
    hi: u64,
}

impl Default for Ended {
    fn default() -> Self {
        Ended {
            ring: Vec::new(),
            next: 0,
            lo: u64::MAX,
            hi: 0,
        }
    }
}

impl Ended {
    /// Keeps `t`, forgetting the oldest if `keep` are kept already (none if `keep` is 0).
    pub(crate) fn push(&mut self, t: Task, keep: usize) {
        let id = t.id.0;
        if self.ring.len() < keep {
            if self.ring.is_empty() {
                self.ring.reserve_exact(keep);
            }
            self.ring.push(t);
        } else if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = t;
            // (A compare, not a division.)
            self.next = if self.next + 1 == self.ring.len() {
                0
            } else {
                self.next + 1
            };
        } else {
            return;
        }
        self.lo = self.lo.min(id);
        self.hi = self.hi.max(id);
    }

    /// Whether task `id` may be among these (never a false "no").
    pub(crate) fn may_hold(&self, id: u64) -> bool {
        (self.lo..=self.hi).contains(&id)
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Task> {
        let (new, old) = self.ring.split_at(self.next.min(self.ring.len()));
        old.iter().chain(new)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }
}

/// An alive task whose connection's details are gone (folded or ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FoldedTask {
    pub tag: Tag,
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
    pub no_slot: u64,
    pub evicted: u64,
    pub spawned: u64,
    pub ended: u64,
    /// Connections folded into totals while leaking (their verdict at that moment).
    pub folded_leaking: u64,
    /// Of those, the ones retaining more than the threshold.
    pub folded_leaking_memory: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn task(id: u64) -> Task {
        Task {
            id: TaskId(id),
            conn_id: ConnId(1),
            name: None,
            location: Site::new("f.rs", 1, 1),
            spawned_at_ms: 0,
            ended_at_ms: Some(0),
            ended_by: None,
            detached: false,
            blocking: false,
            wrapped: false,
            alive_pos: 0,
            polls_at_close: None,
        }
    }

    #[test]
    fn the_ended_ring_keeps_the_last_ones_oldest_first() {
        for keep in 0..5 {
            let mut e = Ended::default();
            for id in 1..=12u64 {
                e.push(task(id), keep);
                let got: Vec<u64> = e.iter().map(|t| t.id.0).collect();
                let from = (id + 1).saturating_sub(keep as u64).max(1);
                let want: Vec<u64> = (from..=id).collect();
                assert_eq!(got, want, "keep {keep} after {id}");
                assert_eq!(e.len(), want.len());
                for t in 0..=13 {
                    if want.contains(&t) {
                        assert!(e.may_hold(t), "keep {keep}: {t} may be held");
                    }
                }
                assert!(
                    !e.may_hold(13) && !e.may_hold(0),
                    "keep {keep}: ids never held"
                );
            }
        }
    }

    #[test]
    fn a_map_of_ids_iterates_them_in_order_and_slots_get_distinct_tags() {
        // The snapshot's copy relies on this for its speed: ids in order, from the lowest
        // bucket on (the ids here fill less than one lap of the table).
        let map: HashMap<TaskId, ()> = (1_000..1_100).map(|i| (TaskId(i), ())).collect();
        let ids: Vec<u64> = map.keys().map(|t| t.0).collect();
        let mut wrapped = ids.clone();
        let lowest = ids.iter().position(|&i| i == 1_000).unwrap();
        wrapped.rotate_left(lowest);
        assert_eq!(wrapped, (1_000..1_100).collect::<Vec<_>>());
        // hashbrown's tag is the hash's top 7 bits: sequential ids spread over them.
        let build = BuildHasherDefault::<IdHasher>::default();
        let tags: std::collections::HashSet<u64> = (0..1_000u64)
            .map(|i| build.hash_one(TaskId(i)) >> 57)
            .collect();
        assert!(tags.len() > 100, "{} distinct tags", tags.len());
        // A key of several words still depends on each.
        assert_ne!(
            build.hash_one((1u64, 2usize)),
            build.hash_one((2u64, 1usize))
        );
    }
}
