//! The axum integration: a drop-in [`WebSocketUpgrade`] and a tracked `serve` listener.
//!
//! ```no_run
//! use axum::{Router, response::Response, routing::get};
//! use leakscope::axum::{WebSocket, WebSocketUpgrade};
//!
//! async fn ws(ws: WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(handle) // same call as axum's: the connection's scope opens here
//! }
//! async fn handle(mut socket: WebSocket) {
//!     while let Some(Ok(msg)) = socket.recv().await {
//!         if socket.send(msg).await.is_err() { break; }
//!     }
//! }
//! # async fn run() {
//! let app = Router::new().route("/ws", get(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! axum::serve(leakscope::axum::track_listener(listener), app).await.unwrap();
//! # }
//! ```
//!
//! With the `enabled` feature off, [`WebSocketUpgrade`] and [`WebSocket`] *are* axum's types
//! and [`track_listener`] returns its argument.

mod listener;
#[cfg(feature = "enabled")]
mod ws;

/// axum's WebSocket message, re-exported so one `use leakscope::axum::{...}` is enough.
pub use axum::extract::ws::Message;
pub use listener::track_listener;
#[cfg(feature = "enabled")]
pub use ws::{WebSocket, WebSocketUpgrade};

#[cfg(not(feature = "enabled"))]
pub use axum::extract::ws::{WebSocket, WebSocketUpgrade};
