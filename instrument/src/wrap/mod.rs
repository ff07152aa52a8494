//! Step 1, **wrap**: one-line wrappers open a connection scope and close it with the socket.
//!
//! - `conn`: [`crate::Connection`], [`crate::scope`] and the scoped future;
//! - `io`: any `AsyncRead + AsyncWrite` stream ([`crate::wrap::io::track`]);
//! - `axum`: the WebSocket drop-ins and the `serve` listener wrapper.
//!
//! Imports run one way: this step uses `tag` and reaches the collector only through its events.

#[cfg(feature = "axum")]
pub mod axum;
pub(crate) mod conn;
pub mod io;
