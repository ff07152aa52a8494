//! The sampler, `/api/history`, the SSE stream and its shutdown, and the standalone server.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use leakscope_dashboard::{CancellationToken, Options, ServeError, router, router_with_shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

#[test]
fn history_fills_once_a_second() {
    run(async {
        let app = router();
        let first = get(&app, "/api/history").await; // starts the sampler
        assert_eq!(first.status, StatusCode::OK);
        let mut points = 0;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while points < 2 {
            assert!(tokio::time::Instant::now() < deadline, "history never grew");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let r = get(&app, "/api/history").await;
            let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
            assert_eq!(v["interval_ms"], 1000);
            assert_eq!(v["capacity"], 600);
            let t = v["t"].as_array().expect("t").len();
            for col in [
                "open_connections",
                "live_tasks",
                "orphan_tasks",
                "live_bytes",
                "retained_bytes",
            ] {
                assert_eq!(v[col].as_array().expect(col).len(), t, "{col}");
            }
            points = t;
        }
    });
}

/// Reads SSE frames until one holds a `summary` event; returns its JSON.
async fn next_summary(body: &mut Body) -> serde_json::Value {
    let mut buf = String::new();
    loop {
        let frame = tokio::time::timeout(DEADLINE, body.frame())
            .await
            .expect("an event within the deadline")
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&data).expect("utf-8"));
        }
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.starts_with("event: summary\n") {
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("data line");
                return serde_json::from_str(data).expect("summary JSON");
            }
        }
    }
}

#[test]
fn events_stream_summaries_and_end_on_shutdown() {
    run(async {
        let (conn, task) = make_orphan("live/sse").await;
        let stop = CancellationToken::new();
        let app = router_with_shutdown(stop.clone());
        let mut req = Request::get("/api/events").body(Body::empty()).unwrap();
        req.extensions_mut().insert(loopback_peer());
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let mut body = res.into_body();
        // The first event is the latest sample, which may predate the orphan: read on until a
        // summary lists it (next_summary fails the test after the deadline).
        let has_row = |s: &serde_json::Value| {
            s["orphans"].as_array().is_some_and(|rows| {
                rows.iter().any(|o| {
                    o["task_id"] == task && o["conn_id"] == conn && o["label"] == "live/sse"
                })
            })
        };
        let mut s = next_summary(&mut body).await;
        while !has_row(&s) {
            s = next_summary(&mut body).await;
        }
        assert!(s["totals"]["orphan_tasks"].as_u64() >= Some(1), "{s}");
        assert!(s["heap"].is_object() && s["point"]["t_ms"].is_u64(), "{s}");
        assert!(s["hash"].as_str().is_some_and(|h| h.len() == 16), "{s}");
        // A second summary arrives about a second later.
        let s2 = next_summary(&mut body).await;
        assert!(s2["t"].as_u64() > s["t"].as_u64());

        stop.cancel();
        let ended = tokio::time::timeout(DEADLINE, async {
            while let Some(frame) = body.frame().await {
                frame.expect("frame");
            }
        })
        .await;
        assert!(ended.is_ok(), "the stream did not end after shutdown");
    });
}

async fn raw_get(addr: std::net::SocketAddr, path: &str, keep_open: bool) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let conn = if keep_open { "keep-alive" } else { "close" };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: {conn}\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    s
}

#[test]
fn standalone_server_serves_and_shuts_down_with_a_tab_open() {
    run(async {
        let d = leakscope_dashboard::serve(Options::default().addr("127.0.0.1:0"))
            .await
            .expect("serve")
            .expect("leakscope is enabled in tests");
        let mut s = raw_get(d.addr, "/health", false).await;
        let mut out = String::new();
        tokio::time::timeout(DEADLINE, s.read_to_string(&mut out))
            .await
            .expect("reply")
            .expect("read");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("ok\n"), "{out}");

        // An open live stream (a browser tab) must not hold up shutdown.
        let mut tab = raw_get(d.addr, "/api/events", true).await;
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("event: summary") {
            let n = tokio::time::timeout(DEADLINE, tab.read(&mut chunk))
                .await
                .expect("a summary within the deadline")
                .expect("read");
            assert!(n > 0, "stream closed early");
            seen.extend_from_slice(&chunk[..n]);
        }
        tokio::time::timeout(DEADLINE, d.shutdown())
            .await
            .expect("shutdown finished although a live stream was open");
        let eof = tokio::time::timeout(DEADLINE, async {
            loop {
                match tab.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(eof.is_ok(), "the live stream stayed open after shutdown");
    });
}

#[test]
fn standalone_server_refuses_unsafe_addresses() {
    run(async {
        let e = leakscope_dashboard::serve(Options::default().addr("0.0.0.0:0"))
            .await
            .expect_err("non-loopback without opt-in");
        assert!(matches!(e, ServeError::NonLoopback(_)), "{e}");
        let e = leakscope_dashboard::serve(
            Options::default()
                .addr("0.0.0.0:0")
                .allow_non_loopback(true),
        )
        .await
        .expect_err("non-loopback without a token");
        assert!(matches!(e, ServeError::TokenRequired(_)), "{e}");
        let e = leakscope_dashboard::serve(Options::default().addr("nope"))
            .await
            .expect_err("bad address");
        assert!(
            e.to_string().contains("\"nope\" is not a socket address"),
            "{e}"
        );
    });
}
