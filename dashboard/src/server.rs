//! The standalone dashboard server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::report::OnShutdown;
use crate::{BadHost, RouterOptions};

/// The default standalone address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:6680";

/// Where and how to serve.
///
/// Safe by default: the dashboard binds a loopback address. A non-loopback address is refused
/// unless [`Options::allow_non_loopback`] is set *and* a bearer token is configured. The
/// router's rules apply on top ([`RouterOptions`]): without a token, loopback peers and
/// loopback or [allowed](Options::allowed_hosts) host names only.
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// The address to bind. By default, [`DEFAULT_ADDR`] (`LEAKSCOPE_DASHBOARD_ADDR`).
    pub addr: String,
    /// A bearer token every request must carry (`Authorization: Bearer <token>` or
    /// `?token=<token>`). By default none (`LEAKSCOPE_DASHBOARD_TOKEN`).
    pub token: Option<String>,
    /// Allows binding a non-loopback address (a token is required too). By default `false`
    /// (`LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK=1`).
    pub allow_non_loopback: bool,
    /// Host names accepted besides loopback ones without a token (see
    /// [`RouterOptions::allowed_hosts`]). By default none (`LEAKSCOPE_DASHBOARD_HOSTS`,
    /// comma-separated); [`serve`] refuses to start when an entry is not a host name.
    pub allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: DEFAULT_ADDR.to_owned(),
            token: None,
            allow_non_loopback: false,
            allowed_hosts: Vec::new(),
        }
    }
}

impl Options {
    /// Defaults overridden by `LEAKSCOPE_DASHBOARD_ADDR`, `LEAKSCOPE_DASHBOARD_TOKEN` (an empty
    /// value means none), `LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK` (`1`, `true` or `yes`) and
    /// `LEAKSCOPE_DASHBOARD_HOSTS` (comma-separated; checked by [`serve`]).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut o = Options::default();
        if let Some(a) = get("LEAKSCOPE_DASHBOARD_ADDR") {
            o.addr = a;
        }
        // The settings a nested router reads too, parsed in one place.
        let r = RouterOptions::from_lookup(get);
        o.token = r.bearer_token;
        o.allow_non_loopback = r.allow_non_loopback;
        o.allowed_hosts = r.allowed_hosts;
        o
    }

    /// Sets [`Options::addr`].
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// Sets [`Options::token`].
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets [`Options::allow_non_loopback`].
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// Adds host names, comma-separated, to [`Options::allowed_hosts`]; an entry that is not a
    /// host name is an error that says why.
    pub fn allowed_hosts(mut self, list: &str) -> Result<Self, BadHost> {
        let checked = RouterOptions::new().allowed_hosts(list)?;
        self.allowed_hosts.extend(checked.allowed_hosts);
        Ok(self)
    }

    /// The address to bind, checked against the safety rules.
    fn checked_addr(&self) -> Result<SocketAddr, ServeError> {
        let addr: SocketAddr = self
            .addr
            .parse()
            .map_err(|_| ServeError::BadAddr(self.addr.clone()))?;
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(ServeError::EmptyToken);
        }
        for entry in &self.allowed_hosts {
            crate::hosts::parse_list(entry).map_err(ServeError::BadHost)?;
        }
        if !addr.ip().is_loopback() {
            if !self.allow_non_loopback {
                return Err(ServeError::NonLoopback(addr));
            }
            if self.token.is_none() {
                return Err(ServeError::TokenRequired(addr));
            }
        }
        Ok(addr)
    }
}

/// Why the dashboard could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The address did not parse.
    BadAddr(String),
    /// Binding failed.
    Bind(String, std::io::Error),
    /// A non-loopback address without [`Options::allow_non_loopback`].
    NonLoopback(SocketAddr),
    /// A non-loopback address without a bearer token.
    TokenRequired(SocketAddr),
    /// The bearer token is empty or blank.
    EmptyToken,
    /// An allowed host entry is not a host name.
    BadHost(BadHost),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::BadAddr(a) => write!(
                f,
                "leakscope dashboard: {a:?} is not a socket address (expected e.g. 127.0.0.1:6680)"
            ),
            ServeError::Bind(a, e) => write!(f, "leakscope dashboard: cannot bind {a}: {e}"),
            ServeError::NonLoopback(a) => write!(
                f,
                "leakscope dashboard: refusing to listen on {a}, which is not a loopback address: \
                 the dashboard shows connection labels, peers and code locations. Bind \
                 127.0.0.1, or opt in with LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK=1 \
                 (Options::allow_non_loopback) and set LEAKSCOPE_DASHBOARD_TOKEN"
            ),
            ServeError::TokenRequired(a) => write!(
                f,
                "leakscope dashboard: refusing to listen on non-loopback {a} without a bearer \
                 token: set LEAKSCOPE_DASHBOARD_TOKEN (Options::token)"
            ),
            ServeError::EmptyToken => f.write_str("leakscope dashboard: the bearer token is empty"),
            ServeError::BadHost(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ServeError {}

/// A running dashboard. Dropping it does not stop it; call [`Dashboard::shutdown`].
#[derive(Debug)]
pub struct Dashboard {
    /// The bound address.
    pub addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    report: Arc<OnShutdown>,
}

impl Dashboard {
    /// Stops serving; open live streams end. Then, with a report path configured
    /// (`LEAKSCOPE_REPORT`, `leakscope::Builder::report`), the report files are written
    /// ([`write_report`](crate::write_report)) and where is logged: they are on disk when
    /// this returns.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
        // The server's task wrote it, unless it ended otherwise (a panic): then here.
        let report = Arc::clone(&self.report);
        let written =
            leakscope::untracked(|| tokio::task::spawn_blocking(move || report.write())).await;
        if written.is_err() {
            self.report.write(); // no blocking pool any more
        }
    }

    /// A token that stops the dashboard when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// Starts the standalone dashboard with options from the environment. Returns `Ok(None)` with
/// leakscope's `enabled` feature off.
pub async fn serve_from_env() -> Result<Option<Dashboard>, ServeError> {
    serve(Options::from_env()).await
}

/// Starts the standalone dashboard on the current tokio runtime. Returns `Ok(None)` with
/// leakscope's `enabled` feature off (no task, no socket).
///
/// Refuses a non-loopback address unless [`Options::allow_non_loopback`] is set and a token is
/// configured. [`Dashboard::shutdown`] (or cancelling [`Dashboard::cancel_token`]) stops it and
/// ends open live streams; once stopped, it writes the report files when a report path is
/// configured (`LEAKSCOPE_REPORT`, see [`write_report`](crate::write_report)). It also starts the sampler behind the charts (one per process).
pub async fn serve(opts: Options) -> Result<Option<Dashboard>, ServeError> {
    if !leakscope::ENABLED {
        return Ok(None);
    }
    let addr = opts.checked_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind(opts.addr.clone(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Bind(opts.addr.clone(), e))?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let mut router_opts = RouterOptions::new().shutdown(cancel.clone());
    router_opts.bearer_token = opts.token;
    router_opts.allow_non_loopback = opts.allow_non_loopback;
    router_opts.allowed_hosts = opts.allowed_hosts;
    // One report for the router and `Dashboard::shutdown`, which waits for it.
    let report = Arc::new(OnShutdown::new(cancel.clone()));
    // With the peer's address: the router serves loopback peers only without a token.
    let app = crate::router::build(router_opts, Some(Arc::clone(&report)))
        .into_make_service_with_connect_info::<SocketAddr>();
    crate::sampler::ensure_running();
    let on_stop = Arc::clone(&report);
    let task = leakscope::untracked(|| {
        tokio::spawn(async move {
            let res = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = res {
                tracing::error!(target: "leakscope", "dashboard server failed: {e}");
            }
            // Stopped (cancelled): the report, once, on the blocking pool.
            let _ = tokio::task::spawn_blocking(move || on_stop.write()).await;
        })
    });
    Ok(Some(Dashboard {
        addr,
        cancel,
        task,
        report,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(addr: &str) -> Options {
        Options::default().addr(addr)
    }

    #[test]
    fn safe_by_default() {
        assert!(opts("127.0.0.1:0").checked_addr().is_ok());
        assert!(opts("[::1]:0").checked_addr().is_ok());
        assert!(matches!(
            opts("localhost:1").checked_addr(),
            Err(ServeError::BadAddr(_))
        ));
        let e = opts("0.0.0.0:6680").checked_addr().unwrap_err();
        assert!(matches!(e, ServeError::NonLoopback(_)));
        assert!(
            e.to_string()
                .contains("LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK")
        );
        let e = opts("0.0.0.0:6680")
            .allow_non_loopback(true)
            .checked_addr()
            .unwrap_err();
        assert!(matches!(e, ServeError::TokenRequired(_)));
        assert!(e.to_string().contains("LEAKSCOPE_DASHBOARD_TOKEN"));
        // A token alone does not open a non-loopback address.
        assert!(matches!(
            opts("0.0.0.0:6680").token("s3cret").checked_addr(),
            Err(ServeError::NonLoopback(_))
        ));
        assert!(
            opts("0.0.0.0:6680")
                .allow_non_loopback(true)
                .token("s3cret")
                .checked_addr()
                .is_ok()
        );
        assert!(matches!(
            opts("127.0.0.1:0").token(" ").checked_addr(),
            Err(ServeError::EmptyToken)
        ));
        let mut o = opts("127.0.0.1:0");
        o.allowed_hosts = vec!["ok.example".into(), "http://bad.example".into()];
        let e = o.checked_addr().unwrap_err();
        assert!(matches!(e, ServeError::BadHost(_)), "{e}");
        assert!(e.to_string().contains("not a URL"), "{e}");
        assert!(opts("127.0.0.1:0").allowed_hosts("a.example,").is_ok());
        assert!(opts("127.0.0.1:0").allowed_hosts("a.example:x").is_err());
    }

    #[test]
    fn reads_the_environment() {
        let o = Options::from_lookup(|k| match k {
            "LEAKSCOPE_DASHBOARD_ADDR" => Some("0.0.0.0:7000".into()),
            "LEAKSCOPE_DASHBOARD_TOKEN" => Some("abc".into()),
            "LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK" => Some("1".into()),
            "LEAKSCOPE_DASHBOARD_HOSTS" => Some(" a.example, b.example:8080 ,".into()),
            _ => None,
        });
        assert_eq!(o.allowed_hosts, ["a.example", "b.example:8080"]);
        assert_eq!(o.addr, "0.0.0.0:7000");
        assert_eq!(o.token.as_deref(), Some("abc"));
        assert!(o.allow_non_loopback);
        assert!(
            !format!("{o:?}").contains("abc"),
            "Debug must not print the token"
        );
        let o = Options::from_lookup(|k| (k == "LEAKSCOPE_DASHBOARD_TOKEN").then(String::new));
        assert_eq!(o.token, None);
        assert!(!o.allow_non_loopback);
    }
}
