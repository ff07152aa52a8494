//! The snapshot's JSON field names are a public contract (fixed by the core issue): this test
//! fails if one is renamed or dropped. New fields may be added freely.

use std::future::pending;
use std::time::Duration;

use leakscope_tests::{init, run, wait_for};

fn keys(v: &serde_json::Value) -> Vec<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_has(v: &serde_json::Value, want: &[&str]) {
    let have = keys(v);
    for k in want {
        assert!(have.contains(k), "missing field {k:?} in {have:?}");
    }
}

#[test]
fn the_snapshot_json_keeps_its_contract_fields() {
    init(Duration::from_millis(50));
    run(async {
        let conn = leakscope::Connection::open("/contract", Some("127.0.0.1:1".into()));
        conn.scope(async {
            leakscope::spawn_named("stuck", pending::<()>());
        })
        .await;
        conn.close();
        wait_for("an orphan", Duration::from_secs(10), || async {
            Some(()).filter(|_| leakscope::snapshot().totals.orphan_tasks > 0)
        })
        .await;
        let v = serde_json::to_value(leakscope::snapshot()).unwrap();
        assert_has(&v, &["mode", "grace_ms", "connections", "tasks", "totals"]);
        // Added by the collector issue (#8): part of the contract from now on.
        assert_has(&v, &["max_tracked_connections", "warnings", "heap"]);
        // Added by the signatures issue (#10).
        assert_has(&v, &["signatures", "routes"]);
        let sig = v["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == "/contract")
            .expect("the stuck task's signature");
        assert_has(
            sig,
            &[
                "kind",
                "site",
                "label",
                "verdict",
                "connections_leaked",
                "connections_closed",
                "orphan_tasks",
                "retained_bytes",
                "bytes_per_connection",
                "first_seen_ms",
                "last_seen_ms",
            ],
        );
        assert_eq!(sig["kind"], "task");
        assert_eq!(sig["verdict"], "leak");
        let route = v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == "/contract")
            .expect("the route");
        assert_has(
            route,
            &[
                "label",
                "connections_closed",
                "connections_retaining",
                "retained_bytes",
                "retained_bytes_per_connection",
                "verdict",
            ],
        );
        assert!(["hooks", "explicit-spawn", "disabled"].contains(&v["mode"].as_str().unwrap()));
        let c = v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["label"] == "/contract")
            .expect("the connection");
        assert_has(
            c,
            &[
                "id",
                "label",
                "peer",
                "state",
                "opened_at_ms",
                "closed_at_ms",
                "live_tasks",
                "orphan_tasks",
                "live_bytes",
                "retained_bytes",
                "leaking_memory",
                "runtime_id",
            ],
        );
        assert_eq!(c["state"], "closed");
        let t = v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["conn_id"] == c["id"])
            .expect("the task");
        assert_has(
            t,
            &[
                "id",
                "conn_id",
                "name",
                "spawned_at",
                "state",
                "ended_by",
                "spawned_at_ms",
                "ended_at_ms",
                "orphan",
                "outlived_close_ms",
                "shared",
            ],
        );
        assert_eq!(t["state"], "alive");
        assert_eq!(t["orphan"], true);
        assert!(t["ended_by"].is_null());
        assert_has(
            &v["totals"],
            &[
                "connections_opened",
                "connections_closed",
                "tasks_spawned",
                "orphan_tasks",
                "live_tasks",
                "open_connections",
                "connections_evicted",
                "connections_untracked",
                "connections_leaking_memory",
                "connections_ignored",
                "connections_leaking",
                "connections_folded_leaking",
                "tasks_ended",
                "shared_tasks",
                "routes_leaking",
            ],
        );
        let t = &v["totals"];
        assert_eq!(
            t["connections_opened"].as_u64(),
            Some(
                t["open_connections"].as_u64().unwrap()
                    + t["connections_closed"].as_u64().unwrap()
                    + t["connections_ignored"].as_u64().unwrap()
            )
        );
        // The values the contract lists for ended_by.
        for (e, s) in [
            (leakscope::EndedBy::Completed, "completed"),
            (leakscope::EndedBy::Aborted, "aborted"),
            (leakscope::EndedBy::Panicked, "panicked"),
            (leakscope::EndedBy::Shutdown, "shutdown"),
        ] {
            assert_eq!(serde_json::to_value(e).unwrap(), s);
        }
    });
}
