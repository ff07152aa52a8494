//! The routes, ready to nest into your axum app or to serve standalone, and their options.

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::access::{self, Access};
use crate::error::DashError;
use crate::hosts::{self, BadHost};
use crate::report::OnShutdown;
use crate::state::Shared;
use crate::{api, assets, auth, live, middleware, pages};

/// Options for [`router_with`]: who may read the dashboard, and when its live streams end.
///
/// Without a bearer token the router serves only loopback peers (as axum's
/// `ConnectInfo<SocketAddr>` tells them: serve the app with
/// `into_make_service_with_connect_info::<SocketAddr>()`, or every request gets a 403 saying
/// so) and only requests naming a loopback host or one of [`RouterOptions::allowed_hosts`]
/// (421 otherwise). With a token, any peer and host name that presents it. See the crate docs.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RouterOptions {
    /// Cancelling this token ends every open `GET /api/events` stream. Give it the token that
    /// drives your server's graceful shutdown: a browser tab keeps its live stream open
    /// forever, and axum's graceful shutdown waits for it.
    pub shutdown: Option<CancellationToken>,
    /// When set, every route requires `Authorization: Bearer <token>` (or `?token=<token>`,
    /// which pages carry on to their links and live stream) and answers 401 otherwise; any
    /// peer and any host name may then present it (`LEAKSCOPE_DASHBOARD_TOKEN`). An empty
    /// token matches nothing.
    pub bearer_token: Option<String>,
    /// Without a token, serve every peer instead of loopback ones only: for a network you
    /// trust, or a proxy that authenticates (`LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK=1`). The
    /// host-name check still applies. By default `false`.
    pub allow_non_loopback: bool,
    /// Host names accepted besides loopback ones when no token is configured: names or IP
    /// literals (IPv6 in brackets) with an optional port (without one, any port), e.g.
    /// `dash.example.com`, `10.0.0.5:8080` (`LEAKSCOPE_DASHBOARD_HOSTS`, comma-separated).
    /// Set it with [`RouterOptions::allowed_hosts`], which checks each entry; an entry put
    /// here that is not a host name is logged as an error and ignored.
    pub allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for RouterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterOptions")
            .field("shutdown", &self.shutdown)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl RouterOptions {
    /// No shutdown token, no bearer token, loopback peers and host names only; nothing read
    /// from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`RouterOptions::new`] with the `LEAKSCOPE_DASHBOARD_*` variables the standalone server
    /// reads too: `LEAKSCOPE_DASHBOARD_TOKEN` (empty means none),
    /// `LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK` (`1`, `true` or `yes`) and
    /// `LEAKSCOPE_DASHBOARD_HOSTS` (comma-separated; entries that are not host names are
    /// logged and ignored when the router is built). What [`router`] uses.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut o = Self::new();
        o.bearer_token = get("LEAKSCOPE_DASHBOARD_TOKEN").filter(|t| !t.is_empty());
        o.allow_non_loopback = get("LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK")
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        o.allowed_hosts = get("LEAKSCOPE_DASHBOARD_HOSTS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        o
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

    /// See [`RouterOptions::allow_non_loopback`].
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// Adds host names, comma-separated, to [`RouterOptions::allowed_hosts`]; an entry that is
    /// not a host name is an error that says why:
    ///
    /// ```
    /// # use leakscope_dashboard::RouterOptions;
    /// let opts = RouterOptions::new().allowed_hosts("dash.example.com, 10.0.0.5:8080")?;
    /// assert!(RouterOptions::new().allowed_hosts("http://dash.example.com").is_err());
    /// # Ok::<(), leakscope_dashboard::BadHost>(())
    /// ```
    pub fn allowed_hosts(mut self, list: &str) -> Result<Self, BadHost> {
        hosts::parse_list(list)?;
        self.allowed_hosts.extend(
            list.split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
        );
        Ok(self)
    }
}

/// Every dashboard route, ready to nest: `app.nest("/_leakscope", leakscope_dashboard::router())`
/// (then open `/_leakscope`, without a trailing slash). All links are relative, so any prefix
/// works. Options come from the environment ([`RouterOptions::from_env`]).
///
/// Without a token it serves loopback peers only, so serve the app with connect info:
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) {
/// let app = app.nest("/_leakscope", leakscope_dashboard::router());
/// axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
///     .await
///     .unwrap();
/// # }
/// ```
///
/// Live streams (`GET /api/events`) opened through this router only end when the client goes
/// away, so a graceful shutdown of your server waits for open dashboard tabs; use
/// [`router_with_shutdown`] to end them with your shutdown signal.
///
/// The first request starts the once-a-second sampler behind the charts (see
/// [`RouterOptions`] and the crate docs).
pub fn router() -> Router {
    router_with(RouterOptions::from_env())
}

/// [`router`] (options from the environment) whose live streams end when `shutdown` is
/// cancelled, and which writes the report files once its graceful shutdown is over when a
/// report path is configured (`LEAKSCOPE_REPORT`; see [`router_with`]):
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
/// axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
///     .with_graceful_shutdown(async move {
///         signal.await; // e.g. tokio::signal::ctrl_c()
///         stop.cancel(); // ends the dashboard's live streams, so shutdown is not held up
///     })
///     .await
///     .unwrap();
/// # }
/// ```
pub fn router_with_shutdown(shutdown: CancellationToken) -> Router {
    router_with(RouterOptions::from_env().shutdown(shutdown))
}

/// The routes with these options (nothing read from the environment; start from
/// [`RouterOptions::from_env`] for that). Logs the access rule in force, once.
///
/// With a [shutdown token](RouterOptions::shutdown) and a report path configured
/// (`LEAKSCOPE_REPORT`, `leakscope::Builder::report`), the router writes the report files
/// ([`write_report`](crate::write_report)) once when it is dropped after the token was
/// cancelled: when `axum::serve`'s graceful shutdown is over and the last connection lets go
/// of it (on the runtime, so before the runtime's shutdown returns). A router kept alive
/// elsewhere (a clone in a static) writes nothing then: call `write_report` yourself.
pub fn router_with(opts: RouterOptions) -> Router {
    let on_shutdown = opts.shutdown.clone().map(|t| Arc::new(OnShutdown::new(t)));
    build(opts, on_shutdown)
}

/// [`router_with`], whose shutdown report is `on_shutdown` (the standalone server's, which it
/// also writes itself).
pub(crate) fn build(opts: RouterOptions, on_shutdown: Option<Arc<OnShutdown>>) -> Router {
    let access = Access::new(
        opts.bearer_token.is_some(),
        opts.allow_non_loopback,
        &opts.allowed_hosts,
    );
    access.log();
    let shared = Arc::new(Shared {
        token: opts.bearer_token,
        shutdown: opts.shutdown,
        on_drop: on_shutdown.map(|r| r as Arc<dyn std::any::Any + Send + Sync>),
    });
    Router::new()
        .route("/", get(pages::overview))
        .route("/conn/{id}", get(pages::connection))
        .route("/task/{id}", get(pages::task).post(pages::task_dump))
        .route("/fixes", get(pages::fixes))
        .route("/api/snapshot", get(api::snapshot))
        .route("/api/history", get(api::history))
        .route("/api/events", get(live::events))
        .route("/api/report", get(api::report))
        .route("/api/report/save", post(api::save_report))
        .route("/api/pprof", get(api::pprof))
        .route("/metrics", get(api::metrics))
        .route("/health", get(api::health))
        .route("/assets/{name}", get(assets::asset))
        .fallback(not_found)
        // The last layer runs first: headers, access (peer, host name, same origin), token,
        // forget the own connection, untracked, sampler, handler.
        .layer(from_fn(middleware::start_sampler))
        .layer(from_fn(middleware::untracked))
        .layer(from_fn(middleware::ignore_own_connection))
        .layer(from_fn_with_state(shared.clone(), auth::require_token))
        .layer(from_fn_with_state(Arc::new(access), access::guard))
        .layer(from_fn(auth::security_headers))
        .with_state(shared)
}

async fn not_found() -> Response {
    DashError::not_found(
        "leakscope dashboard: no such page (the overview is the dashboard's root; \
         see also fixes, api/snapshot, api/history, api/events, api/report, api/pprof, metrics, \
         health; POST api/report/save)",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::RouterOptions;

    #[test]
    fn reads_the_environment_and_hides_the_token() {
        let o = RouterOptions::from_lookup(|k| match k {
            "LEAKSCOPE_DASHBOARD_TOKEN" => Some("s3cret".into()),
            "LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK" => Some(" yes ".into()),
            "LEAKSCOPE_DASHBOARD_HOSTS" => Some("a.example, ,b.example:81,".into()),
            _ => None,
        });
        assert_eq!(o.bearer_token.as_deref(), Some("s3cret"));
        assert!(o.allow_non_loopback);
        assert_eq!(o.allowed_hosts, ["a.example", "b.example:81"]);
        assert!(!format!("{o:?}").contains("s3cret"), "{o:?}");
        let o =
            RouterOptions::from_lookup(|k| (k == "LEAKSCOPE_DASHBOARD_TOKEN").then(String::new));
        assert_eq!(o.bearer_token, None, "an empty token is none");
        assert!(!o.allow_non_loopback && o.allowed_hosts.is_empty());
        let e = RouterOptions::new()
            .allowed_hosts("ok.example, *.example")
            .expect_err("a wildcard");
        assert_eq!(e.entry, "*.example");
    }
}
