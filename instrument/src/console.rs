//! tokio-console beside leakscope (feature `console`).
//!
//! console-subscriber shows tokio's task ids (the same ids as the snapshot's `tasks[].id`) and
//! the names leakscope gives the tasks it spawns (`conn=<id> <name>`).

use tracing_subscriber::prelude::*;

/// Installs a global tracing subscriber with console-subscriber's layer (listening on
/// `127.0.0.1:6669`, or `TOKIO_CONSOLE_BIND`) and a formatting layer filtered by `RUST_LOG`
/// (default `info`). Call it once in `main`, before building the runtime. Returns an error
/// message if a global subscriber is already set.
pub fn init() -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(console_subscriber::spawn())
        .with(tracing_subscriber::fmt::layer().with_filter(filter))
        .try_init()
        .map_err(|e| format!("leakscope::console::init: {e}"))
}
