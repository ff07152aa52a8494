//! The machine-readable routes: JSON snapshot, history and report, saving the report files
//! ([`mod@json`]), Prometheus text ([`mod@metrics`]), heap profiles ([`mod@pprof`]), health.

mod json;
mod metrics;
mod pprof;

pub(crate) use json::{history, report, save_report, snapshot};
pub(crate) use metrics::metrics;
pub(crate) use pprof::pprof;

/// `GET /health`.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}
