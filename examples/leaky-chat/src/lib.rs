//! leaky-chat: an axum WebSocket chat with one clean route and several classic leaks.
//!
//! Run with: `cargo xtask demo` (see the repository README).
//!
//! | route | what it does | leakscope shows |
//! |---|---|---|
//! | `/ws` | chat; the two halves' tasks stop each other when the socket closes | nothing |
//! | `/ws/leaky/forwarder` | the broadcast-forwarding task is never aborted and ignores send errors | one orphan per closed connection |
//! | `/ws/leaky/heartbeat` | a helper starts a heartbeat with plain `tokio::spawn`, which spawns a ticker | two orphans per closed connection |
//! | `/ws/leaky/bytes` | keeps each connection's messages in a global map after close | retained bytes per connection |
//! | `/ws/leaky/slow` | keeps a 6 KiB session record per connection; the first connection starts a global stats reporter | a route-level slow leak; a shared task |
//! | `/ws/leaky/zombie` | hands its socket to a task that never reads it | a zombie connection (the peer left, nobody read) and its orphan |

pub mod chat;
pub mod heartbeat;
pub mod load;
pub mod slow;
pub mod zombie;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use tokio::sync::broadcast;

/// Shared state of the chat.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Every chat message goes to every connected client.
    pub tx: broadcast::Sender<String>,
    /// `/ws/leaky/bytes` keeps each connection's messages here, forever (the leak).
    pub kept: Arc<Mutex<HashMap<u64, Vec<Vec<u8>>>>>,
    /// `/ws/leaky/slow` keeps a session record per connection here, forever (the slow leak).
    pub sessions: Arc<Mutex<Vec<Vec<u8>>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl AppState {
    /// A fresh chat.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(256);
        AppState {
            tx,
            kept: Arc::default(),
            sessions: Arc::default(),
            next_id: Arc::default(),
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}

/// The chat's routes. Tests call this and serve it on port 0.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(chat::index))
        .route("/ws", get(chat::clean))
        .route("/ws/leaky/forwarder", get(chat::leaky_forwarder))
        .route("/ws/leaky/heartbeat", get(heartbeat::leaky_heartbeat))
        .route("/ws/leaky/bytes", get(chat::leaky_bytes))
        .route("/ws/leaky/slow", get(slow::leaky_slow))
        .route("/ws/leaky/zombie", get(zombie::leaky_zombie))
        .with_state(state)
}

/// The routes `--load` and the load generator drive.
pub const ROUTES: [&str; 6] = [
    "/ws",
    "/ws/leaky/forwarder",
    "/ws/leaky/heartbeat",
    "/ws/leaky/bytes",
    "/ws/leaky/slow",
    "/ws/leaky/zombie",
];
