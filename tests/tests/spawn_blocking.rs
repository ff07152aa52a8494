//! A plain `tokio::task::spawn_blocking` (no spawn hook fires for it) inside a connection, seen
//! through `leakscope::layer()` in the subscriber: parked on a channel after the close it is an
//! orphan of its connection, with its bytes; one that returns ends as completed. Its own binary:
//! it installs the global subscriber.

use std::sync::Mutex;
use std::time::Duration;

use axum::routing::get;
use leakscope::axum::{WebSocket, WebSocketUpgrade};
use leakscope::{ConnState, EndedBy, TaskKind, TaskState};
use leakscope_tests::*;
use tracing_subscriber::prelude::*;

const GRACE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(10);
const KEPT: usize = 100 * 1024;

static SENDERS: Mutex<Vec<std::sync::mpsc::Sender<u64>>> = Mutex::new(Vec::new());

fn setup() {
    init(GRACE);
    let _ = tracing_subscriber::registry()
        .with(leakscope::layer())
        .try_init();
}

/// A blocking worker parked on a channel whose Sender outlives the connection.
async fn parked(s: WebSocket) {
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    SENDERS.lock().unwrap().push(tx);
    tokio::task::spawn_blocking(move || {
        let state = vec![1u8; KEPT];
        while rx.recv().is_ok() {}
        drop(state);
    });
    echo(s).await
}

/// The same with `leakscope::spawn_blocking` (seen without the layer).
async fn parked_wrapped(s: WebSocket) {
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    SENDERS.lock().unwrap().push(tx);
    leakscope::spawn_blocking(move || {
        let state = vec![1u8; KEPT];
        while rx.recv().is_ok() {}
        drop(state);
    });
    echo(s).await
}

/// A blocking job that returns.
async fn done(s: WebSocket) {
    let sum = tokio::task::spawn_blocking(|| (0..1000u64).sum::<u64>())
        .await
        .unwrap();
    assert_eq!(sum, 499_500);
    echo(s).await
}

fn app() -> axum::Router {
    axum::Router::new()
        .route(
            "/blocking/parked",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(parked) }),
        )
        .route(
            "/blocking/wrapped",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(parked_wrapped) }),
        )
        .route(
            "/blocking/done",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(done) }),
        )
}

#[test]
fn a_plain_spawn_blocking_is_its_connections_task() {
    setup();
    if !hooks_mode() {
        eprintln!(
            "skipped: a plain spawn_blocking is seen through tokio's tracing spans, which need \
             --cfg tokio_unstable (hooks mode)"
        );
        return;
    }
    run(async {
        let addr = serve(app()).await;
        let mut peers = Vec::new();
        for _ in 0..4 {
            peers.push(Client::visit(addr, "/blocking/parked").await);
        }
        peers.push(Client::visit(addr, "/blocking/wrapped").await);
        for peer in &peers {
            let c = wait_for(
                "the parked blocking task as an orphan",
                DEADLINE,
                || async { conn_by_peer(peer).filter(|c| c.orphan_tasks == 1) },
            )
            .await;
            let t = tasks_of(c.id).into_iter().find(|t| t.orphan).unwrap();
            assert_eq!(t.kind, TaskKind::Blocking, "{t:?}");
            assert!(t.spawned_at.contains("spawn_blocking.rs"), "{t:?}");
            let c = wait_for("its bytes as retained", DEADLINE, || async {
                conn_by_peer(peer).filter(|c| c.retained_bytes >= KEPT as u64)
            })
            .await;
            assert_eq!(c.state, ConnState::Closed);
        }
        let peer = Client::visit(addr, "/blocking/done").await;
        let c = wait_for("the finished blocking task", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.tasks_spawned >= 1 && c.live_tasks == 0)
        })
        .await;
        let t = tasks_of(c.id)
            .into_iter()
            .find(|t| t.kind == TaskKind::Blocking)
            .expect("the blocking task is listed");
        assert_eq!(t.state, TaskState::Ended);
        assert_eq!(t.ended_by, Some(EndedBy::Completed), "{t:?}");
        assert!(!t.orphan);
    });
}
