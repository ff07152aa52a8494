use super::*;
use crate::churn::Ending;

fn snap(totals: Totals, conns: &[(&str, &str, u64, bool)]) -> Snap {
    Snap {
        mode: "hooks".into(),
        grace_ms: 5000,
        threshold: 65536,
        totals,
        conns: conns
            .iter()
            .map(|&(label, peer, orphans, leaking)| Conn {
                label: label.into(),
                peer: peer.into(),
                state: "closed".into(),
                orphan_tasks: orphans,
                retained_bytes: if leaking { 98_304 } else { 0 },
                leaking_memory: leaking,
            })
            .collect(),
    }
}

fn leaky(route: &'static str, peer: &str) -> LeakyConn {
    LeakyConn {
        route,
        peer: peer.into(),
        ending: Ending::CloseFrame,
    }
}

fn failed(checks: &[Check]) -> Vec<&'static str> {
    checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

#[test]
fn parses_the_snapshot_contract() {
    let body = r#"{"mode":"hooks","grace_ms":250,"retained_bytes_threshold":65536,
        "totals":{"connections_opened":7,"connections_closed":6,"orphan_tasks":1,
                  "connections_leaking_memory":2,"connections_evicted":3},
        "connections":[{"label":"/ws","peer":"127.0.0.1:5","state":"closed",
                        "orphan_tasks":0,"retained_bytes":0,"leaking_memory":false,
                        "closed_at_ms":1}]}"#;
    let s = parse(body).unwrap();
    assert_eq!(
        (s.grace_ms, s.threshold, s.mode.as_str()),
        (250, 65536, "hooks")
    );
    assert_eq!(
        (s.totals.opened, s.totals.closed, s.totals.evicted),
        (7, 6, 3)
    );
    assert_eq!(s.conns[0].peer, "127.0.0.1:5");
    assert!(parse(r#"{"grace_ms":1,"connections":[]}"#).is_err());
}

#[test]
fn an_exact_run_passes_and_a_missed_leak_fails() {
    let before = snap(
        Totals {
            opened: 10,
            closed: 10,
            ..Totals::default()
        },
        &[],
    );
    let made = [
        leaky(BYTES_ROUTE, "127.0.0.1:1"),
        leaky(FORWARDER_ROUTE, "127.0.0.1:2"),
    ];
    let totals = Totals {
        opened: 14,
        closed: 14,
        orphan_tasks: 1,
        leaking: 2,
        ..Totals::default()
    };
    let conns = [
        (BYTES_ROUTE, "127.0.0.1:1", 0, true),
        (FORWARDER_ROUTE, "127.0.0.1:2", 1, true),
        ("/ws", "127.0.0.1:1", 0, false), // a reused port on the clean route
        ("/ws", "127.0.0.1:3", 0, false),
    ];
    let f = figures(&before, &snap(totals, &conns), 4, &made);
    assert_eq!((f.bytes.listed, f.bytes.leaking), (1, 1));
    assert_eq!((f.forwarder.orphaned, f.forwarder.leaking), (1, 1));
    assert_eq!((f.clean_listed, f.clean_flagged), (2, 0));
    assert!(failed(&checks(&f, 0)).is_empty());
    assert_eq!(failed(&checks(&f, 1)), ["client errors"]);

    // The bytes connection not flagged and a clean one flagged instead: the totals still add
    // up, the per-connection checks see both.
    let conns = [
        (BYTES_ROUTE, "127.0.0.1:1", 0, false),
        (FORWARDER_ROUTE, "127.0.0.1:2", 1, true),
        ("/ws", "127.0.0.1:3", 0, true),
    ];
    let f = figures(&before, &snap(totals, &conns), 4, &made);
    assert_eq!(
        failed(&checks(&f, 0)),
        [
            "leaky-bytes flagged leaking_memory",
            "clean connections flagged"
        ]
    );
}

#[test]
fn evicted_leaky_connections_are_checked_through_the_totals() {
    let made = [
        leaky(BYTES_ROUTE, "127.0.0.1:1"),
        leaky(FORWARDER_ROUTE, "127.0.0.1:2"),
    ];
    let before = snap(Totals::default(), &[]);
    let mut totals = Totals {
        opened: 2,
        closed: 2,
        orphan_tasks: 1,
        leaking: 1,
        evicted: 2,
        ..Totals::default()
    };
    // Neither listed: the forwarder may or may not count as leaking memory.
    let f = figures(&before, &snap(totals, &[]), 2, &made);
    assert_eq!((f.bytes.listed, f.forwarder.listed), (0, 0));
    assert!(failed(&checks(&f, 0)).is_empty());
    totals.leaking = 2;
    let f = figures(&before, &snap(totals, &[]), 2, &made);
    assert!(failed(&checks(&f, 0)).is_empty());
    totals.leaking = 0;
    totals.opened = 3;
    let f = figures(&before, &snap(totals, &[]), 2, &made);
    assert_eq!(
        failed(&checks(&f, 0)),
        [
            "leaky-bytes flagged leaking_memory",
            "totals.connections_opened",
            "totals.connections_leaking_memory"
        ]
    );
}

#[test]
fn an_unlisted_leak_the_totals_do_not_count_fails() {
    // The bytes connection was evicted unflagged; only the forwarder is leaking memory.
    let made = [
        leaky(BYTES_ROUTE, "127.0.0.1:1"),
        leaky(FORWARDER_ROUTE, "127.0.0.1:2"),
    ];
    let totals = Totals {
        opened: 2,
        closed: 2,
        orphan_tasks: 1,
        leaking: 1,
        evicted: 1,
        ..Totals::default()
    };
    let after = snap(totals, &[(FORWARDER_ROUTE, "127.0.0.1:2", 1, true)]);
    let f = figures(&snap(Totals::default(), &[]), &after, 2, &made);
    assert_eq!((f.bytes.listed, f.bytes.counted), (0, 0));
    assert_eq!((f.forwarder.listed, f.forwarder.counted), (1, 1));
    assert_eq!(
        failed(&checks(&f, 0)),
        [
            "leaky-bytes flagged leaking_memory",
            "totals.connections_leaking_memory"
        ]
    );
}
