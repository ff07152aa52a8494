//! The reference model: what the collector should know after each event, kept the simple way
//! (every connection, task and block ever seen, in vectors).

use std::panic::Location;
use std::time::Duration;

use super::ops::Op;
use super::{GRACE, MAX_CLOSED, MAX_ENDED, MAX_LEAKING, SLOTS, THRESHOLD};
use crate::collector::event::{Applied, Event, SpawnInfo};
use crate::collector::queue::Queue;
use crate::collector::state::State;
use crate::collector::{apply_all, queue_task};
use crate::config::Config;
use crate::heap::slots::{Delta, SlotTable};
use crate::ids::{ConnId, Tag, TaskId};
use crate::snapshot::{EndedBy, Totals};

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
    /// Whether [`Op::SpawnEnded`] sends one `TaskSpawned` with its end folded in (as the queue makes it).
    pub(super) fold: bool,
}

const END_HOW: [EndedBy; 4] = [
    EndedBy::Completed,
    EndedBy::Aborted,
    EndedBy::Panicked,
    EndedBy::Shutdown,
];

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
            fold: true,
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
            ended: None,
        });
        self.tasks.push(MTask {
            conn,
            tag,
            id,
            detached,
            alive: true,
        });
    }

    /// A task of `conn` (`tag`) spawned now (`info`) and ended `later` ms after: through the
    /// task events' queue when the model folds (which must fold the pair), else applied apart.
    fn spawn_ended(&mut self, conn: usize, tag: Tag, info: SpawnInfo, end: (EndedBy, u64)) {
        let (ended_by, later) = end;
        let task = TaskId(self.next_task);
        self.next_task += 1;
        let detached = info.detached;
        let spawned = Event::TaskSpawned {
            tag,
            task,
            location: loc().into(),
            info,
            ended: None,
        };
        let ended = Event::TaskEnded { task, ended_by };
        let now = self.now;
        if self.fold {
            let q = Queue::new();
            queue_task(&q, spawned, now);
            queue_task(&q, ended, now + later);
            let st = &mut self.st;
            q.drain(|batch| {
                assert_eq!(batch.len(), 1, "the end folds into its spawn");
                apply_all(st, batch);
            });
        } else {
            self.st.apply(spawned, now);
            self.st.apply(ended, now + later);
        }
        self.tasks.push(MTask {
            conn,
            tag,
            id: task,
            detached,
            alive: false,
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
                    let ended_by = END_HOW[how as usize];
                    self.send(Event::TaskEnded {
                        task: self.tasks[k].id,
                        ended_by,
                    });
                }
            }
            Op::SpawnEnded {
                conn,
                parent,
                detached,
                how,
                later,
                flags,
                register,
            } => {
                let registered = register.and_then(|i| pick(&self.announced, i));
                let by_task = parent.and_then(|t| pick(&self.tasks, t));
                let who = match (registered, by_task) {
                    (Some(k), _) => Some(self.announced.swap_remove(k)),
                    (None, Some(k)) if self.tasks[k].alive => {
                        Some((self.tasks[k].conn, self.tasks[k].tag))
                    }
                    (None, Some(_)) => None,
                    (None, None) => pick(&self.conns, conn)
                        .filter(|&k| {
                            let c = &self.conns[k];
                            c.closed_at.is_none() && !c.ignored && !c.tag.is_none()
                        })
                        .map(|k| (k, self.conns[k].tag)),
                };
                if let Some((conn, tag)) = who {
                    let info = SpawnInfo {
                        name: (flags & 1 != 0).then(|| "named".into()),
                        detached,
                        blocking: flags & 2 != 0,
                        wrapped: flags & 4 != 0,
                        was_pending: registered.is_some(),
                    };
                    self.spawn_ended(conn, tag, info, (END_HOW[how as usize], later));
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
