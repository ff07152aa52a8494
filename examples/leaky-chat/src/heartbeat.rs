//! `/ws/leaky/heartbeat`: a heartbeat that outlives its socket.
//!
//! [`start_heartbeat`] stands for third-party code: it uses plain `tokio::spawn`, and its task
//! spawns a grandchild. leakscope's hooks tag both with the connection.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::Message;
use axum::response::Response;
use leakscope::axum::WebSocketUpgrade;

use crate::AppState;

/// Starts a heartbeat that never checks whether anyone still listens (the leak).
pub fn start_heartbeat(every: Duration) {
    tokio::spawn(async move {
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = ticks.clone();
        // A grandchild: a ticker spawned by the heartbeat task.
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            loop {
                iv.tick().await;
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let mut iv = tokio::time::interval(every);
        loop {
            iv.tick().await;
            let _beat = ticks.load(std::sync::atomic::Ordering::Relaxed);
        }
    });
}

/// Echo handler that starts a heartbeat and forgets it.
pub async fn leaky_heartbeat(ws: WebSocketUpgrade, State(_state): State<AppState>) -> Response {
    ws.on_upgrade(|mut socket| async move {
        start_heartbeat(Duration::from_secs(1));
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) || socket.send(msg).await.is_err() {
                break;
            }
        }
    })
}
