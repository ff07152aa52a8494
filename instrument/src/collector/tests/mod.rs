//! The collector against a simple reference model, driven by random interleavings of every
//! event (opens, closes, ignores, spawns, ends, announcements, allocations and frees from other
//! threads after close, slot recycling) with tiny caps, a tiny slot table and two generation
//! bits in the counter words. After every step the invariants of ARCHITECTURE.md are checked:
//! totals exact, nothing lost, nothing invented, everything bounded.

mod model;
mod ops;

use proptest::prelude::*;

use super::event::Event;
use super::frozen::{Frozen, Which};
use crate::snapshot::{Mode, Snapshot};
use model::{MConn, MTask, Model};
use ops::{Op, op};

const GRACE: u64 = 10;
const THRESHOLD: u64 = 100;
const SLOTS: usize = 6;
const MAX_CLOSED: usize = 2;
const MAX_LEAKING: usize = 2;
const MAX_ENDED: usize = 2;

impl Model {
    /// Mirrors the route history: connections judged (past grace while tracked), and those
    /// judged with an alive attached task.
    fn judge(&mut self) {
        for k in 0..self.conns.len() {
            let c = &self.conns[k];
            if c.judged || c.ignored || c.tag.is_none() || !self.past_grace(c) {
                continue;
            }
            let leaked = self
                .tasks
                .iter()
                .any(|m| m.conn == k && m.alive && !m.detached && !m.tag.is_none());
            self.conns[k].judged = true;
            self.judged += 1;
            self.leaked += u64::from(leaked);
        }
    }

    fn snapshot(&mut self) -> Snapshot {
        self.st.apply(Event::Tick, self.now);
        Frozen::copy(&self.st, self.now, Which::All, true).build(Mode::Hooks)
    }

    fn past_grace(&self, c: &MConn) -> bool {
        c.closed_at.is_some_and(|t| self.now - t > GRACE)
    }

    /// The model's truth for a connection whose details are listed.
    fn bytes_of(&self, k: usize) -> u64 {
        let tag = self.conns[k].tag;
        let b = self.blocks.iter().filter(|b| b.conn == k && b.tag == tag);
        b.map(|b| b.bytes).sum()
    }

    fn check(&mut self) {
        self.judge();
        let s = self.snapshot();
        let t = &s.totals;
        // Totals exact.
        assert_eq!(
            t.connections_opened,
            t.open_connections + t.connections_closed + t.connections_ignored,
            "opened = open + closed + ignored: {t:?}"
        );
        assert_eq!(t.tasks_spawned, t.live_tasks + t.tasks_ended, "{t:?}");
        let counted = |m: &MTask| !m.tag.is_none();
        let spawned = self.tasks.iter().filter(|m| counted(m)).count() as u64;
        let alive = self.tasks.iter().filter(|m| counted(m) && m.alive).count() as u64;
        assert_eq!(t.tasks_spawned, spawned, "spawned");
        assert_eq!(t.live_tasks, alive, "alive");
        // A single site and route: its one leak is shared once 3 other connections were judged
        // (for listed connections; folded ones' tasks stay orphans).
        let shared_site = self.leaked == 1 && self.judged > 3;
        let past: Vec<&MTask> = self
            .tasks
            .iter()
            .filter(|m| m.alive && !m.detached && counted(m))
            .filter(|m| !self.conns[m.conn].ignored && self.past_grace(&self.conns[m.conn]))
            .collect();
        let listed = |m: &MTask| self.st.conns.contains_key(&self.conns[m.conn].id);
        let shared = past.iter().filter(|m| shared_site && listed(m)).count() as u64;
        assert_eq!(t.orphan_tasks, past.len() as u64 - shared, "orphans exact");
        assert_eq!(t.shared_tasks, shared, "shared tasks exact");
        assert_eq!(t.connections_opened, self.conns.len() as u64);
        // Counters never decrease.
        let p = &self.prev;
        for (now, before, name) in [
            (t.connections_opened, p.connections_opened, "opened"),
            (t.connections_closed, p.connections_closed, "closed"),
            (t.connections_ignored, p.connections_ignored, "ignored"),
            (t.connections_evicted, p.connections_evicted, "evicted"),
            (
                t.connections_untracked,
                p.connections_untracked,
                "untracked",
            ),
            (t.tasks_spawned, p.tasks_spawned, "spawned"),
            (t.tasks_ended, p.tasks_ended, "ended"),
            (
                t.connections_folded_leaking,
                p.connections_folded_leaking,
                "folded",
            ),
        ] {
            assert!(now >= before, "{name} went back from {before} to {now}");
        }
        self.prev = t.clone();
        // Nothing invented, nothing lost: every listed connection shows the model's truth.
        for (k, m) in self.conns.iter().enumerate() {
            let Some(c) = s.connection(m.id.0) else {
                continue;
            };
            assert!(!m.ignored, "an ignored connection is never listed");
            assert_eq!(c.live_bytes, self.bytes_of(k), "live bytes of {:?}", m.id);
            let mine = |x: &&MTask| x.conn == k && x.alive && counted(x);
            let alive_attached = self
                .tasks
                .iter()
                .filter(mine)
                .filter(|x| !x.detached)
                .count();
            // Listed, so its tasks past grace are shared when the site is.
            let want = if self.past_grace(m) && !shared_site {
                alive_attached
            } else {
                0
            };
            assert_eq!(c.orphan_tasks, want as u64, "orphans of {:?}", m.id);
            let leaking_memory = self.past_grace(m) && self.bytes_of(k) > THRESHOLD;
            assert_eq!(
                c.leaking_memory, leaking_memory,
                "memory verdict of {}",
                m.id
            );
        }
        // Bytes are conserved: every live block is some connection's, stale or untagged.
        let live: u64 = self.blocks.iter().map(|b| b.bytes).sum();
        let h = &s.heap;
        assert_eq!(
            h.connection_live_bytes + h.evicted_live_bytes + h.untagged_live_bytes,
            live,
            "heap conservation"
        );
        // No connection evicted before its verdict was final.
        for &(id, closed, at, _) in &self.st.evictions {
            assert!(
                at > closed + GRACE,
                "connection {id} evicted before its verdict"
            );
        }
        // Bounded by configuration and live state.
        let [
            conns,
            tasks,
            grace,
            clean,
            leaking,
            no_slot,
            folded_tasks,
            folded_tags,
        ] = self.st.sizes();
        assert!(conns <= SLOTS, "{conns} connections kept, {SLOTS} slots");
        assert!(clean <= MAX_CLOSED && leaking <= MAX_LEAKING);
        let open = conns - grace - clean - leaking;
        assert_eq!(
            open as u64 + no_slot as u64,
            t.open_connections,
            "class queues exact"
        );
        assert!(
            tasks <= alive as usize + conns * MAX_ENDED,
            "{tasks} task records"
        );
        assert!(folded_tasks <= alive as usize);
        assert!(folded_tags <= folded_tasks + self.announced.len());
        assert_eq!(s.connections.len(), conns);
    }
}

/// A snapshot as JSON without what comes from the process's shared sample table (other tests
/// allocate into it): the state's part.
fn of_state(s: &Snapshot) -> serde_json::Value {
    let mut v = serde_json::to_value(s).expect("a snapshot serializes");
    if let Some(o) = v.as_object_mut() {
        o.remove("signatures");
        if let Some(h) = o.get_mut("heap").and_then(|h| h.as_object_mut()) {
            h.remove("live_samples");
            h.remove("samples_dropped");
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_collector_matches_its_model(ops in proptest::collection::vec(op(), 1..160)) {
        let mut m = Model::new();
        for op in ops {
            m.step(op);
            m.check();
        }
    }

    /// A `TaskSpawned` with its end folded in changes the state exactly as the spawn and the end
    /// would: every
    /// field of the full snapshot, after every step.
    #[test]
    fn a_folded_spawn_and_end_is_the_two_events(ops in proptest::collection::vec(op(), 1..160)) {
        let (mut folded, mut apart) = (Model::new(), Model::new());
        apart.fold = false;
        for op in ops {
            folded.step(op.clone());
            apart.step(op);
            let (a, b) = (folded.snapshot(), apart.snapshot());
            prop_assert_eq!(of_state(&a), of_state(&b));
        }
    }
}

/// Regression (issue 8, defect 1): clean connections beyond `max_closed` must not push a leak
/// out before its grace period has passed.
#[test]
fn a_leak_among_many_fast_clean_closes_is_still_judged() {
    let mut m = Model::new();
    m.step(Op::Open);
    m.step(Op::Alloc {
        by_task: None,
        conn: 0,
        bytes: 500,
    });
    m.step(Op::Close(0));
    for i in 1..5 {
        m.step(Op::Open);
        m.step(Op::Close(i));
    }
    m.step(Op::Advance(GRACE + 1));
    let s = m.snapshot();
    let leak = s
        .connection(m.conns[0].id.0)
        .expect("the leak is still listed");
    assert!(leak.leaking_memory);
    assert_eq!(s.totals.connections_leaking_memory, 1);
}

/// Regression (issue 8, defect 4): ignoring a connection, then its owner's close, counts it
/// once and no counter goes back.
#[test]
fn ignore_then_close_counts_once() {
    let mut m = Model::new();
    m.step(Op::Open);
    m.step(Op::Ignore(0));
    m.step(Op::Close(0));
    m.check();
    let s = m.snapshot();
    assert_eq!(
        (
            s.totals.connections_opened,
            s.totals.connections_closed,
            s.totals.connections_ignored
        ),
        (1, 0, 1)
    );
}

/// Regression (issue 8, defect 2): connections going leaking → clean → leaking leave no
/// queue entries behind.
#[test]
fn class_queues_hold_exactly_their_connections() {
    let mut m = Model::new();
    m.step(Op::Open);
    for _ in 0..100 {
        m.step(Op::Spawn {
            conn: 0,
            detached: true,
        });
    }
    m.step(Op::Close(0));
    m.step(Op::Advance(GRACE + 1));
    for k in 0..100 {
        m.step(Op::SpawnChild {
            task: k,
            detached: false,
        });
        let child = m.tasks.len() - 1;
        m.step(Op::End {
            task: child,
            how: 0,
        });
        m.check();
    }
    let [_, _, grace, clean, leaking, ..] = m.st.sizes();
    assert_eq!(grace + clean + leaking, 1);
}

/// Ended tasks live in their connection's ring, not the task map: a lookup by id, the
/// connection's page and the full snapshot all still find the last `MAX_ENDED` of them (the
/// oldest forgotten), whether each end came apart or folded into its spawn, while the
/// connection is open, closed and judged; once it is evicted, none.
#[test]
fn ended_tasks_are_found_by_id_with_their_connection_and_in_full() {
    for fold in [false, true] {
        let mut m = Model::new();
        m.fold = fold;
        m.step(Op::Open);
        for _ in 0..4 {
            m.step(Op::Spawn {
                conn: 0,
                detached: false,
            });
            let task = m.tasks.len() - 1;
            m.step(Op::End { task, how: 0 });
            m.step(Op::SpawnEnded {
                conn: 0,
                parent: None,
                detached: false,
                how: 1,
                later: 1,
                flags: 0,
                register: None,
            });
        }
        m.step(Op::Spawn {
            conn: 0,
            detached: false,
        });
        let ids: Vec<u64> = m.tasks.iter().map(|t| t.id.0).collect();
        let mut want: Vec<u64> = ids[ids.len() - 1 - MAX_ENDED..].to_vec();
        let check = |m: &mut Model, want: &[u64], when: &str| {
            let now = m.now;
            let view = |which| Frozen::copy(&m.st, now, which, true).build(Mode::Hooks);
            for &id in &ids {
                let found = view(Which::Task(id)).tasks.iter().any(|t| t.id == id);
                assert_eq!(
                    found,
                    want.contains(&id),
                    "task {id} by id, {when} (fold {fold})"
                );
            }
            let conn = m.conns[0].id.0;
            let mut listed: Vec<u64> = view(Which::Conn(conn)).tasks.iter().map(|t| t.id).collect();
            let mut full: Vec<u64> = m.snapshot().tasks.iter().map(|t| t.id).collect();
            listed.sort_unstable();
            full.sort_unstable();
            assert_eq!(listed, want, "the connection's page, {when} (fold {fold})");
            assert_eq!(full, want, "the full snapshot, {when} (fold {fold})");
        };
        check(&mut m, &want, "open");
        m.step(Op::Close(0));
        check(&mut m, &want, "closed");
        m.step(Op::Advance(GRACE + 1));
        m.snapshot(); // (applies the grace rule)
        assert!(m.st.conns.values().any(|c| c.is_judged()), "judged, kept");
        check(&mut m, &want, "judged");
        // Its last task ends: the oldest kept one is forgotten.
        let last = m.tasks.len() - 1;
        m.step(Op::End { task: last, how: 0 });
        want.remove(0);
        check(&mut m, &want, "judged, all ended");
        // Clean past retention: evicted, with its tasks.
        m.step(Op::Advance(3 * GRACE));
        m.snapshot();
        assert!(m.st.conns.is_empty(), "evicted");
        check(&mut m, &[], "evicted");
    }
}
