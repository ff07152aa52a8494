//! Runtime setup: leakscope's four tokio task hooks (`--cfg tokio_unstable`).
//!
//! - spawn: runs on the spawning thread inside the parent's poll, so the parent's tag (set by a
//!   scope or by the parent's own before-poll) is the child's: plain `tokio::spawn` in
//!   third-party code and grandchildren inherit the connection.
//! - before/after poll: set the thread's tag to the polled task's (a lock-free table lookup)
//!   and back to untagged; they never lock, allocate or panic.
//! - terminate: inside the last poll for completion, abort and panic; outside any poll for
//!   tasks dropped at runtime shutdown, which is how `shutdown` is told apart.

/// Adds leakscope's hooks to a tokio runtime builder. One line in `main`, composable with the
/// rest of your runtime settings:
///
/// ```no_run
/// use leakscope::RuntimeBuilderExt;
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .worker_threads(2)
///     .enable_all()
///     .leakscope()
///     .build()
///     .unwrap();
/// ```
///
/// Without `--cfg tokio_unstable`, or with the `enabled` feature off, it changes nothing.
pub trait RuntimeBuilderExt {
    /// Installs leakscope's task hooks on this builder.
    fn leakscope(&mut self) -> &mut Self;
}

impl RuntimeBuilderExt for tokio::runtime::Builder {
    fn leakscope(&mut self) -> &mut Self {
        #[cfg(all(feature = "enabled", tokio_unstable))]
        imp::install(self, UserHooks::default());
        self
    }
}

/// A multi-thread runtime builder with `enable_all()` and leakscope's hooks:
/// `leakscope::runtime().build()?.block_on(main_async())`.
pub fn runtime() -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all().leakscope();
    b
}

#[cfg(tokio_unstable)]
type Hook = std::sync::Arc<dyn Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync>;

/// Your own task hooks, run after leakscope's. tokio keeps one callback per hook, so setting a
/// hook on the builder after [`RuntimeBuilderExt::leakscope`] would replace leakscope's (it
/// notices, warns and falls back to explicit-spawn mode); hand yours to
/// [`UserHooks::install`] instead.
#[derive(Default, Clone)]
pub struct UserHooks {
    #[cfg(tokio_unstable)]
    spawn: Option<Hook>,
    #[cfg(tokio_unstable)]
    terminate: Option<Hook>,
    #[cfg(tokio_unstable)]
    before_poll: Option<Hook>,
    #[cfg(tokio_unstable)]
    after_poll: Option<Hook>,
}

impl std::fmt::Debug for UserHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("UserHooks");
        #[cfg(tokio_unstable)]
        d.field("spawn", &self.spawn.is_some())
            .field("terminate", &self.terminate.is_some())
            .field("before_poll", &self.before_poll.is_some())
            .field("after_poll", &self.after_poll.is_some());
        d.finish()
    }
}

#[cfg(tokio_unstable)]
impl UserHooks {
    /// Runs `f` after leakscope's spawn hook.
    pub fn on_task_spawn(
        mut self,
        f: impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.spawn = Some(std::sync::Arc::new(f));
        self
    }
    /// Runs `f` after leakscope's terminate hook.
    pub fn on_task_terminate(
        mut self,
        f: impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.terminate = Some(std::sync::Arc::new(f));
        self
    }
    /// Runs `f` after leakscope's before-poll hook.
    pub fn on_before_task_poll(
        mut self,
        f: impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.before_poll = Some(std::sync::Arc::new(f));
        self
    }
    /// Runs `f` after leakscope's after-poll hook.
    pub fn on_after_task_poll(
        mut self,
        f: impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.after_poll = Some(std::sync::Arc::new(f));
        self
    }
}

impl UserHooks {
    /// Installs leakscope's hooks followed by these on `builder`.
    pub fn install(self, builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
        #[cfg(all(feature = "enabled", tokio_unstable))]
        imp::install(builder, self);
        builder
    }
}

#[cfg(all(feature = "enabled", tokio_unstable))]
mod imp {
    use std::sync::Once;

    use tokio::runtime::TaskMeta;

    use super::UserHooks;
    use crate::collector::{self, Event};
    use crate::heap::batch;
    use crate::ids::TaskId;
    use crate::snapshot::EndedBy;
    use crate::tag::{self, handoff, task_table};

    pub(super) fn install(b: &mut tokio::runtime::Builder, user: UserHooks) {
        collector::get().mark_hooks_installed();
        install_panic_hook();
        let UserHooks {
            spawn,
            terminate,
            before_poll,
            after_poll,
        } = user;
        // Without a user hook, leakscope's own function is the hook: no closure state to test
        // on every call (16 instructions per tagged poll, callgrind).
        macro_rules! hook {
            ($set:ident, $ours:path, $user:expr) => {
                match $user {
                    None => b.$set($ours),
                    Some(f) => b.$set(move |m| {
                        $ours(m);
                        f(m)
                    }),
                }
            };
        }
        hook!(on_task_spawn, on_spawn, spawn);
        hook!(on_task_terminate, on_terminate, terminate);
        hook!(on_before_task_poll, before_poll_hook, before_poll);
        hook!(on_after_task_poll, after_poll_hook, after_poll);
    }

    /// Marks the task being polled when its poll panics (chained before the previous hook).
    fn install_panic_hook() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                handoff::mark_panicked_poll();
                prev(info)
            }));
        });
    }

    #[inline]
    fn on_spawn(m: &TaskMeta<'_>) {
        let mut t = tag::current();
        if t.is_none() {
            t = handoff::take_accepted_for_spawn();
        }
        if t.is_none() {
            // Untagged code (the common case outside connections): nothing else to do.
            // (`leakscope::spawn` sets its pending info only inside a connection.)
            return;
        }
        let info = handoff::take_pending();
        let id = TaskId::of(m.id());
        if !task_table::insert(id, t) && task_table::dropped() == 1 {
            let _g = tag::untracked();
            collector::get().warn(
                "more than 66,000 tagged tasks alive with colliding ids: some run untagged (their \
                 allocations are charged to nobody); their lifetimes are still tracked"
                    .to_owned(),
            );
        }
        collector::get().send(Event::TaskSpawned {
            tag: t,
            task: id,
            location: m.spawned_at().into(),
            info: info.unwrap_or_default(),
            ended: None,
        });
    }

    fn on_terminate(m: &TaskMeta<'_>) {
        let id = TaskId::of(m.id());
        if task_table::remove(id) == task_table::Removed::Untagged {
            return;
        }
        let ended_by = if handoff::polling() != Some(id) {
            EndedBy::Shutdown
        } else if handoff::take_panicked() == Some(id) {
            EndedBy::Panicked
        } else if handoff::take_dropped_early() == Some(id) {
            EndedBy::Aborted
        } else {
            EndedBy::Completed
        };
        collector::get().send(Event::TaskEnded { task: id, ended_by });
    }

    #[inline]
    fn before_poll_hook(m: &TaskMeta<'_>) {
        let id = TaskId::of(m.id());
        // The poll is an allocator region: counts are batched and flushed by the after-poll
        // hook, so the counters lag by at most one poll. (It also records the task being
        // polled, for the terminate hook.)
        batch::enter_poll(id.0, task_table::poll(id, crate::clock::coarse_ms()));
    }

    #[inline]
    fn after_poll_hook(_m: &TaskMeta<'_>) {
        // Leaving the poll's region flushes its batched counts; the thread's tag is none.
        batch::leave_poll();
    }
}
