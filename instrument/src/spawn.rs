//! Explicit spawning: tags tasks in every mode, names them `conn=<id> <name>` for
//! tokio-console, and reports exactly how they ended.
//!
//! In `hooks` mode a plain `tokio::spawn` is tagged too; these functions add a name, the
//! `detached` declaration, and an exact `aborted`. Without hooks they are the only way tasks
//! are tagged. With the `enabled` feature off they are `tokio::spawn`.

use std::future::Future;
use tokio::task::JoinHandle;

/// Spawns `fut` on the current runtime as the current connection's task.
///
/// # Panics
/// Like `tokio::spawn`, when called outside a Tokio runtime.
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_inner(None, false, fut)
}

/// [`spawn`] with a name: the task is shown as `conn=<id> <name>` in the snapshot, the
/// dashboard and tokio-console.
#[track_caller]
pub fn spawn_named<F>(name: &str, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_inner(Some(name), false, fut)
}

/// Spawns a task that is *meant* to outlive its connection (a flush, an audit write): it is
/// tracked but never flagged as an orphan.
#[track_caller]
pub fn spawn_detached<F>(name: &str, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_inner(Some(name), true, fut)
}

/// `tokio::task::spawn_blocking` that tags the closure: its allocations are the current
/// connection's and it appears as a `blocking` task from the moment it starts running until
/// it returns. (tokio fires no spawn hook for blocking tasks, so a plain
/// `tokio::task::spawn_blocking` stays invisible even in `hooks` mode.)
///
/// # Panics
/// Like `tokio::task::spawn_blocking`, when called outside a Tokio runtime.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    #[cfg(feature = "enabled")]
    {
        imp::spawn_blocking(f)
    }
    #[cfg(not(feature = "enabled"))]
    tokio::task::spawn_blocking(f)
}

#[track_caller]
fn spawn_inner<F>(name: Option<&str>, detached: bool, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[cfg(feature = "enabled")]
    {
        imp::spawn(name, detached, fut)
    }
    #[cfg(not(feature = "enabled"))]
    {
        let _ = (name, detached);
        tokio::spawn(fut)
    }
}

#[cfg(feature = "enabled")]
mod imp {
    use std::cell::RefCell;
    use std::future::Future;
    use std::panic::Location;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::task::JoinHandle;

    use crate::collector::{self, SpawnInfo};
    use crate::snapshot::{EndedBy, Mode};
    use crate::tag;

    thread_local! {
        /// What the next spawn hook on this thread should record (set around our spawn call).
        static PENDING: RefCell<Option<SpawnInfo>> = const { RefCell::new(None) };
    }

    /// Taken by the spawn hook.
    pub(crate) fn take_pending() -> Option<SpawnInfo> {
        PENDING.try_with(|p| p.borrow_mut().take()).ok().flatten()
    }

    fn set_pending(info: Option<SpawnInfo>) {
        let _ = PENDING.try_with(|p| *p.borrow_mut() = info);
    }

    #[track_caller]
    pub(super) fn spawn<F>(name: Option<&str>, detached: bool, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let t = tag::current();
        if t == tag::UNTAGGED {
            return tokio::spawn(fut);
        }
        let location = Location::caller();
        let c = collector::get();
        let _g = tag::untracked();
        let info = SpawnInfo {
            name: name.map(Into::into),
            detached,
            blocking: false,
            wrapped: true,
            was_pending: false,
        };
        if c.mode() == Mode::Hooks {
            let task_name = match (c.conn_of_tag(t), name) {
                (Some(id), Some(n)) => format!("conn={id} {n}"),
                (Some(id), None) => format!("conn={id}"),
                (None, _) => String::new(),
            };
            set_pending(Some(info));
            let wrapped = Tracked {
                fut,
                tag: t,
                report: None,
                done: false,
            };
            let _t = tag::enter(t);
            let handle = spawn_with_name(&task_name, wrapped);
            set_pending(None);
            return handle;
        }
        // Explicit-spawn mode: the task registers itself on its first poll (only then is its
        // id known without a race); until then it keeps its connection from looking clean.
        c.task_pending(t, 1);
        let info = SpawnInfo {
            was_pending: true,
            ..info
        };
        tokio::spawn(Tracked {
            fut,
            tag: t,
            report: Some((location, Some(info))),
            done: false,
        })
    }

    #[cfg(tokio_unstable)]
    #[track_caller]
    fn spawn_with_name<F>(name: &str, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::task::Builder::new()
            .name(name)
            .spawn(fut)
            .unwrap_or_else(|e| panic!("leakscope::spawn: tokio refused to spawn: {e}"))
    }

    #[cfg(not(tokio_unstable))]
    #[track_caller]
    fn spawn_with_name<F>(_name: &str, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(fut)
    }

    #[track_caller]
    pub(super) fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let t = tag::current();
        if t == tag::UNTAGGED {
            return tokio::task::spawn_blocking(f);
        }
        let location = Location::caller();
        tokio::task::spawn_blocking(move || {
            let _t = tag::enter(t);
            let mut guard = BlockingGuard { id: 0, done: false };
            if let Some(id) = tokio::task::try_id() {
                guard.id = tag::task_id_u64(id);
                let info = SpawnInfo {
                    blocking: true,
                    wrapped: true,
                    ..SpawnInfo::default()
                };
                collector::get().task_spawned(t, guard.id, location, info);
            }
            let out = f();
            guard.done = true;
            out
        })
    }

    struct BlockingGuard {
        id: u64,
        done: bool,
    }

    impl Drop for BlockingGuard {
        fn drop(&mut self) {
            if self.id != 0 {
                let how = if self.done {
                    EndedBy::Completed
                } else {
                    EndedBy::Panicked
                };
                collector::get().task_ended(self.id, how);
            }
            crate::alloc::flush();
        }
    }

    pin_project_lite::pin_project! {
        /// The future leakscope spawns: it sees exactly how the task ends. In explicit-spawn mode
        /// it also registers the task (from inside, on its first poll: recording the
        /// `JoinHandle`'s id after spawn would race with a task that already ended) and sets
        /// the connection's tag while polling.
        struct Tracked<F> {
            #[pin]
            fut: F,
            tag: u64,
            // Some((location, info)) until registered, in explicit-spawn mode only.
            report: Option<(&'static Location<'static>, Option<SpawnInfo>)>,
            done: bool,
        }

        impl<F> PinnedDrop for Tracked<F> {
            fn drop(this: Pin<&mut Self>) {
                let this = this.project();
                if *this.done {
                    return;
                }
                if let Some((_, Some(_))) = this.report {
                    // Never polled: never registered, no longer pending.
                    collector::get().task_pending(*this.tag, -1);
                    return;
                }
                let Some(id) = tokio::task::try_id().map(tag::task_id_u64) else { return };
                let how = if std::thread::panicking() { EndedBy::Panicked } else { EndedBy::Aborted };
                if this.report.is_none() {
                    // hooks mode: the terminate hook records the end; tell it what we saw.
                    if how == EndedBy::Panicked {
                        tag::mark_panicked_poll();
                    } else {
                        tag::mark_dropped_early(id);
                    }
                } else {
                    // explicit mode, registered: record it ourselves.
                    collector::get().task_ended(id, how);
                }
            }
        }
    }

    impl<F: Future> Future for Tracked<F> {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.project();
            let Some((location, info)) = this.report.as_mut() else {
                let out = this.fut.poll(cx);
                *this.done = out.is_ready();
                return out;
            };
            let id = tokio::task::try_id().map(tag::task_id_u64);
            if let (Some(id), Some(info)) = (id, info.take()) {
                collector::get().task_spawned(*this.tag, id, location, info);
            }
            let out = {
                let _t = tag::enter(*this.tag);
                this.fut.poll(cx)
            };
            if out.is_ready() {
                *this.done = true;
                if let Some(id) = id {
                    collector::get().task_ended(id, EndedBy::Completed);
                }
            }
            out
        }
    }
}

#[cfg(feature = "enabled")]
pub(crate) use imp::take_pending;
