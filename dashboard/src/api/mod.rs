//! The machine-readable routes: JSON snapshot, history and report ([`mod@json`]), Prometheus text
//! ([`mod@metrics`]), health.

mod json;
mod metrics;

pub(crate) use json::{history, report, snapshot};
pub(crate) use metrics::metrics;

/// `GET /health`.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}
