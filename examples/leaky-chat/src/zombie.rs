//! `/ws/leaky/zombie`: a socket nobody reads. The handler hands its WebSocket to a task that
//! never reads it, so when the client leaves (FIN or RST) nothing notices: no close frame is
//! read, no EOF, and the task holds the socket forever. leakscope sees the kernel's view of the
//! socket (the tracked listener holds it), closes the connection as a *zombie* ("peer left,
//! never read") and the task becomes an orphan after the grace period.

use axum::response::Response;
use leakscope::axum::{WebSocket, WebSocketUpgrade};

/// `/ws/leaky/zombie`: keeps the socket in a task that never reads it.
pub async fn leaky_zombie(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(hold)
}

async fn hold(socket: WebSocket) {
    // BUG: nothing ever reads `socket` (a "presence" task that was meant to write updates).
    tokio::spawn(async move {
        let _socket = socket;
        std::future::pending::<()>().await
    });
}
