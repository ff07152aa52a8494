//! The standalone dashboard server.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The default standalone address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:6680";

/// Where and how to serve.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The address to bind. By default, [`DEFAULT_ADDR`].
    pub addr: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: DEFAULT_ADDR.to_owned(),
        }
    }
}

impl Options {
    /// Defaults overridden by `LEAKSCOPE_DASHBOARD_ADDR`.
    pub fn from_env() -> Self {
        let mut o = Options::default();
        if let Ok(a) = std::env::var("LEAKSCOPE_DASHBOARD_ADDR") {
            o.addr = a;
        }
        o
    }
}

/// Why the dashboard could not start.
#[derive(Debug)]
pub enum ServeError {
    /// The address did not parse.
    BadAddr(String),
    /// Binding failed.
    Bind(String, std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::BadAddr(a) => write!(
                f,
                "leakscope dashboard: {a:?} is not a socket address (expected e.g. 127.0.0.1:6680)"
            ),
            ServeError::Bind(a, e) => write!(f, "leakscope dashboard: cannot bind {a}: {e}"),
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
}

impl Dashboard {
    /// Stops serving; open live streams end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
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

/// Starts the standalone dashboard. Returns `Ok(None)` with leakscope's `enabled` feature off.
pub async fn serve(opts: Options) -> Result<Option<Dashboard>, ServeError> {
    if !leakscope::ENABLED {
        return Ok(None);
    }
    let addr: SocketAddr = opts
        .addr
        .parse()
        .map_err(|_| ServeError::BadAddr(opts.addr.clone()))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind(opts.addr.clone(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Bind(opts.addr.clone(), e))?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let app = crate::router();
    let task = tokio::spawn(async move {
        let res = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = res {
            tracing::error!(target: "leakscope", "dashboard server failed: {e}");
        }
    });
    Ok(Some(Dashboard { addr, cancel, task }))
}
