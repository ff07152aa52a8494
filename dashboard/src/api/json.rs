//! The JSON routes: the snapshot (the public contract), the history ring and the post-mortem
//! report.

use axum::extract::RawQuery;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::DashResult;
use crate::query::Params;
use crate::sampler;

fn json_response<T: Serialize>(value: &T) -> DashResult<Response> {
    let body = serde_json::to_string(value)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/snapshot`: `leakscope::snapshot()` as JSON (the public contract).
pub(crate) async fn snapshot() -> DashResult<Response> {
    let snap = leakscope::snapshot();
    json_response(&snap)
}

/// `GET /api/history`: the last 10 minutes of totals, one point per second.
pub(crate) async fn history(RawQuery(q): RawQuery) -> DashResult<Response> {
    Params::parse(q.as_deref(), &[])?;
    sampler::ensure_running();
    let h = sampler::history();
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

impl ConfigInfo {
    fn current() -> ConfigInfo {
        let c = leakscope::config();
        ConfigInfo {
            grace_ms: c.grace.as_millis() as u64,
            retention_ms: c.retention.as_millis() as u64,
            max_closed_connections: c.max_closed_connections,
            max_leaking_connections: c.max_leaking_connections,
            max_ended_tasks_per_connection: c.max_ended_tasks_per_connection,
            retained_bytes_threshold: c.retained_bytes_threshold,
        }
    }
}

impl BuildInfo {
    const THIS: BuildInfo = BuildInfo {
        dashboard_version: env!("CARGO_PKG_VERSION"),
        leakscope_enabled: leakscope::ENABLED,
        tokio_unstable: cfg!(tokio_unstable),
        taskdump: crate::dump::AVAILABLE,
        debug_assertions: cfg!(debug_assertions),
        target_os: std::env::consts::OS,
        target_arch: std::env::consts::ARCH,
    };
}

/// `GET /api/report`: everything for a post-mortem, as a JSON download.
pub(crate) async fn report(RawQuery(q): RawQuery) -> DashResult<Response> {
    Params::parse(q.as_deref(), &[])?;
    let config = ConfigInfo::current();
    let snapshot = leakscope::snapshot();
    let report = Report {
        generated_at_ms: snapshot.taken_at_ms,
        history: sampler::history(),
        config,
        build: BuildInfo::THIS,
        snapshot,
    };
    let body = serde_json::to_string_pretty(&report)?;
    let disposition = format!(
        "attachment; filename=\"leakscope-report-{}.json\"",
        report.generated_at_ms
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
