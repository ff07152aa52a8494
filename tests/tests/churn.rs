//! Verdicts under churn and the blind spots of the first slice (issue 8's defects), end to
//! end on real sockets with the real allocator. Each test here failed before the fix it names.

use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ws::Message;
use axum::routing::get;
use leakscope::axum::WebSocketUpgrade;
use leakscope::{ConnState, EndedBy};
use leakscope_tests::*;

const GRACE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(10);

fn init_caps() {
    let _ = leakscope::Builder::new()
        .grace(GRACE)
        .retention(Duration::ZERO)
        .max_closed_connections(5)
        .install();
}

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Told by the write-error test once its client has reset the connection.
static CLIENT_RESET: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn app() -> axum::Router {
    axum::Router::new()
        .route(
            "/clean",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
        )
        .route(
            "/keep",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|s| async move {
                    KEPT.lock().unwrap().push(vec![1u8; 200_000]);
                    echo(s).await
                })
            }),
        )
        .route(
            "/ticker",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut s| async move {
                    // A rare sender that never reads and ignores its errors: one message, sent
                    // once the client has reset (and the RST had 100 ms to arrive on loopback),
                    // then nothing for an hour.
                    CLIENT_RESET.notified().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = s.send(Message::Text("tick".into())).await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                })
            }),
        )
}

/// Defect 1: clean connections beyond `max_closed` used to be evicted before their grace
/// period, taking a byte leak among them out of the details and the totals.
#[test]
fn a_byte_leak_among_fast_clean_closes_is_flagged() {
    init_caps();
    run(async {
        let addr = serve(app()).await;
        let leak = Client::visit(addr, "/keep").await;
        for _ in 0..40 {
            Client::visit(addr, "/clean").await;
        }
        let c = wait_for("the byte leak to be judged", DEADLINE, || async {
            conn_by_peer(&leak).filter(|c| c.leaking_memory)
        })
        .await;
        assert!(c.retained_bytes >= 200_000, "{c:?}");
        let s = leakscope::snapshot();
        assert!(s.totals.connections_leaking_memory >= 1, "{:?}", s.totals);
        let flagged_clean = s
            .connections
            .iter()
            .filter(|c| c.label == "/clean" && c.leaking_memory)
            .count();
        assert_eq!(flagged_clean, 0);
    });
}

/// Defect 12: a write error that surfaces in `poll_flush` closes the connection (tungstenite
/// buffers in `start_send`). Served without the listener wrapper, whose socket-level write
/// error would close it anyway.
#[test]
fn a_sender_whose_peer_reset_is_closed_by_its_write_error() {
    init_caps();
    run(async {
        let addr = serve_plain(app()).await;
        let c = Client::connect(addr, "/ticker").await;
        let peer = c.peer();
        wait_for("the ticker connection", DEADLINE, || async {
            conn_by_peer(&peer)
        })
        .await;
        c.reset();
        CLIENT_RESET.notify_one();
        let conn = wait_for("the reset to close the connection", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.state == ConnState::Closed)
        })
        .await;
        assert_eq!(
            conn.close_reason.as_deref(),
            Some("write error"),
            "{conn:?}"
        );
    });
}

/// Defect 10: a panic caught inside a task does not make it "panicked".
#[test]
fn a_panic_caught_inside_a_task_is_not_its_end() {
    init_caps();
    if !hooks_mode() {
        eprintln!("(explicit-spawn mode: plain tokio::spawn is not seen; nothing to check)");
        return;
    }
    run(async {
        let conn = leakscope::Connection::open("caught", None);
        let id = conn.id().unwrap();
        conn.scope(async {
            tokio::spawn(async {
                let caught = std::panic::catch_unwind(|| panic!("caught on purpose"));
                assert!(caught.is_err());
            })
            .await
            .unwrap();
            leakscope::spawn_named("wrapped", async {
                let caught = std::panic::catch_unwind(|| panic!("caught on purpose"));
                assert!(caught.is_err());
            })
            .await
            .unwrap();
        })
        .await;
        conn.close();
        let tasks = wait_for("both tasks to end", DEADLINE, || async {
            let t = tasks_of(id);
            (t.len() == 2 && t.iter().all(|t| t.ended_by.is_some())).then_some(t)
        })
        .await;
        for t in tasks {
            if !t.name.ends_with(" wrapped") {
                // A plain tokio::spawn: tokio does not tell a hook whether the panic escaped.
                // If leakscope guesses "panicked", it must say that it is a guess.
                if t.ended_by == Some(EndedBy::Panicked) {
                    assert_eq!(t.ended_by_exact, Some(false), "{t:?}");
                }
            } else {
                assert_eq!(t.ended_by, Some(EndedBy::Completed), "{t:?}");
                assert_eq!(t.ended_by_exact, Some(true), "{t:?}");
            }
        }
    });
}
