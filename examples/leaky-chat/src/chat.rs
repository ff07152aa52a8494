//! The chat handlers: one correct, two with classic leaks.

use axum::extract::State;
use axum::extract::ws::Message;
use axum::response::{Html, Response};
use futures_util::{SinkExt, StreamExt};
use leakscope::axum::{WebSocket, WebSocketUpgrade};

use crate::AppState;

/// A tiny page explaining the routes.
pub async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><title>leaky-chat</title><h1>leaky-chat</h1>\
         <p>WebSocket routes: <code>/ws</code> (clean), <code>/ws/leaky/forwarder</code>, \
         <code>/ws/leaky/heartbeat</code>, <code>/ws/leaky/bytes</code>, \
         <code>/ws/leaky/slow</code>. \
         The leakscope dashboard runs on <code>LEAKSCOPE_DASHBOARD_ADDR</code> \
         (default <a href=\"http://127.0.0.1:6680/\">127.0.0.1:6680</a>).</p>",
    )
}

/// `/ws`: the correct chat. When either half ends, the other task is aborted.
pub async fn clean(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| async move {
        let (mut sink, mut stream) = socket.split();
        let mut rx = state.tx.subscribe();
        let mut send_task = leakscope::spawn_named("forwarder", async move {
            while let Ok(msg) = rx.recv().await {
                if sink.send(Message::text(msg)).await.is_err() {
                    break;
                }
            }
        });
        let tx = state.tx.clone();
        let mut recv_task = leakscope::spawn_named("reader", async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Text(t) => {
                        let _ = tx.send(t.to_string());
                    }
                    Message::Binary(b) => {
                        let _ = tx.send(format!("{} bytes", b.len()));
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        });
        tokio::select! {
            _ = &mut send_task => recv_task.abort(),
            _ = &mut recv_task => send_task.abort(),
        }
    })
}

/// `/ws/leaky/forwarder`: the classic bug. The forwarder ignores send errors and nobody aborts
/// it, so it waits on the broadcast channel forever, holding the socket's sink half.
pub async fn leaky_forwarder(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| async move {
        let (mut sink, mut stream) = socket.split();
        let mut rx = state.tx.subscribe();
        tracing::info!("joined the room");
        leakscope::spawn_named("forwarder", async move {
            while let Ok(msg) = rx.recv().await {
                if let Err(e) = sink.send(Message::text(msg)).await {
                    // BUG: the error is logged and ignored; the loop goes on.
                    tracing::debug!(error = %e, "send failed");
                }
            }
        });
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Text(t) = msg {
                let _ = state.tx.send(t.to_string());
            }
        }
        // BUG: returns without aborting the forwarder.
    })
}

/// `/ws/leaky/bytes`: echoes, and keeps every message of the connection in a global map
/// that is never cleaned up.
pub async fn leaky_bytes(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| echo_and_keep(socket, state))
}

async fn echo_and_keep(mut socket: WebSocket, state: AppState) {
    let id = state.next_id();
    while let Some(Ok(msg)) = socket.recv().await {
        let data = match &msg {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => break,
            _ => continue,
        };
        state
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .push(data); // BUG: never removed
        if socket.send(msg).await.is_err() {
            break;
        }
    }
}
