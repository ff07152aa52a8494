//! The collector: connections, tasks and totals, behind one mutex, changed only by events.
//!
//! Wrappers, hooks and spawn helpers send an [`Event`]; [`State::apply`] is the one function
//! that changes the state. Only connection events and tagged-task events take the lock; the
//! poll hooks and the allocator never do. Snapshots copy what they need under the lock and
//! build their rows outside it. Everything here runs untracked, so the tool's own memory is
//! never charged to a connection.

mod allocations;
mod event;
mod frozen;
pub(crate) mod logs;
mod pprof;
mod queue;
mod records;
mod retention;
mod rows;
mod sites;
mod state;
mod symbols;
mod tasks;
#[cfg(test)]
mod tests;
mod verdicts;
mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::config::{Config, ConfigError};
use crate::heap::slots;
use crate::ids::{ConnId, Tag};
use crate::snapshot::{Mode, Snapshot};
use crate::{clock, tag};

pub(crate) use event::{Applied, Event, SpawnInfo};
use frozen::{Frozen, Which};
pub(crate) use state::State;

pub(crate) struct Collector {
    pub(crate) config: Config,
    state: Mutex<State>,
    /// Task events waiting for the lock's next holder (see `queue.rs`).
    tasks: queue::Queue<Event>,
    hooks_installed: AtomicBool,
    hooks_missing: AtomicBool,
}

static COLLECTOR: OnceLock<Collector> = OnceLock::new();

/// Installs the configuration; fails if the collector already started.
pub(crate) fn install(config: Config, warnings: Vec<String>) -> Result<(), ConfigError> {
    let _g = tag::untracked();
    let mut fresh = false;
    COLLECTOR.get_or_init(|| {
        fresh = true;
        Collector::new(config, warnings)
    });
    if fresh {
        Ok(())
    } else {
        Err(ConfigError::AlreadyInstalled)
    }
}

/// Applies a drained batch of task events, in order, each at its time.
fn apply_all(st: &mut State, batch: &mut Vec<(Event, u64)>) {
    for (ev, at) in batch.drain(..) {
        st.apply(ev, at);
    }
}

/// Queues a task event at time `at`; how many wait now. A task's end that finds its own
/// spawn waiting last folds into it (`Event::fold_end`): the pair is applied as one event.
#[inline]
fn queue_task(q: &queue::Queue<Event>, ev: Event, at: u64) -> usize {
    if let Event::TaskEnded { task, ended_by } = ev {
        // It owns nothing: forgotten, not dropped (the drop is a call, 19 instructions a task
        // under callgrind); rebuilt if it is queued.
        std::mem::forget(ev);
        q.push_unless(
            |last| last.fold_end(task, ended_by, at),
            || Event::TaskEnded { task, ended_by },
            at,
        )
    } else {
        q.push(ev, at)
    }
}

/// Applies the waiting task events, off the hooks' threads (the clock thread's tick): the
/// hooks themselves rarely reach the queue's soft cap.
fn drain_waiting() {
    if let Some(c) = COLLECTOR.get()
        && c.tasks.waiting() > 0
    {
        let _g = tag::untracked();
        drop(c.lock());
    }
}

/// The process-wide collector, configured from the environment on first use.
pub(crate) fn get() -> &'static Collector {
    COLLECTOR.get_or_init(|| {
        let _g = tag::untracked();
        let b = crate::Builder::from_env();
        let warnings = b.warnings().to_vec();
        Collector::new(b.config(), warnings)
    })
}

impl Collector {
    fn new(config: Config, warnings: Vec<String>) -> Self {
        clock::start_coarse(drain_waiting);
        if !cfg!(tokio_unstable) {
            // The build script says it too, where cargo shows it; the dashboard shows the
            // mode's limits in every case.
            eprintln!(
                "leakscope: built without `--cfg tokio_unstable`: explicit-spawn mode, which sees \
                 only tasks spawned with leakscope::spawn*. Add to .cargo/config.toml: \
                 [build] rustflags = [\"--cfg\", \"tokio_unstable\"]"
            );
        }
        let table = slots::init_global(config.max_tracked_connections);
        crate::heap::sample::set_interval(config.sample_bytes);
        if config.sample_bytes != 0 {
            crate::heap::prepare_sampling();
        }
        Collector {
            state: Mutex::new(State::new(config.clone(), table, warnings)),
            tasks: queue::Queue::new(),
            config,
            hooks_installed: AtomicBool::new(false),
            hooks_missing: AtomicBool::new(false),
        }
    }

    /// The state, with the waiting task events applied first (in order, each at its time).
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing tracking altogether, so poisoning is ignored.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.tasks.drain(|batch| apply_all(&mut st, batch));
        st
    }

    /// Applies one event: the only way the state changes. A task event waits in the queue for
    /// the lock's next holder (the hooks never wait for the lock); any other event takes the
    /// lock, after the task events that came before it.
    pub(crate) fn send(&self, ev: Event) -> Applied {
        match ev {
            Event::TaskSpawned { .. } | Event::TaskEnded { .. } | Event::TaskAnnounced { .. } => {
                // No guard for the push itself: it allocates only when the queue grows, and
                // then under a guard of its own (a guard per task event cost 188 instructions
                // per tagged task under callgrind, `docs/benchmarks-history.md`).
                let waiting = queue_task(&self.tasks, ev, clock::coarse_ms());
                if waiting > queue::HARD_CAP {
                    let _g = tag::untracked();
                    drop(self.lock());
                } else if waiting > queue::SOFT_CAP
                    && let Ok(mut st) = self.state.try_lock()
                {
                    let _g = tag::untracked();
                    self.tasks.drain(|batch| apply_all(&mut st, batch));
                }
                Applied::Done
            }
            _ => {
                let _g = tag::untracked();
                let now = clock::now_ms();
                self.lock().apply(ev, now)
            }
        }
    }

    /// `hooks` once any runtime was built with leakscope's hooks (and `--cfg tokio_unstable`).
    /// Which path a spawn takes is decided per call (see `spawn.rs`), not by this.
    pub(crate) fn mode(&self) -> Mode {
        if cfg!(tokio_unstable) && self.hooks_installed.load(Ordering::Relaxed) {
            Mode::Hooks
        } else {
            Mode::ExplicitSpawn
        }
    }

    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn mark_hooks_installed(&self) {
        self.hooks_installed.store(true, Ordering::Relaxed);
    }

    /// A scope was polled inside a task the poll hooks did not announce (a `LocalSet`, or a
    /// runtime without leakscope's hooks). Says so once; the mode does not change.
    pub(crate) fn mark_hooks_missing(&self) {
        if !self.hooks_missing.swap(true, Ordering::Relaxed) {
            let _g = tag::untracked();
            self.warn(
                "a connection ran without leakscope's hooks (in a LocalSet, or on a runtime \
                 built without leakscope::runtime() / RuntimeBuilderExt::leakscope(), or \
                 another library replaced the hooks): tasks its code spawns there are tracked \
                 only if spawned with leakscope::spawn; spawn_local tasks are invisible"
                    .to_owned(),
            );
        }
    }

    pub(crate) fn warn(&self, msg: String) {
        let _g = tag::untracked();
        tracing::warn!(target: "leakscope", "{msg}");
        self.send(Event::Warned(msg));
    }

    /// The connection id behind a tag, if it is still tracked.
    pub(crate) fn conn_of_tag(&self, tag: Tag) -> Option<ConnId> {
        let _g = tag::untracked();
        self.lock().conn_of_tag(tag)
    }

    /// Copies under the lock, builds outside it.
    fn view(&self, which: Which) -> Snapshot {
        let _g = tag::untracked();
        let mode = self.mode();
        let now = clock::now_ms();
        let frozen = {
            let mut st = self.lock();
            st.apply(Event::Tick, now);
            Frozen::copy(&st, now, which, crate::heap::is_tracking())
        };
        frozen.build(mode)
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.view(Which::All)
    }

    pub(crate) fn summary(&self, orphan_limit: usize) -> Snapshot {
        self.view(Which::Orphans(orphan_limit))
    }

    pub(crate) fn connections(&self) -> Snapshot {
        self.view(Which::Connections)
    }

    /// One connection and its tasks, or `None` if it is not tracked.
    pub(crate) fn connection(&self, id: u64) -> Option<Snapshot> {
        Some(self.view(Which::Conn(id))).filter(|s| !s.connections.is_empty())
    }

    /// The live samples of `of` as a pprof heap profile (`None`: no such connection).
    pub(crate) fn heap_profile(&self, of: &crate::snapshot::ProfileOf) -> Option<Vec<u8>> {
        use crate::snapshot::ProfileOf;
        let _g = tag::untracked();
        let tags: Option<std::collections::HashSet<Tag>> = match of {
            ProfileOf::Process => None,
            ProfileOf::Connection(id) => {
                let st = self.lock();
                Some([st.conns.get(&ConnId(*id))?.tag].into())
            }
            ProfileOf::Route(label) => {
                let st = self.lock();
                let tags = st.conns.values().filter(|c| *c.label == **label);
                Some(tags.map(|c| c.tag).collect())
            }
        };
        let samples = crate::heap::sample::live(|t| tags.as_ref().is_none_or(|s| s.contains(&t)));
        Some(pprof::profile(&samples))
    }

    /// One task and its connection, or `None` if it is not tracked.
    pub(crate) fn task(&self, id: u64) -> Option<Snapshot> {
        Some(self.view(Which::Task(id))).filter(|s| !s.tasks.is_empty())
    }
}
