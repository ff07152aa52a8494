//! A user's own task hooks, handed to `UserHooks`, run after leakscope's on every task, and
//! leakscope still records the task: the hooks are installed either as leakscope's functions
//! alone (no user hook) or as the two chained, so both ways must keep working.
//!
//! Task hooks exist only with `--cfg tokio_unstable` (this workspace sets it): without it this
//! file has no test.
#![cfg(tokio_unstable)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leakscope::{EndedBy, UserHooks};
use leakscope_tests::*;

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Calls([AtomicUsize; 4]);

/// A hook that counts its calls in `calls.0[i]`.
fn count(
    calls: &Arc<Calls>,
    i: usize,
) -> impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + use<> {
    let calls = calls.clone();
    move |_| {
        calls.0[i].fetch_add(1, Ordering::Relaxed);
    }
}

impl Calls {
    fn get(&self) -> [usize; 4] {
        [0, 1, 2, 3].map(|i| self.0[i].load(Ordering::Relaxed))
    }
}

#[test]
fn user_hooks_run_after_leakscope_s_and_the_task_is_still_recorded() {
    init(Duration::from_millis(300));
    let calls = Arc::new(Calls::default());
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(1).enable_all();
    UserHooks::default()
        .on_task_spawn(count(&calls, 0))
        .on_task_terminate(count(&calls, 1))
        .on_before_task_poll(count(&calls, 2))
        .on_after_task_poll(count(&calls, 3))
        .install(&mut b);
    let rt = b.build().expect("runtime");
    let before = calls.get();
    let id = rt.block_on(async {
        let conn = leakscope::Connection::open("user-hooks", None);
        let id = conn.id().expect("tracked");
        conn.scope(async {
            tokio::spawn(async { tokio::task::yield_now().await })
                .await
                .unwrap();
        })
        .await;
        // The task's record, ended, in leakscope's snapshot.
        wait_for("the task's end", DEADLINE, || async {
            tasks_of(id)
                .into_iter()
                .find(|t| t.ended_by == Some(EndedBy::Completed))
        })
        .await;
        id
    });
    let after = calls.get();
    for (i, hook) in ["spawn", "terminate", "before poll", "after poll"]
        .iter()
        .enumerate()
    {
        assert!(
            after[i] > before[i],
            "the user's {hook} hook ran: {before:?} -> {after:?}"
        );
    }
    assert_eq!(tasks_of(id).len(), 1, "{:#?}", tasks_of(id));
    rt.shutdown_timeout(Duration::from_millis(500));
}
