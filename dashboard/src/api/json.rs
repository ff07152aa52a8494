//! The JSON routes: the snapshot (the public contract), the history ring and the post-mortem
//! report (as a download, or saved to the configured report files).

use axum::extract::RawQuery;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::error::{DashError, DashResult, shown};
use crate::query::Params;
use crate::report::{self, Report, ReportError};
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

/// `GET /api/report`: everything for a post-mortem, as a JSON download (the report file's
/// JSON); `?format=html` the same report as its self-contained HTML viewer.
pub(crate) async fn report(RawQuery(q): RawQuery) -> DashResult<Response> {
    let params = Params::parse(q.as_deref(), &["format"])?;
    let html = match params.get("format") {
        None | Some("" | "json") => false,
        Some("html") => true,
        Some(other) => {
            return Err(DashError::bad_request(format!(
                "query parameter format={}: expected json or html",
                shown(other)
            )));
        }
    };
    let report = Report::now();
    let json = report.to_json()?;
    let (body, ext, content_type) = if html {
        (
            report::render_html(&json),
            "html",
            "text/html; charset=utf-8",
        )
    } else {
        (json, "json", "application/json")
    };
    let disposition = format!(
        "attachment; filename=\"leakscope-report-{}.{ext}\"",
        report.generated_at_ms
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// `POST /api/report/save`: writes the report files at the configured path now
/// ([`crate::write_report`]); answers `{"json": path, "html": path}`, or `{"error": message}`
/// with 409 when no path is configured and 500 when writing failed.
pub(crate) async fn save_report(RawQuery(q): RawQuery) -> Response {
    if let Err(e) = Params::parse(q.as_deref(), &[]) {
        return e.into_response();
    }
    // A snapshot and two files: on the blocking pool, charged to no connection.
    let written =
        leakscope::untracked(|| tokio::task::spawn_blocking(|| report::write_report(None))).await;
    let (status, body) = match written {
        Ok(Ok(files)) => (
            StatusCode::OK,
            json!({
                "json": files.json.to_string_lossy(),
                "html": files.html.to_string_lossy(),
            }),
        ),
        Ok(Err(e)) => {
            let status = match e {
                ReportError::NoPath | ReportError::HtmlPath(_) => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status.is_server_error() {
                tracing::error!(target: "leakscope", "POST /api/report/save: {e}");
            }
            (status, json!({ "error": e.to_string() }))
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("leakscope report: writing it failed: {e}") }),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
