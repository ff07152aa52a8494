//! The routes, ready to nest into your axum app or to serve standalone.

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::error::DashError;
use crate::state::Shared;
use crate::{api, assets, auth, live, middleware, pages};

/// Options for [`router_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RouterOptions {
    /// Cancelling this token ends every open `GET /api/events` stream. Give it the token that
    /// drives your server's graceful shutdown: a browser tab keeps its live stream open
    /// forever, and axum's graceful shutdown waits for it.
    pub shutdown: Option<CancellationToken>,
    /// When set, every route requires `Authorization: Bearer <token>` (or `?token=<token>`,
    /// which pages carry on to their links and live stream) and answers 401 otherwise.
    pub bearer_token: Option<String>,
}

impl RouterOptions {
    /// No shutdown token, no bearer token: what [`router`] uses.
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`RouterOptions::shutdown`].
    pub fn shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// See [`RouterOptions::bearer_token`].
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }
}

/// Every dashboard route, ready to nest: `app.nest("/_leakscope", leakscope_dashboard::router())`
/// (then open `/_leakscope`, without a trailing slash). All links are relative, so any prefix
/// works.
///
/// Live streams (`GET /api/events`) opened through this router only end when the client goes
/// away, so a graceful shutdown of your server waits for open dashboard tabs; use
/// [`router_with_shutdown`] to end them with your shutdown signal.
///
/// The first request starts the once-a-second sampler behind the charts (see
/// [`RouterOptions`] and the crate docs).
pub fn router() -> Router {
    router_with(RouterOptions::new())
}

/// [`router`] whose live streams end when `shutdown` is cancelled:
///
/// ```no_run
/// # async fn run(
/// #     listener: tokio::net::TcpListener,
/// #     app: axum::Router,
/// #     signal: impl std::future::Future<Output = ()> + Send + 'static,
/// # ) {
/// use leakscope_dashboard::CancellationToken;
/// let stop = CancellationToken::new();
/// let app = app.nest("/_leakscope", leakscope_dashboard::router_with_shutdown(stop.clone()));
/// axum::serve(listener, app)
///     .with_graceful_shutdown(async move {
///         signal.await; // e.g. tokio::signal::ctrl_c()
///         stop.cancel(); // ends the dashboard's live streams, so shutdown is not held up
///     })
///     .await
///     .unwrap();
/// # }
/// ```
pub fn router_with_shutdown(shutdown: CancellationToken) -> Router {
    router_with(RouterOptions::new().shutdown(shutdown))
}

/// [`router`] with options (shutdown token, bearer token).
pub fn router_with(opts: RouterOptions) -> Router {
    let shared = Arc::new(Shared {
        token: opts.bearer_token,
        shutdown: opts.shutdown,
    });
    Router::new()
        .route("/", get(pages::overview))
        .route("/conn/{id}", get(pages::connection))
        .route("/task/{id}", get(pages::task).post(pages::task_dump))
        .route("/api/snapshot", get(api::snapshot))
        .route("/api/history", get(api::history))
        .route("/api/events", get(live::events))
        .route("/api/report", get(api::report))
        .route("/api/pprof", get(api::pprof))
        .route("/metrics", get(api::metrics))
        .route("/health", get(api::health))
        .route("/assets/{name}", get(assets::asset))
        .fallback(not_found)
        // The last layer runs first: headers, token, forget the own connection, untracked,
        // sampler, handler.
        .layer(from_fn(middleware::start_sampler))
        .layer(from_fn(middleware::untracked))
        .layer(from_fn(middleware::ignore_own_connection))
        .layer(from_fn_with_state(shared.clone(), auth::require_token))
        .layer(from_fn(auth::security_headers))
        .with_state(shared)
}

async fn not_found() -> Response {
    DashError::not_found(
        "leakscope dashboard: no such page (the overview is the dashboard's root; \
         see also api/snapshot, api/history, api/events, api/report, api/pprof, metrics, health)",
    )
    .into_response()
}
