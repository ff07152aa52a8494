//! leakscope's dashboard: a live browser view of orphan tasks and retained bytes per
//! connection, plus `GET /api/snapshot` (JSON), `GET /metrics` (Prometheus) and a health route.
//!
//! Two ways to run it: nest [`router`] into your own axum app (e.g. under `/_leakscope`), or
//! start the standalone server with [`serve_from_env`] (`127.0.0.1:6680` by default,
//! `LEAKSCOPE_DASHBOARD_ADDR`). With leakscope's `enabled` feature off, the standalone server
//! does not start: no thread, no socket.

mod api;
mod server;

pub use api::router;
pub use server::{DEFAULT_ADDR, Dashboard, Options, ServeError, serve, serve_from_env};
