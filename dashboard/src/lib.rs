//! leakscope's dashboard: a live browser view of orphan tasks and retained bytes per
//! connection, plus JSON, Prometheus and health endpoints.
//!
//! # Two ways to run it
//!
//! - Nest [`router`](fn@router) into your own axum app, e.g.
//!   `app.nest("/_leakscope", router())`, and open `/_leakscope` (no trailing slash; every link
//!   in the pages is relative, so any prefix works). Use [`router_with_shutdown`] to let your graceful shutdown end open live streams,
//!   and [`router_with`] for a bearer token.
//! - Start the standalone server with [`serve_from_env`] or [`serve`]: `127.0.0.1:6680` by
//!   default (`LEAKSCOPE_DASHBOARD_ADDR`). With leakscope's `enabled` feature off it does not
//!   start: no task, no socket. It binds loopback only, unless told otherwise *and* given a
//!   token (`LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK=1`, `LEAKSCOPE_DASHBOARD_TOKEN`).
//!
//! # Routes (relative to where the router is mounted)
//!
//! | route | what |
//! |---|---|
//! | `/` | overview: counters, leak signatures and routes, 10-minute charts, orphan tasks (live), connections (`?state=open\|closed\|leaking&label=..&page=N&per_page=M`) |
//! | `/conn/{id}` | one connection: its tasks on a timeline, its bytes and where they were allocated |
//! | `/task/{id}` | one task; `?dump=1` or `POST` adds its await-point backtrace (feature `taskdump`) |
//! | `/api/snapshot` | `leakscope::snapshot()` as JSON |
//! | `/api/history` | the last 10 minutes of totals, one point per second, column by column |
//! | `/api/events` | Server-Sent Events: a JSON summary every second (event `summary`) |
//! | `/api/report` | a post-mortem JSON download: snapshot, history, configuration, build |
//! | `/api/pprof` | a heap profile download (pprof `profile.proto`): the process, `?conn=ID` or `?route=LABEL` |
//! | `/metrics` | Prometheus text |
//! | `/health` | `ok` |
//!
//! The charts and the live stream come from one sampler per process: a tokio task that takes
//! a snapshot every second and keeps the last 600 points. [`serve`] starts it; a nested router
//! starts it on its first request.
//!
//! Everything is read-only. Task dumps (`taskdump` feature, `--cfg tokio_unstable`, Linux)
//! run only on request, one at a time, and are refused (503) while a run queue is long enough
//! to make tokio's dump hang the runtime.

// Imports run one way (ARCHITECTURE.md): router -> middleware and handlers (pages, api, live,
// assets) -> sampler -> summary -> view -> leakscope's plain data. state, error, query and
// dump import nothing else of the crate.
mod access;
mod api;
mod assets;
mod auth;
mod dump;
mod error;
mod hosts;
mod live;
mod middleware;
mod pages;
mod query;
mod router;
mod sampler;
mod server;
mod state;
mod summary;
#[cfg(test)]
mod testing;
mod view;

pub use hosts::BadHost;
pub use router::{RouterOptions, router, router_with, router_with_shutdown};
pub use server::{DEFAULT_ADDR, Dashboard, Options, ServeError, serve, serve_from_env};
/// Re-exported for [`router_with_shutdown`] and [`RouterOptions::shutdown`].
pub use tokio_util::sync::CancellationToken;
