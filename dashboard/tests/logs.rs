//! A connection's own log lines on its page (issue 13 §4): the lines its handler and its
//! orphan logged, those after the close marked, each task linked, hostile text escaped.
//! Its own binary: it installs the global subscriber with `leakscope::layer()`.

mod common;

use axum::http::StatusCode;
use common::*;
use leakscope_dashboard::router;
use tracing_subscriber::prelude::*;

#[test]
fn the_connection_page_shows_what_it_logged() {
    tracing_subscriber::registry()
        .with(leakscope::layer())
        .init();
    run(async {
        let conn = leakscope::Connection::open("/logs/page", None);
        let id = conn.id().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut task = None;
        conn.scope(async {
            tracing::info!(user = 7, "<script>alert(1)</script> joined");
            task = Some(tokio::spawn(async move {
                let _ = rx.await;
                tracing::warn!("still here after the close");
                std::future::pending::<()>().await
            }));
        })
        .await;
        let task = task.expect("spawned");
        conn.close();
        // The task logs at least a millisecond after the close (lines are timed in ms).
        let closed = leakscope::connection_snapshot(id).unwrap().connections[0]
            .closed_at_ms
            .expect("closed");
        wait_for("the clock past the close", || {
            (leakscope::summary(0).taken_at_ms > closed).then_some(())
        })
        .await;
        tx.send(()).unwrap();
        let app = router();
        wait_for("the line logged after the close", || {
            let c = leakscope::connection_snapshot(id)?.connections.pop()?;
            c.events
                .iter()
                .any(|e| e.message.contains("still here"))
                .then_some(())
        })
        .await;
        let r = get(&app, &format!("/conn/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let body = r.body;
        let panel = &body[body.find(r#"id="log-lines""#).expect("the panel")..];
        assert!(
            panel.contains("&#60;script&#62;alert(1)&#60;/script&#62; joined"),
            "{panel}"
        );
        assert!(!panel.contains("<script>alert"), "escaped");
        assert!(panel.contains(r#"<td class="mono">user=7</td>"#), "{panel}");
        assert!(
            panel.contains(r#"<td class="level-WARN">WARN</td>"#),
            "{panel}"
        );
        let after = &panel[panel
            .find(r#"<tr class="log after-close">"#)
            .expect("marked")..];
        assert!(after.contains("still here after the close"), "{after}");
        let snap = leakscope::connection_snapshot(id).unwrap();
        let task_id = snap.tasks_of(id).next().expect("its task").id;
        assert!(
            after.contains(&format!(r#"task/{task_id}">{task_id}</a>"#)),
            "{after}"
        );
        task.abort();
    });
}
