//! The report files (`LEAKSCOPE_REPORT`, `Builder::report`): written on demand (`write_report`,
//! `POST /api/report/save`, guarded like every side effect) and at a graceful shutdown (a
//! router built with a shutdown token, over a real socket; the standalone server's
//! `Dashboard::shutdown`), the same JSON as `GET /api/report`, with the HTML viewer beside it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::*;
use leakscope_dashboard::{CancellationToken, ReportError, RouterOptions, router_with};
use serde_json::Value;

/// The configured report path of this test binary (its directory is this process's own).
fn configured() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = temp_dir("configured");
        let path = dir.join("r.json");
        leakscope::Builder::new()
            .grace(Duration::from_millis(50))
            .report(&path)
            .install()
            .expect("the report path is installed before leakscope is used");
        path
    })
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "leakscope-report-test-{what}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// The two files at the configured path, parsed: (the JSON, the HTML's text).
fn read_report(json: &Path) -> (Value, String) {
    let text = std::fs::read_to_string(json).expect("the JSON file");
    let v: Value = serde_json::from_str(&text).expect("the JSON file is JSON");
    let html = std::fs::read_to_string(json.with_extension("html")).expect("the HTML file");
    (v, html)
}

fn remove_report(json: &Path) {
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(json.with_extension("html"));
}

/// The report names the orphan of connection `conn`, labelled `label`.
fn assert_names_orphan(v: &Value, conn: u64, label: &str) {
    let conns = v["snapshot"]["connections"]
        .as_array()
        .expect("connections");
    let c = conns
        .iter()
        .find(|c| c["id"] == conn)
        .unwrap_or_else(|| panic!("connection {conn} in the report"));
    assert_eq!(c["label"], label);
    assert_eq!(c["orphan_tasks"], 1);
    let tasks = v["snapshot"]["tasks"].as_array().expect("tasks");
    assert!(
        tasks
            .iter()
            .any(|t| t["conn_id"] == conn && t["orphan"] == true),
        "its orphan task is listed"
    );
}

#[test]
fn the_report_files_on_demand_and_at_every_graceful_shutdown() {
    let path = configured();
    run(async {
        let (conn, _) = make_orphan("report/<orphan>").await;

        // On demand: the route, which the same-origin rule and the token guard.
        let app = router_with(RouterOptions::new());
        let cross = [("sec-fetch-site", "cross-site")];
        let r = request(&app, Method::POST, "/api/report/save", &cross).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        let guarded = router_with(RouterOptions::new().bearer_token("tok"));
        let r = request(&guarded, Method::POST, "/api/report/save", &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert!(!path.exists(), "a refused request writes nothing");
        let r = request(&app, Method::GET, "/api/report/save", &[]).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

        let r = request(&app, Method::POST, "/api/report/save", &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.header("content-type"), "application/json");
        let files: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(files["json"], path.to_string_lossy().as_ref());
        assert_eq!(
            files["html"],
            path.with_extension("html").to_string_lossy().as_ref()
        );
        let (saved, html) = read_report(path);
        assert_names_orphan(&saved, conn, "report/<orphan>");
        assert!(
            html.contains("report/\\u003corphan\\u003e"),
            "the label, escaped"
        );

        // The same JSON as GET /api/report: the same fields, the same configuration and build.
        let live: Value = serde_json::from_str(&get(&app, "/api/report").await.body).expect("JSON");
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&saved), keys(&live));
        assert_eq!(keys(&saved["snapshot"]), keys(&live["snapshot"]));
        assert_eq!(saved["config"], live["config"]);
        assert_eq!(saved["build"], live["build"]);
        assert_eq!(saved["config"]["grace_ms"], 50);
        remove_report(path);

        // A router without a shutdown token, or whose token is never cancelled: nothing.
        drop(router_with(RouterOptions::new()));
        drop(router_with(
            RouterOptions::new().shutdown(CancellationToken::new()),
        ));
        assert!(!path.exists(), "no graceful shutdown, no report");

        // A nested router's graceful shutdown, over a real socket.
        let stop = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(LOOPBACK).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .nest(
                "/_leakscope",
                router_with(RouterOptions::new().shutdown(stop.clone())),
            )
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let signal = stop.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.cancelled().await })
                .await
                .expect("serve")
        });
        let r = http(addr, &get_req("/_leakscope/health", "localhost")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!path.exists(), "nothing before the shutdown");
        stop.cancel();
        tokio::time::timeout(DEADLINE, server)
            .await
            .expect("the graceful shutdown ends")
            .expect("the server task");
        // The last connection task lets go of the router just after axum's serve returns.
        wait_for("the report of the router's shutdown", || {
            path.with_extension("html").exists().then_some(())
        })
        .await;
        let (v, _) = read_report(path);
        assert_names_orphan(&v, conn, "report/<orphan>");
        remove_report(path);

        // The standalone server: on disk when `shutdown` returns.
        let d =
            leakscope_dashboard::serve(leakscope_dashboard::Options::default().addr("127.0.0.1:0"))
                .await
                .expect("serve")
                .expect("leakscope is on");
        let r = http(d.addr, &get_req("/health", "localhost")).await;
        assert_eq!(r.status, StatusCode::OK);
        d.shutdown().await;
        let (v, html) = read_report(path);
        assert_names_orphan(&v, conn, "report/<orphan>");
        assert!(html.contains("<script type=\"application/json\" id=\"report\">"));
    });
    let _ = std::fs::remove_dir_all(path.parent().expect("its directory"));
}

#[test]
fn write_report_errors_name_the_path() {
    let _ = configured();
    let dir = temp_dir("errors");
    let missing = dir.join("no-such-dir").join("r.json");
    let e = leakscope_dashboard::write_report(Some(&missing)).expect_err("no directory");
    assert!(matches!(e, ReportError::Io { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&*missing.to_string_lossy()), "{msg}");
    assert!(msg.contains("does the directory"), "{msg}");
    let e = leakscope_dashboard::write_report(Some(&dir.join("r.html"))).expect_err("clash");
    assert!(e.to_string().contains("ends in .html"), "{e}");
    // A path of its own, given: written there, the configured one untouched.
    let own = dir.join("own.json");
    let files = leakscope_dashboard::write_report(Some(&own)).expect("written");
    assert_eq!(files.json, own);
    assert_eq!(files.html, dir.join("own.html"));
    let (v, html) = read_report(&own);
    assert!(v["snapshot"].is_object() && v["history"].is_object());
    assert!(html.starts_with("<!doctype html>"));
    std::fs::remove_dir_all(&dir).expect("clean up");
}
