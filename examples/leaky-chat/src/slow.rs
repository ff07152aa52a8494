//! `/ws/leaky/slow`: a slow leak and a shared global, the two things no single connection
//! shows.
//!
//! - Every connection keeps a 6 KiB session record in a global list and never removes it:
//!   below the per-connection threshold (64 KiB), so no connection is red, but the route keeps
//!   growing with every closed connection; leakscope gives the route the `leak` verdict.
//! - The first connection starts a global stats reporter (as a library's client or pool
//!   starts its reaper on first use). It outlives that connection on purpose; once other
//!   connections of the route closed without starting one, leakscope calls it `shared`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use leakscope::axum::{Message, WebSocket, WebSocketUpgrade};

use crate::AppState;

/// What every connection of the route leaves behind.
pub const SESSION_BYTES: usize = 6 * 1024;

/// `/ws/leaky/slow`: echoes.
pub async fn leaky_slow(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| session(socket, state))
}

async fn session(mut socket: WebSocket, state: AppState) {
    start_stats_reporter(&state);
    state
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(vec![0u8; SESSION_BYTES]); // BUG: never removed
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, Message::Close(_)) || socket.send(msg).await.is_err() {
            break;
        }
    }
}

/// Starts the process-wide reporter once, from whichever connection comes first.
fn start_stats_reporter(state: &AppState) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                let n = state.sessions.lock().map_or(0, |s| s.len());
                tracing::debug!("stats: {n} sessions kept");
            }
        });
    });
}
