//! The JSON, Prometheus and health routes.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Every dashboard route, ready to nest: `app.nest("/_leakscope", leakscope_dashboard::router())`.
pub fn router() -> Router {
    Router::new()
        .route("/api/snapshot", get(snapshot))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
}

async fn snapshot() -> Response {
    let body = leakscope::untracked(|| serde_json::to_string(&leakscope::snapshot()));
    match body {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not encode the snapshot: {e}"),
        )
            .into_response(),
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn metrics() -> Response {
    let text = leakscope::untracked(|| prometheus_text(&leakscope::snapshot()));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The snapshot's gauges and counters in Prometheus text format.
pub(crate) fn prometheus_text(s: &leakscope::Snapshot) -> String {
    use std::fmt::Write;
    let t = &s.totals;
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP leakscope_{name} {help}");
        let _ = writeln!(out, "# TYPE leakscope_{name} {kind}");
        let _ = writeln!(out, "leakscope_{name} {value}");
    };
    metric(
        "open_connections",
        "gauge",
        "Connections whose socket is open.",
        t.open_connections,
    );
    metric(
        "live_tasks",
        "gauge",
        "Tasks tagged with a connection and still alive.",
        t.live_tasks,
    );
    metric(
        "orphan_tasks",
        "gauge",
        "Tasks alive past their connection's close plus the grace period.",
        t.orphan_tasks,
    );
    metric(
        "live_bytes",
        "gauge",
        "Heap bytes charged to connections and not yet freed.",
        s.heap.connection_live_bytes,
    );
    metric(
        "retained_bytes",
        "gauge",
        "Live bytes of closed connections past their grace period.",
        s.heap.retained_bytes,
    );
    metric(
        "connections_leaking_memory",
        "gauge",
        "Closed connections retaining more than the threshold.",
        t.connections_leaking_memory,
    );
    metric(
        "connections_opened_total",
        "counter",
        "Connections opened.",
        t.connections_opened,
    );
    metric(
        "connections_closed_total",
        "counter",
        "Connections closed.",
        t.connections_closed,
    );
    metric(
        "tasks_spawned_total",
        "counter",
        "Tasks tagged with a connection.",
        t.tasks_spawned,
    );
    let _ = writeln!(out, "# HELP leakscope_mode_info The active tracking mode.");
    let _ = writeln!(out, "# TYPE leakscope_mode_info gauge");
    let _ = writeln!(out, "leakscope_mode_info{{mode=\"{}\"}} 1", s.mode.as_str());
    out
}
