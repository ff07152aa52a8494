//! The collector: connections, tasks and totals, behind one mutex.
//!
//! Only connection events (open, close) and tagged-task events (spawn, end) take the lock;
//! the poll hooks and the allocator never do. Everything here runs under
//! [`tag::untracked`](crate::tag::untracked), so the tool's own memory is never charged to a
//! connection.

mod state;
mod view;

use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::config::{Config, ConfigError};
use crate::snapshot::{EndedBy, Mode, Snapshot};
use crate::tag;

pub(crate) use state::State;

/// What `leakscope::spawn` tells the spawn hook about the task it is about to spawn.
#[derive(Debug, Default)]
pub(crate) struct SpawnInfo {
    pub name: Option<Box<str>>,
    pub detached: bool,
    pub blocking: bool,
    /// Spawned through leakscope's wrapper, which sees exactly how the task ends.
    pub wrapped: bool,
    /// Announced with `task_pending` before its first poll (explicit-spawn mode).
    pub was_pending: bool,
}

pub(crate) struct Collector {
    pub(crate) config: Config,
    state: Mutex<State>,
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
        crate::clock::start_coarse();
        Collector {
            state: Mutex::new(State::new(config.clone(), warnings)),
            config,
            hooks_installed: AtomicBool::new(false),
            hooks_missing: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing tracking altogether, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mode(&self) -> Mode {
        if cfg!(tokio_unstable)
            && self.hooks_installed.load(Ordering::Relaxed)
            && !self.hooks_missing.load(Ordering::Relaxed)
        {
            Mode::Hooks
        } else {
            Mode::ExplicitSpawn
        }
    }

    pub(crate) fn mark_hooks_installed(&self) {
        self.hooks_installed.store(true, Ordering::Relaxed);
    }

    /// A scope was polled inside a task the poll hooks did not announce.
    pub(crate) fn mark_hooks_missing(&self) {
        if !self.hooks_missing.swap(true, Ordering::Relaxed) {
            self.warn(
                "leakscope is enabled but a connection ran on a tokio runtime without \
                 leakscope's hooks (built without leakscope::runtime() / \
                 RuntimeBuilderExt::leakscope(), or another library replaced the hooks): only \
                 tasks spawned with leakscope::spawn are tracked"
                    .to_owned(),
            );
        }
    }

    pub(crate) fn warn(&self, msg: String) {
        let _g = tag::untracked();
        tracing::warn!(target: "leakscope", "{msg}");
        self.lock().warn(msg);
    }

    /// Opens a connection; returns its id and tag (tag 0 if every slot is in use).
    pub(crate) fn open(&self, label: &str, peer: Option<String>) -> (u64, u64) {
        let _g = tag::untracked();
        self.lock().open(label, peer)
    }

    pub(crate) fn set_label(&self, id: u64, label: &str) {
        let _g = tag::untracked();
        self.lock().set_label(id, label);
    }

    pub(crate) fn set_peer(&self, id: u64, peer: String) {
        let _g = tag::untracked();
        self.lock().set_peer(id, peer);
    }

    pub(crate) fn close(&self, id: u64, reason: &'static str) {
        let _g = tag::untracked();
        self.lock().close(id, reason);
    }

    pub(crate) fn ignore(&self, id: u64) {
        let _g = tag::untracked();
        self.lock().ignore(id);
    }

    /// The connection id behind a tag, if it is still tracked.
    pub(crate) fn conn_of_tag(&self, tag: u64) -> Option<u64> {
        let _g = tag::untracked();
        self.lock().conn_of_tag(tag)
    }

    pub(crate) fn task_spawned(
        &self,
        tag: u64,
        task: u64,
        location: &'static Location<'static>,
        info: SpawnInfo,
    ) {
        let _g = tag::untracked();
        self.lock().task_spawned(tag, task, location, info);
    }

    pub(crate) fn task_pending(&self, tag: u64, delta: i64) {
        let _g = tag::untracked();
        self.lock().task_pending(tag, delta);
    }

    pub(crate) fn task_ended(&self, task: u64, ended_by: EndedBy) {
        let _g = tag::untracked();
        self.lock().task_ended(task, ended_by);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let _g = tag::untracked();
        let mode = self.mode();
        let mut st = self.lock();
        st.maintain(crate::clock::now_ms());
        view::snapshot(&st, mode)
    }

    pub(crate) fn summary(&self, orphan_limit: usize) -> Snapshot {
        let _g = tag::untracked();
        let mode = self.mode();
        let mut st = self.lock();
        st.maintain(crate::clock::now_ms());
        view::summary(&st, mode, orphan_limit)
    }
}
