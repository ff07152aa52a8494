//! Step 1, **wrap**: one-line wrappers open a connection scope and close it with the socket.
//!
//! - `conn`: [`crate::Connection`], [`crate::scope`] and the scoped future;
//! - `io`: any `AsyncRead + AsyncWrite` stream ([`crate::wrap::io::track`]);
//! - `axum`: the WebSocket drop-ins and the `serve` listener wrapper;
//! - `live` / `off`: a connection's live side, or its stand-in with the `enabled` feature off.
//!
//! Imports run one way: this step uses `tag` and reaches the collector only through its events.

#[cfg(feature = "axum")]
pub mod axum;
pub(crate) mod conn;
pub mod io;
#[cfg(feature = "enabled")]
pub(crate) mod live;
#[cfg(not(feature = "enabled"))]
pub(crate) mod off;
#[cfg(feature = "enabled")]
pub(crate) mod watch;

/// The live side of a connection, or its uninhabited stand-in with the feature off: the one
/// place the feature decides.
#[cfg(feature = "enabled")]
pub(crate) use live as backend;
#[cfg(not(feature = "enabled"))]
pub(crate) use off as backend;
