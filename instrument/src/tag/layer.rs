//! [`layer`]: leakscope's `tracing` layer. It sees what tokio's runtime hooks do not: a plain
//! `tokio::task::spawn_blocking`.
//!
//! tokio fires no spawn hook for a blocking task (its terminate hook does fire). With its
//! `tracing` feature (on with `enabled`) and `--cfg tokio_unstable`, tokio creates a
//! `runtime.spawn` span with `kind = "blocking"`, the task's id and its spawn location, on the
//! spawning thread: inside a connection's code, the layer records the task as that
//! connection's (and in the task table, so the terminate hook records its end), and while the
//! blocking thread runs it (the span is entered) its allocations are the connection's.
//!
//! It also keeps each connection's own log lines: an event emitted while a connection's code
//! runs (its handler, its tasks, their blocking tasks) goes to that connection's bounded ring
//! (`collector/logs.rs`), shown on its dashboard page and kept while a leaking connection is.
//! This needs no `tokio_unstable`.
//!
//! What stays invisible: blocking tasks without the layer in the subscriber, or with a global
//! filter that drops `tokio::task::blocking` spans at `TRACE`; `tokio::task::block_in_place`
//! (no task); tasks of a `LocalSet` (tokio runs no task hooks for them: use
//! `leakscope::spawn` there).

use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// leakscope's `tracing` layer: add it to your subscriber so that a plain
/// `tokio::task::spawn_blocking` inside a connection is that connection's task, and so that
/// each connection keeps the last `tracing` events its code emitted
/// ([`crate::Builder::events_per_connection`]; [`crate::ConnectionInfo::events`]).
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// tracing_subscriber::registry().with(leakscope::layer()).init();
/// ```
///
/// With the `enabled` feature off it does nothing; without `--cfg tokio_unstable` it keeps
/// log lines only.
pub fn layer() -> Layer {
    Layer { _private: () }
}

/// See [`layer`].
#[derive(Debug, Clone)]
pub struct Layer {
    _private: (),
}

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        #[cfg(all(feature = "enabled", tokio_unstable))]
        imp::new_span(attrs, id, &ctx);
        #[cfg(not(all(feature = "enabled", tokio_unstable)))]
        let _ = (attrs, id, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        #[cfg(all(feature = "enabled", tokio_unstable))]
        imp::enter(id, &ctx);
        #[cfg(not(all(feature = "enabled", tokio_unstable)))]
        let _ = (id, ctx);
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        #[cfg(feature = "enabled")]
        record_event(event);
        #[cfg(not(feature = "enabled"))]
        let _ = event;
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        #[cfg(all(feature = "enabled", tokio_unstable))]
        imp::exit(id, &ctx);
        #[cfg(not(all(feature = "enabled", tokio_unstable)))]
        let _ = (id, ctx);
    }
}

/// Runs `f` (a subscriber's `new_span` or `event` that runs untracked, as
/// `console::Untracked` does) with the caller's tag kept for the layer.
#[cfg(feature = "console")]
pub(crate) fn as_caller<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "enabled")]
    {
        let prev = CALLER.replace(Some(crate::tag::current()));
        let out = f();
        CALLER.set(prev);
        out
    }
    #[cfg(not(feature = "enabled"))]
    f()
}

#[cfg(feature = "enabled")]
std::thread_local! {
    /// The tag of the code creating a span or an event, when a wrapping subscriber runs
    /// untracked.
    static CALLER: std::cell::Cell<Option<crate::ids::Tag>> = const { std::cell::Cell::new(None) };
}

/// The connection whose code emits a span or an event.
#[cfg(feature = "enabled")]
fn caller() -> crate::ids::Tag {
    CALLER.get().unwrap_or_else(crate::tag::current)
}

/// Keeps `event` with the connection whose code emitted it (see
/// [`crate::Builder::events_per_connection`]). Not kept: `TRACE` events (the hot, noisy
/// level), and the runtime's own (tokio's instrumentation emits one per waker operation)
/// and leakscope's.
#[cfg(feature = "enabled")]
fn record_event(event: &tracing::Event<'_>) {
    let meta = event.metadata();
    // Cheapest first: most events of a server run outside any connection.
    let tag = caller();
    if tag.is_none() || *meta.level() == tracing::Level::TRACE {
        return;
    }
    let target = meta.target();
    if ["tokio::", "runtime::", "leakscope"]
        .iter()
        .any(|p| target.starts_with(p))
    {
        return;
    }
    let keep = crate::collector::get().config.events_per_connection;
    if keep == 0 {
        return;
    }
    let _g = crate::tag::untracked();
    let task = crate::ids::TaskId::current().map(|t| t.0);
    crate::collector::logs::record(tag, keep, event, task);
}

#[cfg(all(feature = "enabled", tokio_unstable))]
mod imp {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id};
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    use crate::collector::{self, Event, SpawnInfo};
    use crate::heap::batch;
    use crate::ids::{Site, Tag, TaskId};
    use crate::tag::{self, handoff, task_table};

    /// A blocking task of a connection (in its span's extensions).
    struct Blocking {
        tag: Tag,
        task: TaskId,
        /// The tag to restore when the blocking thread leaves the span.
        prev: Option<Tag>,
    }

    #[derive(Default)]
    struct Fields {
        task: Option<u64>,
        file: Option<String>,
        line: u32,
        col: u32,
        ours: bool,
    }

    impl Visit for Fields {
        fn record_u64(&mut self, f: &Field, v: u64) {
            match f.name() {
                "task.id" => self.task = Some(v),
                "loc.line" => self.line = u32::try_from(v).unwrap_or(u32::MAX),
                "loc.col" => self.col = u32::try_from(v).unwrap_or(u32::MAX),
                _ => {}
            }
        }
        fn record_i64(&mut self, f: &Field, v: i64) {
            self.record_u64(f, u64::try_from(v).unwrap_or(0));
        }
        fn record_str(&mut self, f: &Field, v: &str) {
            if f.name() == "loc.file" {
                self.file = Some(v.to_owned());
            }
        }
        fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
            // `leakscope::spawn_blocking` reports its task itself (with its name and exact end).
            if f.name() == "fn" && format!("{v:?}").starts_with("leakscope::") {
                self.ours = true;
            }
        }
    }

    /// File names seen in spans, kept for the process's life (bounded: one per source file of
    /// the program; past the cap, a placeholder).
    fn intern(file: &str) -> &'static str {
        const CAP: usize = 4096;
        static FILES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
        let mut g = FILES.lock().unwrap_or_else(|p| p.into_inner());
        let set = g.get_or_insert_with(HashSet::new);
        if let Some(&f) = set.get(file) {
            return f;
        }
        if set.len() >= CAP {
            return "<more source files than leakscope keeps>";
        }
        let f: &'static str = Box::leak(file.to_owned().into_boxed_str());
        set.insert(f);
        f
    }

    pub(super) fn new_span<S>(attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>)
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = attrs.metadata();
        if meta.name() != "runtime.spawn" || meta.target() != "tokio::task::blocking" {
            return;
        }
        let t = super::caller();
        // Without leakscope's hooks nothing would record the task's end.
        if t.is_none() || collector::get().mode() != crate::Mode::Hooks {
            return;
        }
        let _g = tag::untracked();
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let (Some(task), false) = (fields.task, fields.ours) else {
            return;
        };
        let task = TaskId(task);
        let file = intern(fields.file.as_deref().unwrap_or("<unknown>"));
        task_table::insert(task, t);
        collector::get().send(Event::TaskSpawned {
            tag: t,
            task,
            location: Site::new(file, fields.line, fields.col),
            info: SpawnInfo {
                blocking: true,
                ..SpawnInfo::default()
            },
            ended: None,
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Blocking {
                tag: t,
                task,
                prev: None,
            });
        }
    }

    /// The blocking thread runs the task: it is being "polled" (a panic is its), and its
    /// allocations are the connection's.
    pub(super) fn enter<S>(id: &Id, ctx: &Context<'_, S>)
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(b) = ext.get_mut::<Blocking>() {
            handoff::set_polling(Some(b.task));
            // Not a region: the task may park for good, and a region's batched counts would
            // wait for its end.
            b.prev = Some(batch::replace_current(b.tag));
        }
    }

    /// Leaves the task's region. The thread stays marked as running it until its terminate
    /// hook (which runs after this) has read how it ended.
    pub(super) fn exit<S>(id: &Id, ctx: &Context<'_, S>)
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(prev) = ext.get_mut::<Blocking>().and_then(|b| b.prev.take()) {
            batch::replace_current(prev);
        }
    }
}
