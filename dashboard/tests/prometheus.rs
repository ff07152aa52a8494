//! The Prometheus side checked by Prometheus's own tool: `/metrics` of a router with tracked
//! connections (orphans, open connections, a label that needs escaping) passes
//! `promtool check metrics`; `docs/prometheus/alerts.yml` passes `promtool check rules` and
//! its unit tests (`alerts.test.yml`); the alerts and `docs/grafana/leakscope.json` name
//! exported metrics only. Needs Debian's `prometheus` package: without it the tests fail under
//! `CI=true` and print a SKIPPED line elsewhere.

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

/// The repository's `docs/` folder.
fn docs() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Every `leakscope_*` metric name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .match_indices("leakscope_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The `expr` of every panel target of the Grafana dashboard.
fn grafana_exprs() -> Vec<String> {
    let path = docs().join("grafana/leakscope.json");
    let text = std::fs::read_to_string(&path).expect("docs/grafana/leakscope.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = json["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    panels
        .iter()
        .flat_map(|p| {
            let targets = p["targets"].as_array().expect("every panel has targets");
            assert!(!targets.is_empty(), "a panel without targets: {p}");
            targets.iter().map(|t| {
                let expr = t["expr"].as_str().expect("every target has an expr");
                expr.to_owned()
            })
        })
        .collect()
}

/// The alerts pass `promtool check rules` and their unit tests (`promtool test rules`); every
/// metric they and the Grafana dashboard name is one `/metrics` exports.
#[test]
fn alerts_and_the_grafana_dashboard_use_real_metrics() {
    let exported = run(async {
        make_orphan("prom/names").await;
        get(&leakscope_dashboard::router(), "/metrics").await.body
    });
    let exported = |name: &str| exported.contains(&format!("# TYPE {name} "));
    let alerts = std::fs::read_to_string(docs().join("prometheus/alerts.yml")).expect("alerts");
    let exprs = grafana_exprs().join("\n");
    for name in metric_names(&alerts).iter().chain(&metric_names(&exprs)) {
        assert!(exported(name), "{name} is not exported by /metrics");
    }
    assert!(exprs.contains("by (route)") && exprs.contains("by (instance)"));
    let Some(tool) = find("promtool", "promtool check of docs/prometheus/alerts.yml") else {
        return;
    };
    let dir = docs().join("prometheus");
    let dir = dir.to_str().expect("UTF-8 path");
    promtool(&tool, &["check", "rules", &format!("{dir}/alerts.yml")], "");
    // The test file names alerts.yml relative to itself.
    promtool(
        &tool,
        &["test", "rules", &format!("{dir}/alerts.test.yml")],
        "",
    );
}
