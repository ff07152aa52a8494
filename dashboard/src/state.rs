//! The state every router shares with its handlers and middleware: plain configuration, no
//! logic. The router builds it; `auth` and the live stream read it.

use std::any::Any;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// What every handler may need.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Required on every request when set.
    pub(crate) token: Option<String>,
    /// Cancelling it ends open live streams.
    pub(crate) shutdown: Option<CancellationToken>,
    /// Dropped with the router's last copy: what must happen then (the report a graceful
    /// shutdown writes).
    #[expect(dead_code, reason = "held for its Drop only")]
    pub(crate) on_drop: Option<Arc<dyn Any + Send + Sync>>,
}
