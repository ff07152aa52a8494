//! leaky-chat on real sockets: orphans on the leaky routes, none on the clean one.

use std::time::Duration;

use leakscope::{ConnState, TaskState};
use leakscope_tests::*;

const GRACE: Duration = Duration::from_millis(300);
/// The bound is grace + 1 s; a loaded CI box gets more slack before we call it a bug.
const ORPHAN_DEADLINE: Duration = Duration::from_secs(10);

fn setup() {
    init(GRACE);
}

#[test]
fn a_leaky_forwarder_becomes_an_orphan_after_a_close_frame() {
    setup();
    run(async {
        let addr = serve_chat().await;
        let peer = Client::visit(addr, "/ws/leaky/forwarder").await;
        let closed_at = std::time::Instant::now();
        let conn = wait_for("the forwarder to be an orphan", ORPHAN_DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.orphan_tasks == 1)
        })
        .await;
        let elapsed = closed_at.elapsed();
        assert!(
            elapsed < GRACE + Duration::from_secs(1),
            "orphan flagged after {elapsed:?}, want < grace + 1 s"
        );
        assert_eq!(conn.state, ConnState::Closed);
        assert_eq!(conn.label, "/ws/leaky/forwarder");
        let orphan = tasks_of(conn.id).into_iter().find(|t| t.orphan).unwrap();
        assert_eq!(orphan.name, format!("conn={} forwarder", conn.id));
        assert!(
            orphan.spawned_at.contains("chat.rs"),
            "{}",
            orphan.spawned_at
        );
        assert!(orphan.outlived_close_ms.unwrap() >= GRACE.as_millis() as u64);
    });
}

#[test]
fn a_leaky_forwarder_becomes_an_orphan_when_the_tcp_connection_drops() {
    setup();
    run(async {
        let addr = serve_chat().await;
        let mut c = Client::connect(addr, "/ws/leaky/forwarder").await;
        c.round_trip("hi").await;
        let peer = c.peer();
        c.drop_tcp();
        let conn = wait_for("an orphan after a TCP drop", ORPHAN_DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.orphan_tasks == 1)
        })
        .await;
        assert!(conn.close_reason.is_some());
    });
}

#[test]
fn the_clean_route_leaves_no_orphans_however_the_client_leaves() {
    setup();
    run(async {
        let addr = serve_chat().await;
        let mut peers = Vec::new();
        for i in 0..4 {
            let mut c = Client::connect(addr, "/ws").await;
            c.round_trip("hello").await;
            peers.push(c.peer());
            if i % 2 == 0 {
                c.close().await
            } else {
                c.drop_tcp()
            }
        }
        for peer in &peers {
            let conn = wait_for(
                "the clean connection's tasks to end",
                ORPHAN_DEADLINE,
                || async {
                    conn_by_peer(peer).filter(|c| c.state == ConnState::Closed && c.live_tasks == 0)
                },
            )
            .await;
            assert!(conn.tasks_spawned >= 2, "{conn:?}");
            let tasks = tasks_of(conn.id);
            assert!(
                tasks
                    .iter()
                    .all(|t| t.state == TaskState::Ended && !t.orphan),
                "{tasks:?}"
            );
        }
        // And the assertion API agrees.
        leakscope::Verify::new()
            .ignore_label("/ws/leaky/forwarder")
            .ignore_label("/ws/leaky/heartbeat")
            .check()
            .await
            .expect("no orphans from /ws");
    });
}

#[test]
fn plain_spawns_in_a_helper_module_and_grandchildren_are_attributed() {
    setup();
    if !hooks_mode() {
        eprintln!("explicit-spawn mode: plain tokio::spawn is invisible by design; skipping");
        return;
    }
    run(async {
        let addr = serve_chat().await;
        let peer = Client::visit(addr, "/ws/leaky/heartbeat").await;
        let conn = wait_for("heartbeat and ticker orphans", ORPHAN_DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.orphan_tasks == 2)
        })
        .await;
        let orphans: Vec<_> = tasks_of(conn.id).into_iter().filter(|t| t.orphan).collect();
        assert_eq!(orphans.len(), 2);
        assert!(
            orphans
                .iter()
                .all(|t| t.spawned_at.contains("heartbeat.rs")),
            "{orphans:?}"
        );
        // axum's upgrade task (spawned inside axum's on_upgrade) is the connection's too.
        assert!(
            tasks_of(conn.id)
                .iter()
                .any(|t| t.spawned_at.contains("axum")),
            "axum's upgrade task should be attributed: {:?}",
            tasks_of(conn.id)
        );
    });
}

#[test]
fn the_listener_and_the_websocket_wrapper_make_one_connection() {
    setup();
    run(async {
        let addr = serve_chat().await;
        let mut c = Client::connect(addr, "/ws").await;
        c.round_trip("hi").await;
        let peer = c.peer();
        let conns = conns_by_peer(&peer);
        assert_eq!(conns.len(), 1, "{conns:?}");
        assert_eq!(conns[0].label, "/ws");
        assert_eq!(conns[0].state, ConnState::Open);
        c.close().await;
    });
}

#[test]
fn verify_reports_each_orphan_with_label_and_spawn_location() {
    setup();
    run(async {
        let addr = serve_chat().await;
        let peer = Client::visit(addr, "/ws/leaky/forwarder").await;
        let err = leakscope::Verify::new()
            .timeout(GRACE * 3)
            .check()
            .await
            .expect_err("the forwarder leaks");
        let text = err.to_string();
        assert!(text.contains("/ws/leaky/forwarder"), "{text}");
        assert!(text.contains(&peer), "{text}");
        assert!(text.contains("chat.rs"), "{text}");
    });
}
