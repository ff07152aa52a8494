//! The state every router shares with its handlers and middleware: plain configuration, no
//! logic. The router builds it; `auth` and the live stream read it.

use tokio_util::sync::CancellationToken;

/// What every handler may need.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Required on every request when set.
    pub(crate) token: Option<String>,
    /// Cancelling it ends open live streams.
    pub(crate) shutdown: Option<CancellationToken>,
}
