//! tokio-console beside leakscope (feature `console`).
//!
//! console-subscriber shows tokio's task ids (the same ids as the snapshot's `tasks[].id`) and
//! the names leakscope gives the tasks it spawns (`conn=<id> <name>`).
//!
//! console-subscriber records every task's spans and events from inside the task's polls, so
//! its records would be charged to the connection whose code runs, and it keeps them for an
//! hour: clean connections would look like they retain megabytes. [`init`] therefore runs the
//! whole subscriber untracked.

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::prelude::*;

/// Installs a global tracing subscriber with leakscope's [`crate::layer`], console-subscriber's
/// layer (listening on
/// `127.0.0.1:6669`, or `TOKIO_CONSOLE_BIND`) and a formatting layer filtered by `RUST_LOG`
/// (default `info`), whose own allocations are charged to no connection. Call it once in
/// `main`, before building the runtime. Returns an error message if a global subscriber is
/// already set.
pub fn init() -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::registry()
        .with(crate::layer())
        .with(console_subscriber::spawn())
        .with(tracing_subscriber::fmt::layer().with_filter(filter));
    tracing::subscriber::set_global_default(Untracked(subscriber))
        .map_err(|e| format!("leakscope::console::init: {e}"))
}

/// A subscriber whose every callback runs as leakscope's own work (see
/// [`crate::untracked`]). It does not forward `downcast_raw`, so tools that look the inner
/// subscriber up through the global dispatcher (e.g. `tracing-error`'s `SpanTrace`) do not
/// find it.
#[derive(Debug)]
pub struct Untracked<S>(pub S);

impl<S: Subscriber> Subscriber for Untracked<S> {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        crate::untracked(|| self.0.register_callsite(m))
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        crate::untracked(|| self.0.enabled(m))
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        // leakscope's layer attributes a blocking task to the code that spawned it.
        crate::tag::layer::as_caller(|| crate::untracked(|| self.0.new_span(attrs)))
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        crate::untracked(|| self.0.record(span, values))
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        crate::untracked(|| self.0.record_follows_from(span, follows))
    }
    fn event_enabled(&self, event: &Event<'_>) -> bool {
        crate::untracked(|| self.0.event_enabled(event))
    }
    fn event(&self, event: &Event<'_>) {
        crate::tag::layer::as_caller(|| crate::untracked(|| self.0.event(event)))
    }
    // Not untracked: leakscope's layer sets the connection of a blocking task entering its
    // span (a span stack's growth is charged to whoever runs, once per thread).
    fn enter(&self, span: &Id) {
        self.0.enter(span)
    }
    fn exit(&self, span: &Id) {
        self.0.exit(span)
    }
    fn clone_span(&self, id: &Id) -> Id {
        crate::untracked(|| self.0.clone_span(id))
    }
    fn try_close(&self, id: Id) -> bool {
        crate::untracked(|| self.0.try_close(id))
    }
    fn current_span(&self) -> tracing_core::span::Current {
        self.0.current_span()
    }
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber)
    }
}
