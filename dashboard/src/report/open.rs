//! A saved report, served read-only (`leakscope-dashboard open REPORT.json`): `GET /` its
//! HTML viewer, `GET /api/report` its JSON as saved; any other method 405, any other path 404.
//! The access rules of a router without a token: loopback peers and host names only.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ReportError, report_html};
use crate::access::{self, Access};
use crate::error::DashError;

/// The viewer's scripts and styles are inline; nothing else is allowed, nothing is fetched.
const VIEWER_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The read-only routes of `leakscope-dashboard open`, for a report's JSON as saved (`GET
/// /api/report`, a report file): `GET /` the HTML viewer ([`report_html`]), `GET /api/report`
/// the JSON byte for byte. Every method but `GET` and `HEAD` answers 405. As a router without
/// a token, it serves loopback peers and host names only: serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`. An error when the text is not a
/// leakscope report's JSON.
pub fn report_router(report_json: String) -> Result<Router, ReportError> {
    let html = Bytes::from(report_html(&report_json)?);
    let json = Bytes::from(report_json);
    let access = Arc::new(Access::new(false, false, &[]));
    Ok(Router::new()
        .route("/", get(fixed("text/html; charset=utf-8", html)))
        .route("/api/report", get(fixed("application/json", json)))
        .fallback(|| async {
            DashError::not_found(
                "leakscope-dashboard open: no such page (the report is at / and its JSON at \
                 /api/report)",
            )
        })
        .layer(from_fn_with_state(access, access::guard))
        .layer(from_fn(read_only)))
}

/// A handler answering `body` (shared, never copied) as `content_type`.
fn fixed(
    content_type: &'static str,
    body: Bytes,
) -> impl Fn() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move || {
        std::future::ready(([(header::CONTENT_TYPE, content_type)], body.clone()).into_response())
    }
}

/// 405 for every method but `GET` and `HEAD`; the viewer's headers on every answer.
async fn read_only(req: Request, next: Next) -> Response {
    let mut res = if matches!(*req.method(), Method::GET | Method::HEAD) {
        next.run(req).await
    } else {
        let mut res = DashError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "leakscope-dashboard open: a saved report is read-only ({} is not allowed; GET \
                 is)",
                req.method()
            ),
        )
        .into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        res
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(VIEWER_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
