//! The report a graceful shutdown writes: once per router (or standalone server), when its
//! shutdown token is cancelled and a report path is configured (`LEAKSCOPE_REPORT`,
//! `leakscope::Builder::report`).
//!
//! A router holds one [`OnShutdown`] in its shared state, so the report is written when the
//! last copy of the router is dropped after the token was cancelled: when `axum::serve`'s
//! graceful shutdown is over (its last connection task lets go of the router), on the
//! runtime, so before the runtime's shutdown returns. The standalone server writes it
//! explicitly in [`crate::Dashboard::shutdown`], which returns once it is on disk.

use std::sync::{Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

/// Writes the report once, after the token is cancelled.
#[derive(Debug)]
pub(crate) struct OnShutdown {
    token: CancellationToken,
    /// Whether this shutdown's report was written (or tried). Held while writing: a second
    /// caller waits for the first one's file.
    done: Mutex<bool>,
}

impl OnShutdown {
    pub(crate) fn new(token: CancellationToken) -> OnShutdown {
        OnShutdown {
            token,
            done: Mutex::new(false),
        }
    }

    /// Writes the report (and logs where, or why not) if the token is cancelled, a report path
    /// is configured, leakscope is on, and it was not written yet. Blocking.
    pub(crate) fn write(&self) {
        if !leakscope::ENABLED || !self.token.is_cancelled() {
            return;
        }
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        if *done {
            return;
        }
        *done = true;
        if leakscope::config().report.is_none() {
            return;
        }
        match super::write_report(None) {
            Ok(files) => tracing::info!(
                target: "leakscope",
                "leakscope report written at shutdown: {} (JSON) and {} (HTML, opens offline)",
                files.json.display(),
                files.html.display()
            ),
            Err(e) => tracing::error!(target: "leakscope", "at shutdown: {e}"),
        }
    }
}

impl Drop for OnShutdown {
    fn drop(&mut self) {
        self.write();
    }
}
