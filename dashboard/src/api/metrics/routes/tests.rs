//! The per-route series: values, the caps and their `other` bucket, escaping.

use serde_json::{Value, json};

use super::{MAX_ROUTES, MAX_SITES, escape, write};

fn conn(id: u64, label: &str, state: &str, orphans: u64) -> Value {
    let mut c = serde_json::to_value(crate::testing::connection(id)).expect("JSON");
    c["label"] = json!(label);
    c["state"] = json!(state);
    c["orphan_tasks"] = json!(orphans);
    c
}

fn route(label: &str, closed: u64, retained: u64, verdict: &str) -> Value {
    json!({"label": label, "connections_closed": closed, "connections_retaining": 1,
        "retained_bytes": retained, "retained_bytes_per_connection": retained,
        "verdict": verdict})
}

fn sig(label: &str, site: &str, orphans: u64, verdict: &str) -> Value {
    json!({"kind": "task", "site": site, "label": label, "verdict": verdict,
        "connections_leaked": 1, "connections_closed": 1, "orphan_tasks": orphans,
        "retained_bytes": 0, "bytes_per_connection": 0, "first_seen_ms": 0,
        "last_seen_ms": 0, "started_by": null})
}

fn text(fields: Value) -> String {
    let mut out = String::new();
    write(&mut out, &crate::testing::snapshot(fields));
    out
}

fn lines<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .collect()
}

#[test]
fn a_route_sums_its_connections_and_its_verdict() {
    let t = text(json!({
        "connections": [conn(1, "/ws", "open", 0), conn(2, "/ws", "closed", 3),
            conn(3, "/api", "open", 0)],
        "routes": [route("/ws", 7, 4096, "leak")],
        "signatures": [sig("/ws", "src/a.rs:1:2", 3, "leak"), sig("/ws", "src/g.rs:1:1", 2, "shared")]
    }));
    assert_eq!(
        lines(&t, "leakscope_route_open_connections"),
        [
            r#"leakscope_route_open_connections{route="/api"} 1"#,
            r#"leakscope_route_open_connections{route="/ws"} 1"#
        ]
    );
    assert!(t.contains("leakscope_route_orphan_tasks{route=\"/ws\"} 3\n"));
    assert!(t.contains("leakscope_route_connections_leaking{route=\"/ws\"} 1\n"));
    assert!(t.contains("leakscope_route_retained_bytes{route=\"/ws\"} 4096\n"));
    assert!(t.contains("leakscope_route_connections_closed_total{route=\"/ws\"} 7\n"));
    assert!(t.contains("leakscope_route_leaking{route=\"/ws\"} 1\n"));
    assert!(t.contains("leakscope_route_leaking{route=\"/api\"} 0\n"));
    // Shared globals are not orphans.
    assert_eq!(
        lines(&t, "leakscope_signature_orphan_tasks"),
        [r#"leakscope_signature_orphan_tasks{route="/ws",site="src/a.rs:1:2"} 3"#]
    );
    assert!(t.contains("# TYPE leakscope_route_connections_closed_total counter\n"));
}

#[test]
fn routes_over_the_cap_are_summed_into_other_and_the_leaking_ones_keep_their_own() {
    let n = MAX_ROUTES + 10;
    // Route 0..n each with one open connection; the last one leaks: it ranks first.
    let mut conns: Vec<Value> = (0..n as u64)
        .map(|i| conn(i, &format!("/r{i:03}"), "open", 0))
        .collect();
    conns.push(conn(999, &format!("/r{:03}", n - 1), "closed", 5));
    let t = text(json!({"connections": conns}));
    let open = lines(&t, "leakscope_route_open_connections");
    assert_eq!(open.len(), MAX_ROUTES + 1, "{t}");
    assert_eq!(
        *open.last().unwrap(),
        r#"leakscope_route_open_connections{route="other"} 10"#
    );
    assert!(t.contains(&format!(
        "leakscope_route_orphan_tasks{{route=\"/r{:03}\"}} 5\n",
        n - 1
    )));
    assert!(t.contains("leakscope_route_orphan_tasks{route=\"other\"} 0\n"));
    // The sums over every series are the snapshot's.
    let total: u64 = open
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, n as u64);
}

#[test]
fn sites_over_the_cap_are_summed_into_other() {
    let sigs: Vec<Value> = (0..MAX_SITES as u64 + 5)
        .map(|i| sig("/ws", &format!("src/s.rs:{i}:1"), i + 1, "leak"))
        .collect();
    let t = text(json!({"signatures": sigs}));
    let rows = lines(&t, "leakscope_signature_orphan_tasks");
    assert_eq!(rows.len(), MAX_SITES + 1);
    // The five smallest (1..=5 orphans) are in other.
    assert_eq!(
        *rows.last().unwrap(),
        r#"leakscope_signature_orphan_tasks{route="other",site="other"} 15"#
    );
    assert!(!t.contains("site=\"src/s.rs:0:1\""));
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("/plain"), "/plain");
    assert_eq!(escape("a\\b\"c\nd"), r#"a\\b\"c\nd"#);
    let t = text(json!({"connections": [conn(1, "/x\"}\n", "open", 0)]}));
    assert!(
        t.contains("leakscope_route_open_connections{route=\"/x\\\"}\\n\"} 1\n"),
        "{t}"
    );
}
