//! The machine-readable routes: JSON snapshot, history and report, Prometheus, health.

use axum::extract::RawQuery;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::DashResult;
use crate::query::Params;
use crate::sampler;

fn json_response<T: Serialize>(value: &T) -> DashResult<Response> {
    let body = leakscope::untracked(|| serde_json::to_string(value))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/snapshot`: `leakscope::snapshot()` as JSON (the public contract).
pub(crate) async fn snapshot() -> DashResult<Response> {
    let snap = leakscope::untracked(leakscope::snapshot);
    json_response(&snap)
}

/// `GET /health`.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics() -> Response {
    let text = leakscope::untracked(|| prometheus_text(&leakscope::summary(0)));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /api/history`: the last 10 minutes of totals, one point per second.
pub(crate) async fn history(RawQuery(q): RawQuery) -> DashResult<Response> {
    Params::parse(q.as_deref(), &[])?;
    sampler::ensure_running();
    let h = leakscope::untracked(sampler::history);
    json_response(&h)
}

#[derive(Serialize)]
struct ConfigInfo {
    grace_ms: u64,
    retention_ms: u64,
    max_closed_connections: usize,
    max_leaking_connections: usize,
    max_ended_tasks_per_connection: usize,
    retained_bytes_threshold: u64,
}

#[derive(Serialize)]
struct BuildInfo {
    dashboard_version: &'static str,
    leakscope_enabled: bool,
    tokio_unstable: bool,
    taskdump: bool,
    debug_assertions: bool,
    target_os: &'static str,
    target_arch: &'static str,
}

#[derive(Serialize)]
struct Report {
    generated_at_ms: u64,
    snapshot: leakscope::Snapshot,
    history: sampler::History,
    config: ConfigInfo,
    build: BuildInfo,
}

/// `GET /api/report`: everything for a post-mortem, as a JSON download.
pub(crate) async fn report(RawQuery(q): RawQuery) -> DashResult<Response> {
    Params::parse(q.as_deref(), &[])?;
    let (report, body) = leakscope::untracked(|| {
        let c = leakscope::config();
        let snapshot = leakscope::snapshot();
        let r = Report {
            generated_at_ms: snapshot.taken_at_ms,
            history: sampler::history(),
            config: ConfigInfo {
                grace_ms: c.grace.as_millis() as u64,
                retention_ms: c.retention.as_millis() as u64,
                max_closed_connections: c.max_closed_connections,
                max_leaking_connections: c.max_leaking_connections,
                max_ended_tasks_per_connection: c.max_ended_tasks_per_connection,
                retained_bytes_threshold: c.retained_bytes_threshold,
            },
            build: BuildInfo {
                dashboard_version: env!("CARGO_PKG_VERSION"),
                leakscope_enabled: leakscope::ENABLED,
                tokio_unstable: cfg!(tokio_unstable),
                taskdump: crate::dump::AVAILABLE,
                debug_assertions: cfg!(debug_assertions),
                target_os: std::env::consts::OS,
                target_arch: std::env::consts::ARCH,
            },
            snapshot,
        };
        let body = serde_json::to_string_pretty(&r);
        (r.generated_at_ms, body)
    });
    let disposition = format!("attachment; filename=\"leakscope-report-{report}.json\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body?,
    )
        .into_response())
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
    metric(
        "tasks_ended_total",
        "counter",
        "Tagged tasks that ended.",
        t.tasks_ended,
    );
    metric(
        "connections_leaking",
        "gauge",
        "Leaking connections (orphan tasks or retained bytes), listed or folded into totals.",
        t.connections_leaking,
    );
    metric(
        "connections_ignored_total",
        "counter",
        "Connections forgotten as the tool's own traffic.",
        t.connections_ignored,
    );
    metric(
        "connections_evicted_total",
        "counter",
        "Judged connections whose details were evicted (their counts stay in the totals).",
        t.connections_evicted,
    );
    metric(
        "connections_untracked_total",
        "counter",
        "Connections counted but not tracked: every slot was open or awaiting its verdict.",
        t.connections_untracked,
    );
    let _ = writeln!(out, "# HELP leakscope_mode_info The active tracking mode.");
    let _ = writeln!(out, "# TYPE leakscope_mode_info gauge");
    let _ = writeln!(out, "leakscope_mode_info{{mode=\"{}\"}} 1", s.mode.as_str());
    out
}
