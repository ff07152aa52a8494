//! Per-connection heap accounting end to end: the tracking allocator, real sockets.

use std::time::Duration;

use leakscope::ConnState;
use leakscope_tests::*;

const GRACE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn the_leaky_bytes_route_retains_what_its_handler_kept() {
    init(GRACE);
    run(async {
        let addr = serve_chat().await;
        let mut c = Client::connect(addr, "/ws/leaky/bytes").await;
        let msg = "x".repeat(1024);
        for _ in 0..100 {
            c.round_trip(&msg).await;
        }
        let peer = c.peer();
        c.close().await;
        let conn = wait_for("retained bytes past the grace period", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.state == ConnState::Closed && c.retained_bytes > 0)
        })
        .await;
        let kept = 100 * 1024;
        // The handler kept 100 KiB of messages plus the Vec that holds them (<= 2 KiB of
        // pointers after growth) and its map entry. Tolerance: 16 KiB.
        assert!(
            conn.retained_bytes >= kept && conn.retained_bytes <= kept + 16 * 1024,
            "retained {} bytes, expected {kept} + at most 16 KiB",
            conn.retained_bytes
        );
        assert!(conn.leaking_memory, "{conn:?}");
        assert_eq!(conn.orphan_tasks, 0);
    });
}

#[test]
fn the_clean_route_retains_less_than_the_threshold() {
    init(GRACE);
    run(async {
        let addr = serve_chat().await;
        let mut c = Client::connect(addr, "/ws").await;
        for i in 0..20 {
            c.round_trip(&format!("message {i}")).await;
        }
        let peer = c.peer();
        c.close().await;
        let conn = wait_for("the clean connection to settle", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| {
                c.state == ConnState::Closed
                    && c.live_tasks == 0
                    && c.closed_at_ms.is_some_and(|t| {
                        leakscope::summary(0).taken_at_ms > t + GRACE.as_millis() as u64 + 50
                    })
            })
        })
        .await;
        let threshold = leakscope::snapshot().retained_bytes_threshold;
        if hooks_mode() {
            // axum's upgrade task, which builds the socket, is the connection's only with hooks.
            assert!(
                conn.allocated_bytes > 100 * 1024,
                "the socket's buffers count: {conn:?}"
            );
        }
        assert!(conn.retained_bytes < threshold, "{conn:?}");
        assert!(!conn.leaking_memory);
    });
}

#[test]
fn a_leaked_forwarder_holding_the_sink_retains_the_socket_buffers() {
    init(GRACE);
    run(async {
        let addr = serve_chat().await;
        let peer = Client::visit(addr, "/ws/leaky/forwarder").await;
        let conn = wait_for("the forwarder orphan", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.orphan_tasks == 1)
        })
        .await;
        // axum's upgrade task built the socket (tungstenite's buffers) as this connection's
        // code, and the orphan keeps the sink half, hence the whole stream, alive. Without
        // hooks axum's upgrade task is nobody's: nothing to check then.
        if !hooks_mode() {
            return;
        }
        assert!(
            conn.retained_bytes >= 64 * 1024,
            "expected the socket's buffers to be retained: {conn:?}"
        );
    });
}

/// A connection opened from another connection's code: the new record's copy of its peer text
/// is leakscope's memory, not the opener's (the opener pays only for the `String` it built,
/// which the open frees).
#[test]
fn a_peer_given_as_text_is_not_charged_to_the_code_that_opened_the_connection() {
    init(GRACE);
    let outer = leakscope::Connection::open("outer", None);
    let big = 64 * 1024;
    let inner = outer.in_scope(|| leakscope::Connection::open("inner", Some("p".repeat(big))));
    let (outer_id, inner_id) = (outer.id().unwrap(), inner.id().unwrap());
    let snap = leakscope::snapshot();
    let row = |id| snap.connections.iter().find(|c| c.id == id).unwrap();
    assert_eq!(row(inner_id).peer.as_deref().map(str::len), Some(big));
    assert!(
        row(outer_id).live_bytes < 4096,
        "the opener holds {} live bytes: the new record's peer was charged to it",
        row(outer_id).live_bytes
    );
}
