//! The reference model: what the collector should know after each event, kept the simple way
//! (every connection, task and block ever seen, in vectors).

use std::panic::Location;
use std::time::Duration;

use proptest::prelude::*;

use super::{GRACE, MAX_CLOSED, MAX_ENDED, MAX_LEAKING, SLOTS, THRESHOLD};
use crate::collector::event::{Applied, Event, SpawnInfo};
use crate::collector::state::State;
use crate::config::Config;
use crate::heap::slots::{Delta, SlotTable};
use crate::ids::{ConnId, Tag, TaskId};
use crate::snapshot::{EndedBy, Totals};

#[derive(Debug, Clone)]
pub(super) enum Op {
    Open,
    Close(usize),
    Ignore(usize),
    /// Code of an open connection spawns a task.
    Spawn {
        conn: usize,
        detached: bool,
    },
    /// An alive task spawns a child (any state of its connection).
    SpawnChild {
        task: usize,
        detached: bool,
    },
    /// Explicit-spawn: announced while open, registers later or is dropped unpolled.
    Announce(usize),
    Register {
        announced: usize,
        detached: bool,
    },
    DropUnpolled(usize),
    /// Explicit-spawn task whose first poll registers it before its announcement arrives.
    RaceRegister {
        conn: usize,
        detached: bool,
    },
    End {
        task: usize,
        how: u8,
    },
    /// Code running as an alive task or an open connection allocates.
    Alloc {
        by_task: Option<usize>,
        conn: usize,
        bytes: u64,
    },
    /// Any thread frees a live block.
    Free(usize),
    Advance(u64),
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let i = 0usize..64;
    prop_oneof![
        4 => Just(Op::Open),
        3 => i.clone().prop_map(Op::Close),
        1 => i.clone().prop_map(Op::Ignore),
        4 => (i.clone(), any::<bool>()).prop_map(|(conn, detached)| Op::Spawn { conn, detached }),
        2 => (i.clone(), any::<bool>()).prop_map(|(task, detached)| Op::SpawnChild { task, detached }),
        1 => i.clone().prop_map(Op::Announce),
        1 => (i.clone(), any::<bool>()).prop_map(|(announced, detached)| Op::Register { announced, detached }),
        1 => i.clone().prop_map(Op::DropUnpolled),
        1 => (i.clone(), any::<bool>()).prop_map(|(conn, detached)| Op::RaceRegister { conn, detached }),
        4 => (i.clone(), 0u8..4).prop_map(|(task, how)| Op::End { task, how }),
        3 => (proptest::option::of(i.clone()), i.clone(), 1u64..80)
            .prop_map(|(by_task, conn, bytes)| Op::Alloc { by_task, conn, bytes }),
        3 => i.clone().prop_map(Op::Free),
        3 => (1u64..8).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone)]
pub(super) struct MConn {
    pub(super) id: ConnId,
    pub(super) tag: Tag,
    pub(super) closed_at: Option<u64>,
    pub(super) ignored: bool,
    /// Judged (close + grace passed while tracked): counted in the route's history.
    pub(super) judged: bool,
}

#[derive(Debug, Clone)]
pub(super) struct MTask {
    pub(super) conn: usize,
    pub(super) tag: Tag,
    pub(super) id: TaskId,
    pub(super) detached: bool,
    pub(super) alive: bool,
}

#[derive(Debug, Clone)]
pub(super) struct MBlock {
    pub(super) conn: usize,
    pub(super) tag: Tag,
    pub(super) bytes: u64,
}

pub(super) struct Model {
    pub(super) st: State,
    pub(super) table: &'static SlotTable,
    pub(super) now: u64,
    pub(super) conns: Vec<MConn>,
    pub(super) tasks: Vec<MTask>,
    /// Announced explicit-spawn tasks not yet registered or dropped: (conn, tag).
    pub(super) announced: Vec<(usize, Tag)>,
    pub(super) blocks: Vec<MBlock>,
    pub(super) next_task: u64,
    pub(super) prev: Totals,
    /// The route's history (every model connection has one label and spawns at one site):
    /// connections judged, and those judged with an orphan.
    pub(super) judged: u64,
    pub(super) leaked: u64,
}

fn loc() -> &'static Location<'static> {
    Location::caller()
}

fn pick<T>(v: &[T], i: usize) -> Option<usize> {
    (!v.is_empty()).then(|| i % v.len())
}

impl Model {
    pub(super) fn new() -> Self {
        let cfg = Config {
            grace: Duration::from_millis(GRACE),
            retention: Duration::from_millis(2 * GRACE),
            max_closed_connections: MAX_CLOSED,
            max_leaking_connections: MAX_LEAKING,
            max_ended_tasks_per_connection: MAX_ENDED,
            retained_bytes_threshold: THRESHOLD,
            ..Config::default()
        };
        // Three chunks of two slots, grown on demand.
        let table: &'static SlotTable = Box::leak(Box::new(SlotTable::new(1, SLOTS / 2, 2)));
        Model {
            st: State::new(cfg, table, Vec::new()),
            table,
            now: 1000,
            conns: Vec::new(),
            tasks: Vec::new(),
            announced: Vec::new(),
            blocks: Vec::new(),
            next_task: 1,
            prev: Totals::default(),
            judged: 0,
            leaked: 0,
        }
    }

    fn send(&mut self, ev: Event) -> Applied {
        self.st.apply(ev, self.now)
    }

    fn spawn(&mut self, conn: usize, tag: Tag, detached: bool, was_pending: bool) {
        let id = TaskId(self.next_task);
        self.next_task += 1;
        let info = SpawnInfo {
            detached,
            was_pending,
            ..SpawnInfo::default()
        };
        self.send(Event::TaskSpawned {
            tag,
            task: id,
            location: loc().into(),
            info,
        });
        self.tasks.push(MTask {
            conn,
            tag,
            id,
            detached,
            alive: true,
        });
    }

    pub(super) fn step(&mut self, op: Op) {
        match op {
            Op::Open => {
                let Applied::Opened { id, tag } = self.send(Event::Opened {
                    label: "m".into(),
                    peer: None,
                    runtime: None,
                    reads: None,
                }) else {
                    panic!("open answers with an id")
                };
                self.conns.push(MConn {
                    id,
                    tag,
                    closed_at: None,
                    ignored: false,
                    judged: false,
                });
            }
            Op::Close(i) => {
                if let Some(k) = pick(&self.conns, i) {
                    self.send(Event::Closed {
                        id: self.conns[k].id,
                        reason: "closed",
                    });
                    let c = &mut self.conns[k];
                    if c.closed_at.is_none() && !c.ignored {
                        c.closed_at = Some(self.now);
                    }
                }
            }
            Op::Ignore(i) => {
                if let Some(k) = pick(&self.conns, i) {
                    let id = self.conns[k].id;
                    // Ignoring forgets what is still listed (or still open without a slot); a
                    // connection already folded into the totals stays counted as it was.
                    let listed = self.st.conns.contains_key(&id);
                    if listed || self.conns[k].closed_at.is_none() {
                        self.conns[k].ignored = true;
                    }
                    self.send(Event::Ignored { id });
                }
            }
            Op::Spawn { conn, detached } => {
                if let Some(k) = pick(&self.conns, conn) {
                    let c = &self.conns[k];
                    if c.closed_at.is_none() && !c.ignored && !c.tag.is_none() {
                        self.spawn(k, c.tag, detached, false);
                    }
                }
            }
            Op::SpawnChild { task, detached } => {
                if let Some(k) = pick(&self.tasks, task)
                    && self.tasks[k].alive
                {
                    let (conn, tag) = (self.tasks[k].conn, self.tasks[k].tag);
                    self.spawn(conn, tag, detached, false);
                }
            }
            Op::Announce(i) => {
                if let Some(k) = pick(&self.conns, i) {
                    let c = &self.conns[k];
                    if c.closed_at.is_none() && !c.ignored && !c.tag.is_none() {
                        let tag = c.tag;
                        self.send(Event::TaskAnnounced { tag, delta: 1 });
                        self.announced.push((k, tag));
                    }
                }
            }
            Op::Register {
                announced,
                detached,
            } => {
                if let Some(k) = pick(&self.announced, announced) {
                    let (conn, tag) = self.announced.swap_remove(k);
                    self.spawn(conn, tag, detached, true);
                }
            }
            Op::DropUnpolled(i) => {
                if let Some(k) = pick(&self.announced, i) {
                    let (_, tag) = self.announced.swap_remove(k);
                    self.send(Event::TaskAnnounced { tag, delta: -1 });
                }
            }
            Op::RaceRegister { conn, detached } => {
                if let Some(k) = pick(&self.conns, conn) {
                    let c = &self.conns[k];
                    if c.closed_at.is_none() && !c.ignored && !c.tag.is_none() {
                        let tag = c.tag;
                        self.spawn(k, tag, detached, true);
                        self.send(Event::TaskAnnounced { tag, delta: 1 });
                    }
                }
            }
            Op::End { task, how } => {
                if let Some(k) = pick(&self.tasks, task)
                    && self.tasks[k].alive
                {
                    self.tasks[k].alive = false;
                    let ended_by = [
                        EndedBy::Completed,
                        EndedBy::Aborted,
                        EndedBy::Panicked,
                        EndedBy::Shutdown,
                    ][how as usize];
                    self.send(Event::TaskEnded {
                        task: self.tasks[k].id,
                        ended_by,
                    });
                }
            }
            Op::Alloc {
                by_task,
                conn,
                bytes,
            } => {
                let who = match by_task.and_then(|t| pick(&self.tasks, t)) {
                    Some(k) if self.tasks[k].alive => Some((self.tasks[k].conn, self.tasks[k].tag)),
                    _ => pick(&self.conns, conn)
                        .filter(|&k| self.conns[k].closed_at.is_none())
                        .map(|k| (k, self.conns[k].tag)),
                };
                if let Some((conn, tag)) = who {
                    let d = Delta {
                        alloc_bytes: bytes,
                        alloc_blocks: 1,
                        ..Delta::default()
                    };
                    self.table.apply(tag, &d);
                    self.blocks.push(MBlock { conn, tag, bytes });
                }
            }
            Op::Free(i) => {
                if let Some(k) = pick(&self.blocks, i) {
                    let b = self.blocks.swap_remove(k);
                    let d = Delta {
                        free_bytes: b.bytes,
                        free_blocks: 1,
                        ..Delta::default()
                    };
                    self.table.apply(b.tag, &d);
                }
            }
            Op::Advance(dt) => self.now += dt,
        }
    }
}
