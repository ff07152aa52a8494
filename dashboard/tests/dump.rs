//! Task dumps (feature `taskdump`, Linux): refused with 503 while run queues are long, instead
//! of hanging the runtime; taken when the load drops. Without the feature, the 501 answer is
//! tested in `routes.rs`.

#![cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::*;
use leakscope_dashboard::router;

/// Wakes itself and returns `Pending` once: the task goes straight back to a run queue.
struct Requeue(bool);

impl Future for Requeue {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_dump_is_refused_under_load_and_taken_when_idle() {
    // A hung runtime cannot time itself out: a plain thread ends the process instead.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("the dump test hung: a task dump stalled the runtime");
        std::process::abort();
    });
    run(async {
        // An orphan parked on a tokio primitive (the tracer records tokio's leaf futures).
        let conn = leakscope::Connection::open("dump/busy", None);
        let id = conn.id().expect("tracked");
        let never = Arc::new(tokio::sync::Notify::new());
        let parked = never.clone();
        conn.scope(async move {
            tokio::spawn(async move { parked.notified().await });
        })
        .await;
        conn.close();
        let task = wait_for("the parked task to be an orphan", || {
            leakscope::snapshot()
                .tasks_of(id)
                .find(|t| t.orphan)
                .map(|t| t.id)
        })
        .await;
        let app = router();
        let stop = Arc::new(AtomicBool::new(false));
        // 400 always-runnable tasks on 2 workers: at least 398 sit in run queues at any time,
        // so some queue is far above the limit.
        let busy: Vec<_> = (0..400)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        Requeue(false).await;
                    }
                })
            })
            .collect();
        // This future runs on the test's own thread (block_on), not on a busy worker.
        let r = request(&app, Method::POST, &format!("/task/{task}"), &[]).await;
        stop.store(true, Ordering::Relaxed);
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert!(
            r.body.contains("Refusing to take a task dump now"),
            "{}",
            r.body
        );
        for b in busy {
            b.await.expect("busy task");
        }

        let r = request(&app, Method::POST, &format!("/task/{task}"), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body.contains(r#"<pre class="dump" id="dump-text">"#),
            "{}",
            r.body
        );
        // Debug builds keep the user's frame: the task awaits `notified()` in this file.
        assert!(r.body.contains("tests/dump.rs"), "{}", r.body);
        drop(never);
    });
}
