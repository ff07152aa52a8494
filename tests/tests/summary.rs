//! The cheap summary agrees with the full snapshot, and ignored connections vanish without a
//! trace in the totals. (One test: it asserts on process-wide totals.)

use std::future::pending;
use std::time::Duration;

use leakscope_tests::{Client, init, run, serve, wait_for};

#[test]
fn summary_matches_snapshot_and_ignored_connections_leave_no_trace() {
    init(Duration::from_millis(100));
    run(async {
        for i in 0..20 {
            let conn = leakscope::Connection::open("summary", Some(format!("peer-{i}")));
            conn.scope(async {
                leakscope::spawn_named("stuck", pending::<()>());
                leakscope::spawn_detached("flush", pending::<()>());
            })
            .await;
            conn.close();
        }
        let snap = wait_for("20 orphans", Duration::from_secs(10), || async {
            Some(leakscope::snapshot()).filter(|s| s.totals.orphan_tasks == 20)
        })
        .await;
        let sum = leakscope::summary(5);
        assert_eq!(sum.totals, snap.totals);
        assert_eq!(sum.heap.retained_bytes, snap.heap.retained_bytes);
        assert_eq!(sum.tasks.len(), 5);
        assert!(sum.tasks.iter().all(|t| t.orphan && !t.detached));
        assert!(
            sum.tasks
                .iter()
                .all(|t| sum.connection(t.conn_id).is_some())
        );

        // What `/metrics` reads: the same connections, routes, signatures and totals, no task.
        let conns = leakscope::connections_snapshot();
        assert!(conns.tasks.is_empty());
        assert_eq!(conns.totals, snap.totals);
        assert_eq!(conns.heap.retained_bytes, snap.heap.retained_bytes);
        assert_eq!(conns.connections, snap.connections);
        assert_eq!(conns.routes, snap.routes);
        // (A fix hint can cite an orphan's await point, which needs the task rows.)
        let sigs = |s: &leakscope::Snapshot| {
            let mut v: Vec<leakscope::Signature> = s.signatures.clone();
            v.iter_mut().for_each(|g| g.fix = None);
            v
        };
        assert_eq!(sigs(&conns), sigs(&snap));
        assert!(
            conns.signatures.iter().any(|g| g.orphan_tasks == 20),
            "{:?}",
            conns.signatures
        );

        // A connection the tool ignores: gone from the snapshot, counted once as ignored. (Only
        // hooks mode knows, inside a handler, which TCP connection it serves.)
        if !leakscope_tests::hooks_mode() {
            return;
        }
        let before = leakscope::snapshot().totals;
        let app = axum::Router::new().route(
            "/ws/ignored",
            axum::routing::get(|ws: leakscope::axum::WebSocketUpgrade| async move {
                if let Some(c) = leakscope::Connection::current() {
                    c.ignore();
                }
                ws.on_upgrade(|mut s| async move { while let Some(Ok(_)) = s.recv().await {} })
            }),
        );
        let addr = serve(app).await;
        let c = Client::connect(addr, "/ws/ignored").await;
        let peer = c.peer();
        c.close().await;
        let after = leakscope::snapshot();
        assert!(
            after
                .connections
                .iter()
                .all(|c| c.peer.as_deref() != Some(peer.as_str()))
        );
        // The TCP connection was opened, then ignored (counted once, as ignored: no counter
        // goes back); the WebSocket opened after the ignore is a connection of its own.
        let t = &after.totals;
        assert_eq!(t.connections_opened, before.connections_opened + 2);
        assert_eq!(t.connections_ignored, before.connections_ignored + 1);
        assert_eq!(
            t.connections_opened,
            t.open_connections + t.connections_closed + t.connections_ignored
        );
    });
}
