//! A free on a thread that never polls again (tokio's blocking pool) reaches the snapshot
//! (issue 8, defect 5). Its own binary: default caps, so the connection stays listed.

use std::time::Duration;

use axum::extract::ws::Message;
use axum::routing::get;
use leakscope::ConnState;
use leakscope::axum::WebSocketUpgrade;
use leakscope_tests::*;

const GRACE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(10);

fn app() -> axum::Router {
    axum::Router::new().route(
        "/fs",
        get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut s| async move {
                // tokio::fs frees the buffer on a blocking-pool thread.
                let path = std::env::temp_dir().join(format!("leakscope-{}", std::process::id()));
                tokio::fs::write(&path, vec![2u8; 200_000]).await.unwrap();
                let _ = tokio::fs::remove_file(&path).await;
                let _ = s.send(Message::Text("written".into())).await;
                while let Some(Ok(_)) = s.recv().await {}
            })
        }),
    )
}

/// Defect 5: a free on a thread that never polls again (tokio's blocking pool) used to stay in
/// that thread's batch, so the connection showed the buffer as retained.
#[test]
fn a_free_on_a_blocking_thread_reaches_the_snapshot() {
    init(GRACE);
    run(async {
        let addr = serve(app()).await;
        let mut c = Client::connect(addr, "/fs").await;
        let peer = c.peer();
        c.round_trip("go").await;
        c.close().await;
        let closed = wait_for("the close", DEADLINE, || async {
            conn_by_peer(&peer)
                .filter(|c| c.state == ConnState::Closed)
                .and_then(|c| c.closed_at_ms)
        })
        .await;
        // Judged at close + grace. Before the fix the buffer stayed in the blocking thread's
        // batch, and the connection retained 200 KB.
        let verdict = wait_for("the verdict", DEADLINE, || async {
            let past = leakscope::summary(0).taken_at_ms > closed + GRACE.as_millis() as u64 + 1000;
            past.then(|| conn_by_peer(&peer)).flatten()
        })
        .await;
        assert!(
            verdict.live_bytes < 200_000 && !verdict.leaking_memory,
            "{verdict:?}"
        );
    });
}
