//! `Verify` cannot pass vacuously (issue 8, part 4): it waits for closes it has not seen yet,
//! fails as soon as a verdict is final, says "close never seen" for a socket nobody reads, and
//! judges only the connections of its own test (these tests run in parallel in one process).

use std::time::{Duration, Instant};

use axum::routing::get;
use leakscope::axum::WebSocketUpgrade;
use leakscope::{Mark, Verify};
use leakscope_tests::*;

const GRACE: Duration = Duration::from_millis(300);

/// Without `--cfg tokio_unstable` tokio cannot name a runtime, so a `Mark` covers every
/// connection opened after it: these tests then take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turns() -> Option<std::sync::MutexGuard<'static, ()>> {
    (!cfg!(tokio_unstable)).then(|| SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

#[test]
fn a_leak_whose_close_is_not_seen_yet_still_fails() {
    init(GRACE);
    let _turn = take_turns();
    run(async {
        let mark = Mark::now();
        let addr = serve_chat().await;
        let mut c = Client::connect(addr, "/ws/leaky/forwarder").await;
        c.round_trip("hi").await;
        c.drop_tcp(); // no close frame: the server has not seen the close yet
        let started = Instant::now();
        let report = Verify::since(mark)
            .timeout(Duration::from_secs(20))
            .check()
            .await
            .expect_err("the leaked forwarder must fail the check");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it fails once the verdict is final, not at the timeout ({:?})",
            started.elapsed()
        );
        assert!(
            report.tasks.iter().any(|t| t.orphan),
            "an orphan is named: {report}"
        );
        assert!(report.to_string().contains("chat.rs"), "{report}");
    });
}

#[test]
fn a_socket_nobody_reads_fails_as_close_never_seen_or_as_a_zombie() {
    init(GRACE);
    let _turn = take_turns();
    run(async {
        let mark = Mark::now();
        let app = axum::Router::new().route(
            "/deaf",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|s| async move {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    drop(s);
                })
            }),
        );
        // Without the tracked listener leakscope cannot see the peer leave: "close never seen".
        let addr = serve_plain(app.clone()).await;
        let c = Client::connect(addr, "/deaf").await;
        c.drop_tcp();
        let report = Verify::since(mark)
            .timeout(Duration::from_secs(1))
            .check()
            .await
            .expect_err("a connection whose close was never seen fails");
        assert!(report.to_string().contains("close never seen"), "{report}");
        // Behind it the socket is a zombie: closed when its peer left, its task an orphan
        // (axum's upgrade task: seen through the hooks only).
        if !hooks_mode() {
            return;
        }
        let mark = Mark::now();
        let addr = serve(app).await;
        let c = Client::connect(addr, "/deaf").await;
        c.drop_tcp();
        let report = Verify::since(mark)
            .timeout(Duration::from_secs(10))
            .check()
            .await
            .expect_err("a zombie's task is an orphan");
        assert!(
            report.to_string().contains("after its socket closed"),
            "{report}"
        );
    });
}

#[test]
fn a_clean_test_passes_once_its_closes_are_seen() {
    init(GRACE);
    let _turn = take_turns();
    run(async {
        let mark = Mark::now();
        let addr = serve_chat().await;
        for _ in 0..3 {
            let mut c = Client::connect(addr, "/ws").await;
            c.round_trip("hi").await;
            c.drop_tcp();
        }
        // Passes although the other tests of this binary leak at the same time.
        Verify::since(mark)
            .timeout(Duration::from_secs(10))
            .assert()
            .await;
    });
}
