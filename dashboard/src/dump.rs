//! Await-point backtraces from tokio task dumps, only on explicit request.
//!
//! Needs `--cfg tokio_unstable` and this crate's `taskdump` feature (tokio itself refuses to
//! build that feature outside Linux on x86/x86_64/aarch64/s390x, so no target check here). tokio's `Handle::dump()` stalls the whole runtime for good when a worker's
//! run queue holds more than about 128 runnable tasks (tokio #7478, #8391; a timeout around it
//! does not fire), so a dump is refused while any run queue is longer than [`MAX_QUEUED`], and
//! only one dump runs at a time.

// Without dump support, the guard and the text limit are unused.
#![cfg_attr(not(all(tokio_unstable, feature = "taskdump")), allow(dead_code))]

use axum::http::StatusCode;

/// Whether this build can take task dumps.
pub(crate) const AVAILABLE: bool = cfg!(all(tokio_unstable, feature = "taskdump"));

/// A dump is refused while the global queue or any worker's local queue is longer than this.
pub(crate) const MAX_QUEUED: usize = 64;

/// At most this much backtrace text is shown.
const MAX_TEXT: usize = 256 * 1024;

/// Why there is no backtrace.
#[derive(Debug)]
pub(crate) enum DumpError {
    /// This build cannot take dumps (501).
    #[cfg_attr(all(tokio_unstable, feature = "taskdump"), allow(dead_code))]
    Unavailable,
    /// Taking one now could hang the runtime, or another dump is running (503).
    Unsafe(String),
    /// The task ended before or during the dump (409).
    NotAlive,
}

impl DumpError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            DumpError::Unavailable => StatusCode::NOT_IMPLEMENTED,
            DumpError::Unsafe(_) => StatusCode::SERVICE_UNAVAILABLE,
            DumpError::NotAlive => StatusCode::CONFLICT,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            DumpError::Unavailable => "Task dumps are not available in this build. They need \
                 RUSTFLAGS=\"--cfg tokio_unstable\", the leakscope-dashboard feature `taskdump` \
                 and Linux on x86_64 or aarch64."
                .to_owned(),
            DumpError::Unsafe(why) => why.clone(),
            DumpError::NotAlive => {
                "The task has ended: there is no await point left to show.".to_owned()
            }
        }
    }
}

/// The await-point backtrace of live task `id`.
pub(crate) async fn backtrace(id: u64) -> Result<String, DumpError> {
    #[cfg(all(tokio_unstable, feature = "taskdump"))]
    {
        imp::backtrace(id).await
    }
    #[cfg(not(all(tokio_unstable, feature = "taskdump")))]
    {
        let _ = id;
        Err(DumpError::Unavailable)
    }
}

/// Why a dump is too risky with these run-queue depths, in words; `None` when it is safe.
fn refusal(global: usize, locals: impl Iterator<Item = usize>) -> Option<String> {
    let (worker, local) = locals.enumerate().max_by_key(|&(_, d)| d).unwrap_or((0, 0));
    (global > MAX_QUEUED || local > MAX_QUEUED).then(|| {
        format!(
            "Refusing to take a task dump now: the runtime has {global} runnable tasks in its \
             global queue and {local} in worker {worker}'s queue (limit {MAX_QUEUED}). tokio's \
             task dump can hang the whole runtime when a run queue holds more than about 128 \
             tasks (tokio issues #7478, #8391). Try again when the load drops."
        )
    })
}

/// [`refusal`] for the runtime behind `handle`.
#[cfg(tokio_unstable)]
pub(crate) fn unsafe_queues(handle: &tokio::runtime::Handle) -> Option<String> {
    let m = handle.metrics();
    refusal(
        m.global_queue_depth(),
        (0..m.num_workers()).map(|i| m.worker_local_queue_depth(i)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_long_run_queues() {
        assert_eq!(refusal(0, [0, 3].into_iter()), None);
        assert_eq!(refusal(MAX_QUEUED, [MAX_QUEUED].into_iter()), None);
        let why = refusal(2, [5, 200].into_iter()).expect("refused");
        assert!(why.contains("200 in worker 1's queue"), "{why}");
        assert!(refusal(MAX_QUEUED + 1, std::iter::empty()).is_some());
        assert_eq!(
            DumpError::Unsafe(String::new()).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(DumpError::Unavailable.status(), StatusCode::NOT_IMPLEMENTED);
    }
}

#[cfg(all(tokio_unstable, feature = "taskdump"))]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{DumpError, MAX_TEXT, unsafe_queues};

    static BUSY: AtomicBool = AtomicBool::new(false);

    /// Clears [`BUSY`] when the dump task ends or is dropped.
    struct Busy;

    impl Drop for Busy {
        fn drop(&mut self) {
            BUSY.store(false, Ordering::SeqCst);
        }
    }

    pub(super) async fn backtrace(id: u64) -> Result<String, DumpError> {
        if BUSY
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(DumpError::Unsafe(
                "Another task dump is running; only one runs at a time. Try again in a moment."
                    .to_owned(),
            ));
        }
        let busy = Busy;
        let handle = tokio::runtime::Handle::current();
        if let Some(why) = unsafe_queues(&handle) {
            return Err(DumpError::Unsafe(why));
        }
        // The dump runs in its own task so that a client going away mid-dump cannot start a
        // second one while the first still runs; the guard lives until the dump is done. It is
        // spawned from the (untracked) handler, so it belongs to no connection.
        let job = handle.spawn(async move {
            let _busy = busy;
            let dump = tokio::runtime::Handle::current().dump().await;
            let want = id.to_string();
            dump.tasks()
                .iter()
                .find(|t| t.id().to_string() == want)
                .map(|t| t.trace().to_string())
        });
        match job.await {
            Ok(Some(text)) if text.trim().is_empty() => Ok("(no await points recorded: the \
                task waits on something tokio's tracer cannot see, such as \
                std::future::pending or a primitive outside tokio)"
                .to_owned()),
            Ok(Some(mut text)) => {
                if text.len() > MAX_TEXT {
                    let mut cut = MAX_TEXT;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    text.push_str("\n… (truncated)");
                }
                Ok(text)
            }
            Ok(None) => Err(DumpError::NotAlive),
            Err(e) => Err(DumpError::Unsafe(format!("The task dump failed: {e}"))),
        }
    }
}
