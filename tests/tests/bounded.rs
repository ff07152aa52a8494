//! The tool must not be the leak: the collector's memory is bounded by configuration, and
//! the totals stay exact when details are evicted.

use std::future::pending;
use std::time::Duration;

use leakscope_tests::{run, wait_for};

#[test]
fn leaking_connections_beyond_the_cap_are_folded_into_exact_totals() {
    leakscope::Builder::new()
        .grace(Duration::from_millis(0))
        .retention(Duration::from_millis(0))
        .max_closed_connections(5)
        .max_leaking_connections(10)
        .install()
        .unwrap();
    run(async {
        let mut handles = Vec::new();
        for _ in 0..200 {
            let conn = leakscope::Connection::open("bounded", None);
            conn.scope(async {
                handles.push(leakscope::spawn_named("stuck", pending::<()>()));
            })
            .await;
            conn.close();
        }
        for _ in 0..300 {
            let conn = leakscope::Connection::open("clean", None);
            conn.scope(async { leakscope::spawn(async {}).await.unwrap() })
                .await;
            conn.close();
        }
        // Connections are kept until judged (close + grace, here 0 ms); then the caps apply.
        let snap = wait_for(
            "the 200 stuck tasks to count as orphans and the caps to apply",
            Duration::from_secs(10),
            || async {
                Some(leakscope::snapshot())
                    .filter(|s| s.totals.orphan_tasks == 200 && s.connections.len() <= 15)
            },
        )
        .await;
        assert_eq!(snap.totals.connections_opened, 500);
        assert_eq!(snap.totals.connections_closed, 500);
        assert_eq!(snap.totals.tasks_spawned, 500);
        let kept = snap.connections.len();
        assert!(kept <= 10 + 5, "kept {kept} connections, caps allow 15");
        assert!(
            snap.tasks.len() <= 10 + 5,
            "kept {} task records",
            snap.tasks.len()
        );
        assert!(snap.totals.connections_evicted >= 485);
        // Ending the evicted tasks keeps the totals exact.
        for h in &handles {
            h.abort();
        }
        wait_for(
            "aborted evicted tasks to leave the totals",
            Duration::from_secs(10),
            || async {
                Some(leakscope::snapshot())
                    .filter(|s| s.totals.orphan_tasks == 0 && s.totals.live_tasks == 0)
            },
        )
        .await;
    });
}
