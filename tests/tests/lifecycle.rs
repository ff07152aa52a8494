//! How tasks end: completed, aborted, panicked, shutdown; and a panicking handler still
//! records its connection's close.

use std::future::pending;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::Message;
use axum::response::Response;
use axum::routing::get;
use futures_util::SinkExt;
use leakscope::axum::WebSocketUpgrade;
use leakscope::{ConnState, EndedBy, TaskInfo};
use leakscope_tests::*;

const DEADLINE: Duration = Duration::from_secs(10);

fn app() -> Router {
    Router::new()
        .route("/ws/lifecycle", get(lifecycle))
        .route("/ws/panics", get(panics))
}

async fn lifecycle(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        let Some(Ok(_)) = socket.recv().await else {
            return;
        };
        // Abort it once it runs (a task aborted before its first poll is invisible without
        // hooks: it registers from inside).
        let (started, running) = tokio::sync::oneshot::channel();
        let doomed = leakscope::spawn_named("aborted", async move {
            let _ = started.send(());
            pending::<()>().await
        });
        let _ = running.await;
        doomed.abort();
        let _ = doomed.await;
        let _ =
            leakscope::spawn_named("panics", async { panic!("boom (expected by the test)") }).await;
        let _ = tokio::spawn(async { panic!("plain boom (expected by the test)") }).await;
        leakscope::spawn_named("completes", async {}).await.unwrap();
        let plain = tokio::spawn(pending::<()>());
        plain.abort();
        let _ = plain.await;
        let _ = socket.send(Message::text("done")).await;
        while let Some(Ok(_)) = socket.recv().await {}
    })
}

async fn panics(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        let _ = socket.recv().await;
        panic!("handler panic (expected by the test)");
    })
}

fn named<'a>(tasks: &'a [TaskInfo], conn: u64, name: &str) -> &'a TaskInfo {
    let full = format!("conn={conn} {name}");
    tasks
        .iter()
        .find(|t| t.name == full)
        .unwrap_or_else(|| panic!("no task {full:?} in {tasks:#?}"))
}

#[test]
fn tasks_end_as_completed_aborted_or_panicked() {
    init(Duration::from_millis(300));
    run(async {
        let addr = serve(app()).await;
        let mut c = Client::connect(addr, "/ws/lifecycle").await;
        assert_eq!(
            c.round_trip("go").await,
            Message::text("done").into_tungstenite_like()
        );
        let peer = c.peer();
        c.close().await;
        let conn = wait_for("the lifecycle connection to settle", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.state == ConnState::Closed && c.live_tasks == 0)
        })
        .await;
        let tasks = tasks_of(conn.id);
        let aborted = named(&tasks, conn.id, "aborted");
        assert_eq!(aborted.ended_by, Some(EndedBy::Aborted));
        assert_eq!(aborted.ended_by_exact, Some(true));
        assert_eq!(
            named(&tasks, conn.id, "panics").ended_by,
            Some(EndedBy::Panicked)
        );
        assert_eq!(
            named(&tasks, conn.id, "completes").ended_by,
            Some(EndedBy::Completed)
        );
        if hooks_mode() {
            let plain: Vec<_> = tasks
                .iter()
                .filter(|t| {
                    t.spawned_at.contains("lifecycle.rs") && t.name.contains("lifecycle.rs:")
                })
                .collect();
            assert!(
                plain.iter().any(|t| t.ended_by == Some(EndedBy::Panicked)),
                "a plain tokio::spawn that panics is `panicked`: {plain:#?}"
            );
            assert!(
                plain
                    .iter()
                    .any(|t| t.ended_by == Some(EndedBy::Completed)
                        && t.ended_by_exact == Some(false)),
                "a plain aborted task is `completed`, marked inexact: {plain:#?}"
            );
        }
    });
}

#[test]
fn a_panicking_handler_still_records_the_close() {
    init(Duration::from_millis(300));
    run(async {
        let addr = serve(app()).await;
        let mut c = Client::connect(addr, "/ws/panics").await;
        c.ws.send(tokio_tungstenite::tungstenite::Message::text("boom"))
            .await
            .unwrap();
        let peer = c.peer();
        let conn = wait_for(
            "the panicking handler's connection to close",
            DEADLINE,
            || async { conn_by_peer(&peer).filter(|c| c.state == ConnState::Closed) },
        )
        .await;
        assert!(conn.close_reason.is_some());
        if hooks_mode() {
            // The handler runs in axum's upgrade task, which is the connection's. Its socket is
            // dropped while the panic unwinds, before the task ends: wait for the end too.
            wait_for(
                "the handler's task to end by its panic",
                DEADLINE,
                || async {
                    let tasks = tasks_of(conn.id);
                    tasks
                        .iter()
                        .any(|t| t.ended_by == Some(EndedBy::Panicked))
                        .then_some(())
                },
            )
            .await;
        }
        drop(c);
    });
}

#[test]
fn tasks_pending_at_runtime_shutdown_end_as_shutdown() {
    init(Duration::from_millis(300));
    let rt = leakscope::runtime().worker_threads(1).build().unwrap();
    let conn = rt.block_on(async {
        let conn = leakscope::Connection::open("shutdown-test", None);
        conn.scope(async {
            leakscope::spawn_named("pending", pending::<()>());
            tokio::spawn(pending::<()>());
            tokio::task::yield_now().await;
        })
        .await;
        conn
    });
    let id = conn.id().unwrap();
    drop(rt);
    let tasks = tasks_of(id);
    let want = if hooks_mode() { 2 } else { 1 };
    assert_eq!(tasks.len(), want, "{tasks:#?}");
    for t in &tasks {
        let expected = if hooks_mode() {
            EndedBy::Shutdown
        } else {
            EndedBy::Aborted
        };
        assert_eq!(t.ended_by, Some(expected), "{t:#?}");
    }
}

trait IntoTungstenite {
    fn into_tungstenite_like(self) -> tokio_tungstenite::tungstenite::Message;
}

impl IntoTungstenite for Message {
    fn into_tungstenite_like(self) -> tokio_tungstenite::tungstenite::Message {
        match self {
            Message::Text(t) => tokio_tungstenite::tungstenite::Message::text(t.as_str()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn spawn_blocking_closures_are_tagged_tasks_and_their_bytes_the_connections() {
    init(Duration::from_millis(300));
    run(async {
        let conn = leakscope::Connection::open("blocking", None);
        let id = conn.id().unwrap();
        let kept = conn
            .scope(async {
                leakscope::spawn_blocking(|| vec![7u8; 300_000])
                    .await
                    .unwrap()
            })
            .await;
        let tasks = tasks_of(id);
        let t = tasks
            .iter()
            .find(|t| t.kind == "blocking")
            .unwrap_or_else(|| panic!("no blocking task in {tasks:#?}"));
        assert_eq!(t.ended_by, Some(EndedBy::Completed));
        assert!(t.spawned_at.contains("lifecycle.rs"), "{}", t.spawned_at);
        let c = leakscope::snapshot().connection(id).cloned().unwrap();
        assert!(
            c.live_bytes >= 300_000,
            "the closure's Vec is the connection's: {c:?}"
        );
        drop(kept);
        conn.close();
    });
}
