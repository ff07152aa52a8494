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
    use std::future::Future;
    use std::panic::Location;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::task::JoinHandle;

    use crate::collector::{self, Event, SpawnInfo};
    use crate::ids::{Tag, TaskId};
    use crate::snapshot::EndedBy;
    use crate::tag::handoff::{self, ClearPending, set_pending, take_pending};
    use crate::tag::{self, task_table};

    fn send(ev: Event) {
        collector::get().send(ev);
    }

    #[track_caller]
    pub(super) fn spawn<F>(name: Option<&str>, detached: bool, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let t = tag::current();
        if t.is_none() {
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
        // With hooks installed, the spawn hook records the task: it knows how it ends (also
        // `shutdown`). If the runtime spawned onto has no hooks (a second runtime, a LocalSet's
        // host), the hook does not fire: then the task registers itself on its first poll.
        if c.mode() == crate::snapshot::Mode::Hooks {
            let task_name = match (c.conn_of_tag(t), name) {
                (Some(id), Some(n)) => format!("conn={id} {n}"),
                (Some(id), None) => format!("conn={id}"),
                (None, _) => String::new(),
            };
            let fallback = SpawnInfo {
                was_pending: true,
                ..info.clone()
            };
            set_pending(Some(info));
            let _clear = ClearPending;
            let handle = {
                let _t = tag::enter(t);
                spawn_with_name(
                    &task_name,
                    Tracked::new(fut, t, Life::Unknown(location, fallback)),
                )
            };
            if take_pending().is_some() {
                // No hook took it: keep the connection from looking clean until the task's
                // first poll registers it (the two may arrive in either order).
                c.send(Event::TaskAnnounced { tag: t, delta: 1 });
                c.mark_hooks_missing();
            }
            return handle;
        }
        // Spawned untracked (the guard above), so a hooked runtime's spawn hook ignores it.
        c.send(Event::TaskAnnounced { tag: t, delta: 1 });
        let info = SpawnInfo {
            was_pending: true,
            ..info
        };
        tokio::spawn(Tracked::new(fut, t, Life::Announced(location, info)))
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
        if t.is_none() {
            return tokio::task::spawn_blocking(f);
        }
        let location = Location::caller();
        tokio::task::spawn_blocking(move || {
            // Not a region: the closure may park for good, and a region's batched counts
            // would wait for its end.
            let _t = tag::enter_unbatched(t);
            let mut guard = BlockingGuard {
                id: TaskId::current(),
                done: false,
            };
            if let Some(task) = guard.id {
                let info = SpawnInfo {
                    blocking: true,
                    wrapped: true,
                    ..SpawnInfo::default()
                };
                send(Event::TaskSpawned {
                    tag: t,
                    task,
                    location: location.into(),
                    info,
                    ended: None,
                });
            }
            let out = f();
            guard.done = true;
            out
        })
    }

    struct BlockingGuard {
        id: Option<TaskId>,
        done: bool,
    }

    impl Drop for BlockingGuard {
        fn drop(&mut self) {
            if let Some(task) = self.id {
                let ended_by = if self.done {
                    EndedBy::Completed
                } else {
                    EndedBy::Panicked
                };
                send(Event::TaskEnded { task, ended_by });
            }
        }
    }

    /// Where a spawned task is in its life, as far as leakscope knows.
    enum Life {
        /// Spawned expecting the spawn hook; the first poll finds out whether it fired.
        Unknown(&'static Location<'static>, SpawnInfo),
        /// Recorded by the spawn hook: the hooks tag its polls and record its end.
        Hooked,
        /// Announced, not yet polled: registers itself on its first poll.
        Announced(&'static Location<'static>, SpawnInfo),
        /// Registered itself: it tags its own polls and reports its own end.
        Registered(TaskId),
        /// Its future returned.
        Done,
    }

    pin_project_lite::pin_project! {
        /// The future leakscope spawns: it sees exactly how the task ends (a panic is one that
        /// unwinds out of its poll; one caught inside the task is not). Where no hook records
        /// it, it registers itself on its first poll (recording the `JoinHandle`'s id after
        /// spawn would race with a task that already ended) and tags its own polls.
        struct Tracked<F> {
            #[pin]
            fut: F,
            tag: Tag,
            life: Life,
            // Set while the inner future is being polled: still set in drop = it panicked.
            in_poll: bool,
        }

        impl<F> PinnedDrop for Tracked<F> {
            fn drop(this: Pin<&mut Self>) {
                let this = this.project();
                let id = TaskId::current();
                let how = if *this.in_poll { EndedBy::Panicked } else { EndedBy::Aborted };
                match (&*this.life, id) {
                    (Life::Done, _) | (_, None) => {}
                    (Life::Announced(..), _) => {
                        // Never polled: never registered, no longer pending.
                        send(Event::TaskAnnounced { tag: *this.tag, delta: -1 });
                    }
                    (Life::Unknown(..), Some(id)) if task_table::get(id).is_none() => {
                        send(Event::TaskAnnounced { tag: *this.tag, delta: -1 });
                    }
                    (Life::Unknown(..) | Life::Hooked, Some(id)) => {
                        // The terminate hook records the end; tell it what we saw.
                        if how == EndedBy::Panicked {
                            handoff::mark_panicked_poll();
                        } else {
                            handoff::mark_dropped_early(id);
                        }
                    }
                    (Life::Registered(id), _) => {
                        send(Event::TaskEnded { task: *id, ended_by: how });
                    }
                }
            }
        }
    }

    impl<F> Tracked<F> {
        fn new(fut: F, tag: Tag, life: Life) -> Self {
            Tracked {
                fut,
                tag,
                life,
                in_poll: false,
            }
        }
    }

    impl<F: Future> Future for Tracked<F> {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.project();
            if let Life::Unknown(..) | Life::Announced(..) = this.life {
                let id = TaskId::current();
                let hooked = matches!(this.life, Life::Unknown(..))
                    && id.is_some_and(|id| !task_table::get(id).is_none());
                let registering = std::mem::replace(this.life, Life::Hooked);
                if !hooked
                    && let Some(id) = id
                    && let Life::Unknown(location, info) | Life::Announced(location, info) =
                        registering
                {
                    send(Event::TaskSpawned {
                        tag: *this.tag,
                        task: id,
                        location: location.into(),
                        info,
                        ended: None,
                    });
                    *this.life = Life::Registered(id);
                }
            }
            let own = match this.life {
                Life::Registered(id) => Some((*id, tag::enter(*this.tag))),
                _ => None,
            };
            *this.in_poll = true;
            let out = this.fut.poll(cx);
            *this.in_poll = false;
            if out.is_ready() {
                let done = std::mem::replace(this.life, Life::Done);
                // A panic caught inside the task marked this poll; it did not end the task.
                handoff::take_panicked();
                if let (Life::Registered(id), Some(_)) = (done, &own) {
                    send(Event::TaskEnded {
                        task: id,
                        ended_by: EndedBy::Completed,
                    });
                }
            }
            drop(own);
            out
        }
    }
}
