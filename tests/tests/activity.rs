//! What an orphan is doing (issue 11, item 3): parked since its connection closed, or still
//! running, from poll counters the hooks already pass by.

use std::time::Duration;

use leakscope_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The dashboard's overview page, served on loopback and fetched over HTTP/1.0.
async fn overview_html() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        leakscope_dashboard::router().into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    body
}

#[test]
fn an_orphan_is_parked_or_still_running() {
    init(Duration::from_millis(300));
    if !hooks_mode() {
        eprintln!(
            "(explicit-spawn mode: plain spawns are not polled through the hooks; nothing to check)"
        );
        return;
    }
    run(async {
        let conn = leakscope::Connection::open("activity", None);
        let id = conn.id().unwrap();
        let (parked, running) = conn.in_scope(|| {
            let parked = tokio::spawn(std::future::pending::<()>());
            let running = tokio::spawn(async {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                loop {
                    tick.tick().await;
                }
            });
            (parked.id().to_string(), running.id().to_string())
        });
        // Both polled at least once before the close.
        wait_for("both tasks polled", Duration::from_secs(10), || async {
            let t = tasks_of(id);
            (t.len() == 2 && t.iter().all(|t| t.polls.unwrap_or(0) > 0)).then_some(())
        })
        .await;
        conn.close();
        let tasks = wait_for(
            "both orphans, the ticker ticking",
            Duration::from_secs(10),
            || async {
                let t = tasks_of(id);
                let ticking = t
                    .iter()
                    .any(|t| t.id.to_string() == running && t.polls_since_close.unwrap_or(0) >= 5);
                (t.iter().all(|t| t.orphan) && ticking).then_some(t)
            },
        )
        .await;
        let p = tasks.iter().find(|t| t.id.to_string() == parked).unwrap();
        assert_eq!(
            p.polls_since_close,
            Some(0),
            "parked since the close: {p:?}"
        );
        let r = tasks.iter().find(|t| t.id.to_string() == running).unwrap();
        assert!(
            r.last_poll_ms.unwrap() >= p.last_poll_ms.unwrap(),
            "{r:?} {p:?}"
        );
        assert_eq!(p.activity_text().as_deref(), Some("parked since close"));
        assert!(
            r.activity_text()
                .unwrap()
                .starts_with("still running: polled")
        );
        // The dashboard's orphan table says the same, for both.
        let page = overview_html().await;
        assert!(
            page.contains("parked since close"),
            "the parked orphan's row"
        );
        assert!(
            page.contains("still running: polled"),
            "the running orphan's row"
        );
    });
}
