//! A connection's own log lines: with `leakscope::layer()` in the subscriber, the last
//! `tracing` events its code emitted (its handler, its tasks, their blocking tasks, also
//! after the close) are kept with it, bounded, and come with a leaking row of a full
//! snapshot. Its own binary: it installs the global subscriber and the configuration.

use std::time::Duration;

use axum::routing::get;
use leakscope::axum::{WebSocket, WebSocketUpgrade};
use leakscope_tests::*;
use tracing_subscriber::prelude::*;

const GRACE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(10);
const KEEP: usize = 8;

fn setup() {
    let _ = leakscope::Builder::new()
        .grace(GRACE)
        .events_per_connection(KEEP)
        .install();
    let _ = tracing_subscriber::registry()
        .with(leakscope::layer())
        .try_init();
}

/// Logs, then leaves a forwarder that logs every 50 ms forever (after the close too).
async fn leaky(s: WebSocket) {
    tracing::info!(room = "lobby", "joined");
    // A plain `tokio::spawn` where hooks see it; leakscope's where only it is seen.
    let spawn = if hooks_mode() {
        tokio::spawn::<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>
    } else {
        leakscope::spawn
    };
    spawn(Box::pin(async {
        tracing::warn!("forwarder started");
        let mut n = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            n += 1;
            tracing::debug!(n, "forwarded");
        }
    }));
    echo(s).await
}

/// Logs and leaks nothing.
async fn clean(s: WebSocket) {
    tracing::info!("hello");
    tokio::task::spawn_blocking(|| tracing::info!("from a blocking task"))
        .await
        .unwrap();
    echo(s).await
}

fn app() -> axum::Router {
    axum::Router::new()
        .route(
            "/events/leaky",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(leaky) }),
        )
        .route(
            "/events/clean",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(clean) }),
        )
}

#[test]
fn a_leaking_connection_comes_with_what_it_logged() {
    setup();
    run(async {
        let addr = serve(app()).await;
        let peer = Client::visit(addr, "/events/leaky").await;
        // The full snapshot's leaking row carries the lines, the latest ones emitted by the
        // orphan after the close, the oldest ones dropped (counted).
        let c = wait_for("a leaking row with its log lines", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.orphan_tasks == 1 && c.events_dropped > 0)
        })
        .await;
        assert_eq!(c.events.len(), KEEP, "{:?}", c.events);
        let last = c.events.last().unwrap();
        assert_eq!(
            (last.level.as_str(), last.message.as_str()),
            ("DEBUG", "forwarded")
        );
        assert!(last.fields.starts_with("n="), "{last:?}");
        assert!(
            last.at_ms > c.closed_at_ms.unwrap(),
            "logged after the close"
        );
        assert!(last.target.ends_with("conn_events"), "{last:?}");
        let orphan = tasks_of(c.id).into_iter().find(|t| t.orphan).unwrap();
        assert_eq!(last.task_id, Some(orphan.id), "{last:?} {orphan:?}");
        let times: Vec<u64> = c.events.iter().map(|e| e.at_ms).collect();
        assert!(times.is_sorted(), "oldest first: {times:?}");
        // Looked up alone: the same lines, and the count of the dropped ones goes on.
        let alone = leakscope::connection_snapshot(c.id).unwrap().connections;
        assert!(alone[0].events_dropped >= c.events_dropped);
    });
}

#[test]
fn a_clean_connection_keeps_its_lines_but_a_full_snapshot_leaves_them_out() {
    setup();
    run(async {
        let addr = serve(app()).await;
        let peer = Client::visit(addr, "/events/clean").await;
        let c = wait_for("the clean connection judged", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.closed_at_ms.is_some() && c.live_tasks == 0)
        })
        .await;
        assert!(c.events.is_empty(), "only leaking rows carry lines: {c:?}");
        let alone = leakscope::connection_snapshot(c.id).unwrap().connections;
        let lines: Vec<&str> = alone[0].events.iter().map(|e| e.message.as_str()).collect();
        let expected: &[&str] = if hooks_mode() {
            &["hello", "from a blocking task"]
        } else {
            // Without hooks, a plain blocking task is nobody's.
            &["hello"]
        };
        assert_eq!(lines, expected);
        assert_eq!(alone[0].events_dropped, 0);
    });
}

#[test]
fn long_lines_are_cut_and_untracked_code_is_nobodys() {
    setup();
    run(async {
        let conn = leakscope::Connection::open("/events/direct", None);
        let id = conn.id().unwrap();
        let huge = "x".repeat(100_000);
        conn.scope(async { tracing::error!(blob = %huge, "{}", huge) })
            .await;
        tracing::info!("outside any connection");
        leakscope::untracked(|| tracing::info!("untracked"));
        let alone = leakscope::connection_snapshot(id).unwrap().connections;
        let e = &alone[0].events;
        assert_eq!(e.len(), 1, "{e:?}");
        let max = leakscope::LogEvent::MAX_TEXT + '…'.len_utf8();
        assert!(e[0].message.len() <= max && e[0].message.ends_with('…'));
        assert!(e[0].fields.len() <= max && e[0].fields.starts_with("blob=xxx"));
        conn.close();
    });
}
