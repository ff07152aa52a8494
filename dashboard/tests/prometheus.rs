//! The Prometheus side checked by Prometheus's own tool: `/metrics` of a router with tracked
//! connections (orphans, open connections, a label that needs escaping) passes
//! `promtool check metrics`. Needs Debian's `prometheus` package: without it the test fails
//! under `CI=true` and prints a SKIPPED line elsewhere.

mod common;

use common::prom::{find, promtool};
use common::{get, make_open, make_orphan, run};

const TEST: &str = "promtool check of /metrics";

#[test]
fn metrics_pass_promtool_check_metrics() {
    let Some(tool) = find("promtool", TEST) else {
        return;
    };
    run(async {
        make_orphan("prom/check").await;
        make_orphan("prom/check").await;
        let (_open, _, _) = make_open("prom/check").await;
        make_orphan("prom/\"quoted\"\\path\nline").await;
        let r = get(&leakscope_dashboard::router(), "/metrics").await;
        assert!(
            r.body
                .contains("leakscope_route_orphan_tasks{route=\"prom/check\"} 2\n"),
            "{}",
            r.body
        );
        assert!(r.body.contains(r#"route="prom/\"quoted\"\\path\nline""#));
        assert!(
            r.body
                .contains("leakscope_signature_orphan_tasks{route=\"prom/check\",site=")
        );
        let out = promtool(&tool, &["check", "metrics"], &r.body);
        assert!(out.trim().is_empty(), "promtool found problems:\n{out}");
    });
}
