//! `GET /metrics`: the totals of a leakscope snapshot as Prometheus text, one row of
//! [`METRICS`] per metric, then the per-route and per-site series ([`mod@routes`]).

use std::fmt::Write;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use leakscope::Snapshot;

mod routes;

/// A metric: name (after `leakscope_`), type, help text, and where its value comes from.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Snapshot) -> u64,
);

/// Every exported number, in the order of the text. Names and help texts are a public
/// contract (dashboards and alerts use them): add rows, never rename one.
const METRICS: &[Metric] = &[
    (
        "open_connections",
        "gauge",
        "Connections whose socket is open.",
        |s| s.totals.open_connections,
    ),
    (
        "live_tasks",
        "gauge",
        "Tasks tagged with a connection and still alive.",
        |s| s.totals.live_tasks,
    ),
    (
        "orphan_tasks",
        "gauge",
        "Tasks alive past their connection's close plus the grace period.",
        |s| s.totals.orphan_tasks,
    ),
    (
        "live_bytes",
        "gauge",
        "Heap bytes charged to connections and not yet freed.",
        |s| s.heap.connection_live_bytes,
    ),
    (
        "retained_bytes",
        "gauge",
        "Live bytes of closed connections past their grace period.",
        |s| s.heap.retained_bytes,
    ),
    (
        "connections_leaking_memory",
        "gauge",
        "Closed connections retaining more than the threshold.",
        |s| s.totals.connections_leaking_memory,
    ),
    (
        "connections_opened_total",
        "counter",
        "Connections opened.",
        |s| s.totals.connections_opened,
    ),
    (
        "connections_closed_total",
        "counter",
        "Connections closed.",
        |s| s.totals.connections_closed,
    ),
    (
        "tasks_spawned_total",
        "counter",
        "Tasks tagged with a connection.",
        |s| s.totals.tasks_spawned,
    ),
    (
        "tasks_ended_total",
        "counter",
        "Tagged tasks that ended.",
        |s| s.totals.tasks_ended,
    ),
    (
        "connections_leaking",
        "gauge",
        "Leaking connections (orphan tasks or retained bytes), listed or folded into totals.",
        |s| s.totals.connections_leaking,
    ),
    (
        "connections_ignored_total",
        "counter",
        "Connections forgotten as the tool's own traffic.",
        |s| s.totals.connections_ignored,
    ),
    (
        "connections_evicted_total",
        "counter",
        "Judged connections whose details were evicted (their counts stay in the totals).",
        |s| s.totals.connections_evicted,
    ),
    (
        "connections_untracked_total",
        "counter",
        "Connections counted but not tracked: every slot was open or awaiting its verdict.",
        |s| s.totals.connections_untracked,
    ),
    (
        "shared_tasks",
        "gauge",
        "Tasks alive past their connection's grace period that are shared globals, not orphans.",
        |s| s.totals.shared_tasks,
    ),
    (
        "routes_leaking",
        "gauge",
        "Routes whose closed connections keep retaining bytes as a group (slow leaks).",
        |s| s.totals.routes_leaking,
    ),
    (
        "zombie_connections",
        "gauge",
        "Listed connections closed as zombies: the peer left (FIN or RST) and nobody read the socket.",
        |s| s.totals.zombie_connections,
    ),
];

/// `GET /metrics`: Prometheus text, from [`leakscope::connections_snapshot`] (exact totals; the
/// listed connections and the signatures for the per-route and per-site series; no task rows,
/// so a scrape's cost grows with connections, not tasks).
pub(crate) async fn metrics() -> Response {
    let text = prometheus_text(&leakscope::connections_snapshot());
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
fn prometheus_text(s: &Snapshot) -> String {
    let mut out = String::with_capacity(2048);
    for (name, kind, help, value) in METRICS {
        let value = value(s);
        let _ = writeln!(out, "# HELP leakscope_{name} {help}");
        let _ = writeln!(out, "# TYPE leakscope_{name} {kind}");
        let _ = writeln!(out, "leakscope_{name} {value}");
    }
    let _ = writeln!(out, "# HELP leakscope_mode_info The active tracking mode.");
    let _ = writeln!(out, "# TYPE leakscope_mode_info gauge");
    let _ = writeln!(out, "leakscope_mode_info{{mode=\"{}\"}} 1", s.mode.as_str());
    routes::write(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    /// Every total has a distinct value, so a row reading the wrong field shows.
    #[test]
    fn text_is_unchanged() {
        let snap = crate::testing::snapshot(serde_json::json!({
            "totals": {"connections_opened": 1, "connections_closed": 2, "tasks_spawned": 3,
                "orphan_tasks": 4, "live_tasks": 5, "open_connections": 6,
                "connections_evicted": 7, "connections_untracked": 8,
                "connections_leaking_memory": 9, "connections_ignored": 10,
                "connections_leaking": 11, "connections_folded_leaking": 12, "tasks_ended": 13,
                "shared_tasks": 18, "routes_leaking": 19, "zombie_connections": 20},
            "heap": {"tracking": true, "connection_live_bytes": 14, "retained_bytes": 15,
                "untagged_live_bytes": 16, "evicted_live_bytes": 17},
            "connections": [crate::testing::connection(21)],
            "routes": [{"label": "/ws", "connections_closed": 22, "connections_retaining": 1,
                "retained_bytes": 23, "retained_bytes_per_connection": 23, "verdict": "leak"}],
            "signatures": [{"kind": "task", "site": "src/chat.rs:24:9", "label": "/ws",
                "verdict": "leak", "connections_leaked": 1, "connections_closed": 22,
                "orphan_tasks": 25, "retained_bytes": 0, "bytes_per_connection": 0,
                "first_seen_ms": 0, "last_seen_ms": 0, "started_by": null}]
        }));
        assert_eq!(
            super::prometheus_text(&snap),
            include_str!("metrics.golden.txt")
        );
    }
}
