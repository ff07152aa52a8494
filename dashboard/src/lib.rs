//! leakscope's dashboard: a live browser view of orphan tasks and retained bytes per
//! connection, plus JSON, Prometheus and health endpoints.
//!
//! # Two ways to run it
//!
//! - Nest [`router`](fn@router) into your own axum app, e.g.
//!   `app.nest("/_leakscope", router())`, serve the app with
//!   `into_make_service_with_connect_info::<SocketAddr>()` (see *Who may read it*), and open
//!   `/_leakscope` (no trailing slash; every link in the pages is relative, so any prefix
//!   works). Use [`router_with_shutdown`] to let your graceful shutdown end open live streams,
//!   and [`router_with`] for options in code ([`RouterOptions`]; [`router`] reads them from the
//!   `LEAKSCOPE_DASHBOARD_*` variables below).
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
//! | `/conn/{id}` | one connection: its tasks on a timeline, its bytes and where they were allocated; a zombie or unread socket says so |
//! | `/task/{id}` | one task; its button, a same-origin `POST`, adds its await-point backtrace (feature `taskdump`); a link (`GET ?dump=1`) takes none |
//! | `/fixes` | how to fix each leak pattern (leakscope's `docs/fixes.md`); a signature's or an orphan's hint links to its section, `fixes#<anchor>` |
//! | `/api/snapshot` | `leakscope::snapshot()` as JSON |
//! | `/api/history` | the last 10 minutes of totals, one point per second, column by column |
//! | `/api/events` | Server-Sent Events: a JSON summary every second (event `summary`) |
//! | `/api/report` | a post-mortem JSON download: snapshot, history, configuration, build; `?format=html` the same report as one self-contained HTML file |
//! | `POST /api/report/save` | writes the report files at the configured path now (see *The report files*); `{"json": path, "html": path}`, or 409 with `{"error": ...}` when no path is configured |
//! | `/api/pprof` | a heap profile download (pprof `profile.proto`): the process, `?conn=ID` or `?route=LABEL` |
//! | `/metrics` | Prometheus text |
//! | `/health` | `ok` |
//!
//! The charts and the live stream come from one sampler per process: a tokio task that takes
//! a snapshot every second and keeps the last 600 points. [`serve`] starts it; a nested router
//! starts it on its first request.
//!
//! Everything is read-only but two `POST`s. Task dumps (`taskdump` feature, `--cfg
//! tokio_unstable`, Linux) run only on request, one at a time, and are refused (503) while a
//! run queue is long enough to make tokio's dump hang the runtime. Saving the report writes
//! the configured files only (a request names no path).
//!
//! # The report files
//!
//! With a report path configured (`LEAKSCOPE_REPORT=path`, `leakscope::Builder::report`),
//! [`write_report`] writes the JSON of `/api/report` at `path` and beside it (`path` with
//! `.html`) the same report as one self-contained HTML file that renders it offline (inline
//! script and styles, nothing fetched; [`report_html`]). Each file is replaced whole. It runs
//! on demand (`POST /api/report/save`, or `write_report` from your code) and once at a graceful
//! shutdown: [`Dashboard::shutdown`] returns when the files are on disk; a router built with a
//! shutdown token ([`router_with_shutdown`]) writes them when its graceful shutdown is over.
//! Errors name the file and are logged (target `leakscope`).
//!
//! The crate's binary serves a saved report read-only on loopback ([`report_router`]):
//! `leakscope-dashboard open REPORT.json [--addr 127.0.0.1:6680]`, the viewer at `/` and the
//! JSON as saved at `/api/report`.
//!
//! # Who may read it
//!
//! The same rules nested and standalone; the rule in force is logged (target `leakscope`) when
//! a router is built.
//!
//! - **Without a token, loopback peers only** (`127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`), as
//!   axum's `ConnectInfo<SocketAddr>` tells them: serve the app with
//!   `app.into_make_service_with_connect_info::<std::net::SocketAddr>()` (behind
//!   `leakscope::axum::track_listener`, add `.tap_io(|_| ())` from `axum::serve::ListenerExt`).
//!   A request whose peer the router cannot see, or that a proxy forwarded (`Forwarded`,
//!   `X-Forwarded-For`, `X-Forwarded-Host`, `X-Real-IP`), gets 403 with these fixes. So does an
//!   app bound to `0.0.0.0` for every other client.
//! - **Without a token, loopback or configured host names only**: `localhost`, `127.0.0.0/8`
//!   and `[::1]`, any port, any case, `localhost.` too, plus `LEAKSCOPE_DASHBOARD_HOSTS`
//!   ([`RouterOptions::allowed_hosts`]); any other `Host` (or HTTP/2 authority) gets 421, so a
//!   page on another site cannot read the dashboard through DNS rebinding. A request with no
//!   host name at all (HTTP/1.0) is served: no browser sends one.
//! - **With a token** (`LEAKSCOPE_DASHBOARD_TOKEN`, [`RouterOptions::bearer_token`]), any peer
//!   and any host name that presents it (`Authorization: Bearer`, or `?token=` which pages
//!   carry on); the comparison takes the same time wherever the tokens differ, whatever their
//!   lengths.
//! - **`LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK=1`** ([`RouterOptions::allow_non_loopback`])
//!   serves every peer without a token, for a network you trust; host names are still checked.
//!   (The standalone server also needs a token to bind a non-loopback address.)
//! - **Side effects from the dashboard's own pages only**: a request that is not `GET`, `HEAD`
//!   or `OPTIONS` (the task dump's `POST`, saving the report) needs `Sec-Fetch-Site:
//!   same-origin` or `none`, or, without that header, an `Origin` (when sent) naming the
//!   request's host; else 403. Tools that send neither (curl) are served.
//!
//! | variable | meaning |
//! |---|---|
//! | `LEAKSCOPE_DASHBOARD_ADDR` | the standalone server's address (`127.0.0.1:6680`) |
//! | `LEAKSCOPE_DASHBOARD_TOKEN` | the bearer token (empty: none) |
//! | `LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK` | `1`: every peer without a token (standalone: may bind a non-loopback address, with a token) |
//! | `LEAKSCOPE_DASHBOARD_HOSTS` | host names served besides loopback ones, comma-separated, e.g. `dash.example.com,10.0.0.5:8080,[fd00::5]`; a malformed entry stops the standalone server ([`ServeError::BadHost`]) and is logged and ignored by a router |

// Imports run one way (ARCHITECTURE.md): router -> middleware and handlers (pages, api, live,
// assets) -> report -> sampler -> summary -> view -> leakscope's plain data. state, error,
// query and dump import nothing else of the crate.
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
mod report;
mod router;
mod sampler;
mod server;
mod state;
mod summary;
#[cfg(test)]
mod testing;
mod view;

pub use hosts::BadHost;
pub use report::{ReportError, ReportFiles, report_html, report_router, write_report};
pub use router::{RouterOptions, router, router_with, router_with_shutdown};
pub use server::{DEFAULT_ADDR, Dashboard, Options, ServeError, serve, serve_from_env};
/// Re-exported for [`router_with_shutdown`] and [`RouterOptions::shutdown`].
pub use tokio_util::sync::CancellationToken;
