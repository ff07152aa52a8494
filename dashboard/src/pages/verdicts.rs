//! The overview's verdicts above single connections: leak signatures (which code leaks, on
//! which route; shared globals apart) and routes (slow leaks), as rows for
//! `templates/verdicts.html`. The verdicts are leakscope's (`Signature::verdict`,
//! `RouteInfo::verdict`): the dashboard only shows them.

use leakscope::{RouteInfo, Signature, SignatureKind, Snapshot, Verdict};

use super::{Ctx, FixLink};
use crate::view;

/// Signature rows shown per table (leaks, shared); the rest are counted.
const SIGNATURE_ROWS: usize = 50;
/// Route rows shown; the rest are counted.
const ROUTE_ROWS: usize = 100;

/// One signature.
pub(super) struct SigRow {
    /// `leak` (red) or `shared`: also the row's class.
    pub(super) class: &'static str,
    /// `task` or `bytes`.
    pub(super) kind: &'static str,
    pub(super) site: String,
    pub(super) label: String,
    /// The connection list filtered by this route.
    pub(super) label_href: String,
    /// `N of M closed connections`.
    pub(super) connections: String,
    pub(super) orphan_tasks: String,
    pub(super) retained: String,
    pub(super) per_connection: String,
    pub(super) first_seen: String,
    pub(super) last_seen: String,
    /// The first connection that leaked from the site (for a shared one: that started it).
    pub(super) started_by: Option<u64>,
    /// A leak's likely pattern and its section of the fixes page.
    pub(super) fix: Option<FixLink>,
}

/// One route.
pub(super) struct RouteRow {
    /// `leak` (red) or `ok`: also the row's class.
    pub(super) class: &'static str,
    pub(super) label: String,
    pub(super) label_href: String,
    /// The verdict in words: `slow leak: N of M closed connections still retain X each`, `ok`.
    pub(super) verdict: String,
    pub(super) closed: String,
    pub(super) retaining: String,
    pub(super) retained: String,
    pub(super) per_connection: String,
    /// The route's heap profile.
    pub(super) pprof_href: String,
}

/// What the overview shows above its charts.
pub(super) struct Verdicts {
    pub(super) leaks: Vec<SigRow>,
    pub(super) leaks_more: usize,
    pub(super) shared: Vec<SigRow>,
    pub(super) shared_more: usize,
    pub(super) routes: Vec<RouteRow>,
    pub(super) routes_more: usize,
    pub(super) routes_leaking: usize,
}

/// `?label=<route>` for the overview's connection list.
fn label_href(label: &str, qa: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("label", label)
        .finish();
    format!("?{q}{qa}#connections")
}

/// `N of M closed connections`.
fn of_closed(n: u64, m: u64) -> String {
    let noun = if m == 1 { "connection" } else { "connections" };
    format!("{} of {} closed {noun}", view::count(n), view::count(m))
}

fn sig_row(now: u64, s: &Signature, ctx: &Ctx) -> SigRow {
    let seen = |ms: u64| view::ago(now, (ms > 0).then_some(ms));
    SigRow {
        class: if s.verdict == Verdict::Shared {
            "shared"
        } else {
            "leak"
        },
        kind: match s.kind {
            SignatureKind::Task => "task",
            SignatureKind::Bytes => "bytes",
        },
        site: view::location(&s.site),
        label: s.label.clone(),
        label_href: label_href(&s.label, &ctx.qa),
        connections: of_closed(s.connections_leaked, s.connections_closed),
        orphan_tasks: view::count(s.orphan_tasks),
        retained: view::bytes(s.retained_bytes),
        per_connection: view::bytes(s.bytes_per_connection),
        first_seen: seen(s.first_seen_ms),
        last_seen: seen(s.last_seen_ms),
        started_by: s.started_by,
        fix: s.fix.as_ref().map(|h| FixLink::new(h, ctx)),
    }
}

fn route_row(r: &RouteInfo, ctx: &Ctx) -> RouteRow {
    let leak = r.verdict == Verdict::Leak;
    let verdict = if leak {
        format!(
            "slow leak: {} still retain {} each",
            of_closed(r.connections_retaining, r.connections_closed),
            view::bytes(r.retained_bytes_per_connection)
        )
    } else {
        "ok".to_owned()
    };
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("route", &r.label)
        .finish();
    RouteRow {
        class: if leak { "leak" } else { "ok" },
        label: r.label.clone(),
        label_href: label_href(&r.label, &ctx.qa),
        verdict,
        closed: view::count(r.connections_closed),
        retaining: view::count(r.connections_retaining),
        retained: view::bytes(r.retained_bytes),
        per_connection: view::bytes(r.retained_bytes_per_connection),
        pprof_href: format!("{}api/pprof?{q}{}", ctx.root, ctx.qa),
    }
}

/// The first `limit` of `rows` and how many were left out.
fn first<T>(rows: impl Iterator<Item = T>, limit: usize) -> (Vec<T>, usize) {
    let mut shown = Vec::new();
    let mut more = 0;
    for r in rows {
        if shown.len() < limit {
            shown.push(r);
        } else {
            more += 1;
        }
    }
    (shown, more)
}

/// The snapshot's signatures and routes as rows: leaks in the snapshot's order (leaks first,
/// largest first), shared globals apart, routes with slow leaks first.
pub(super) fn build(s: &Snapshot, ctx: &Ctx) -> Verdicts {
    let now = s.taken_at_ms;
    let of = |verdict: Verdict| {
        let rows = s.signatures.iter().filter(move |g| g.verdict == verdict);
        first(rows.map(|g| sig_row(now, g, ctx)), SIGNATURE_ROWS)
    };
    let (leaks, leaks_more) = of(Verdict::Leak);
    let (shared, shared_more) = of(Verdict::Shared);
    let mut routes: Vec<&RouteInfo> = s.routes.iter().collect();
    routes.sort_by_key(|r| r.verdict != Verdict::Leak);
    let routes_leaking = routes.iter().filter(|r| r.verdict == Verdict::Leak).count();
    let (routes, routes_more) = first(routes.into_iter().map(|r| route_row(r, ctx)), ROUTE_ROWS);
    Verdicts {
        leaks,
        leaks_more,
        shared,
        shared_more,
        routes,
        routes_more,
        routes_leaking,
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;
    use axum::http::Uri;

    use super::{Ctx, Verdicts, build};
    use crate::auth::TokenQuery;

    /// The overview's verdict sections alone.
    #[derive(Template)]
    #[template(path = "verdicts.html")]
    struct Sections {
        ctx: Ctx,
        v: Verdicts,
    }

    fn sig(
        verdict: &str,
        kind: &str,
        site: &str,
        label: &str,
        started_by: u64,
    ) -> serde_json::Value {
        serde_json::json!({
            "kind": kind, "site": site, "label": label, "verdict": verdict,
            "connections_leaked": 3, "connections_closed": 7, "orphan_tasks": 3,
            "retained_bytes": 6144, "bytes_per_connection": 2048,
            "first_seen_ms": 1_000, "last_seen_ms": 9_000, "started_by": started_by
        })
    }

    /// `sig` with a fix hint whose summary needs escaping.
    fn fixed(mut sig: serde_json::Value) -> serde_json::Value {
        sig["fix"] = serde_json::json!({
            "pattern": "ticking-loop", "summary": "a loop <that> ticks",
            "doc": "docs/fixes.md#a-loop-that-keeps-ticking"
        });
        sig
    }

    fn route(label: &str, verdict: &str) -> serde_json::Value {
        serde_json::json!({
            "label": label, "connections_closed": 14, "connections_retaining": 12,
            "retained_bytes": 98_304, "retained_bytes_per_connection": 8192, "verdict": verdict
        })
    }

    #[test]
    fn leaks_red_shared_apart_slow_routes_red() {
        let snap = crate::testing::snapshot(serde_json::json!({
            "taken_at_ms": 10_000,
            "signatures": [
                fixed(sig("leak", "task", "src/chat.rs:63:9", "/ws/a&b", 5)),
                sig("shared", "task", "/root/.cargo/registry/src/index.crates.io-1/hyper-util-0.1.0/src/pool.rs:1:2", "/ws/fetch", 8),
                sig("leak", "bytes", "src/keep.rs:10", "/ws/keep", 9),
            ],
            "routes": [route("/ws/ok", "ok"), route("/ws/slow", "leak")],
        }));
        let uri: Uri = "/".parse().unwrap();
        let ctx = Ctx::new(&uri, &uri, None);
        let v = build(&snap, &ctx);
        assert_eq!((v.leaks.len(), v.shared.len(), v.routes_leaking), (2, 1, 1));
        let html = Sections { ctx, v }.render().unwrap();
        let leak = r#"<tr class="sig leak" data-label="/ws/a&#38;b" data-kind="task">"#;
        assert!(html.contains(leak), "{html}");
        assert!(html.contains("3 of 7 closed connections"), "{html}");
        assert!(
            html.contains(r#"href="?label=%2Fws%2Fa%26b#connections""#),
            "{html}"
        );
        assert!(html.contains(r#"<tr class="sig leak" data-label="/ws/keep" data-kind="bytes">"#));
        // The likely pattern and its section of the fixes page; none given, none shown.
        let fix = r#"<td class="fix" colspan="9"><span class="fix-label">likely cause:</span> <span class="fix-summary">a loop &#60;that&#62; ticks</span> <a class="fix-link" href="fixes#a-loop-that-keeps-ticking">"#;
        assert!(html.contains(fix), "{html}");
        let under = r#"<tr class="sig-fix leak" data-label="/ws/a&#38;b" data-kind="task">"#;
        let (row_at, fix_at) = (html.find(leak).unwrap(), html.find(under).expect("fix row"));
        assert!(row_at < fix_at, "under its signature");
        assert!(
            !html[row_at + 1..fix_at].contains(r#"<tr class="sig "#),
            "right under"
        );
        assert_eq!(html.matches(r#"class="fix-link""#).count(), 1, "{html}");
        // Nested, opened with a token: the link stays under the prefix and carries it.
        let (original, inner): (Uri, Uri) = ("/_leakscope".parse().unwrap(), "/".parse().unwrap());
        let ctx = Ctx::new(&original, &inner, Some(&TokenQuery("token=a+b".into())));
        let nested = Sections {
            v: build(&snap, &ctx),
            ctx,
        }
        .render()
        .unwrap();
        assert!(
            nested.contains(r#"href="_leakscope/fixes?token=a+b#a-loop-that-keeps-ticking""#),
            "{nested}"
        );
        let shared = html.find(r#"id="shared-globals""#).expect("shared apart");
        assert!(html.find(leak).unwrap() < shared);
        let rest = &html[shared..html.find(r#"id="routes""#).unwrap()];
        assert!(
            rest.contains(r#"<tr class="sig shared" data-label="/ws/fetch""#),
            "{rest}"
        );
        assert!(!rest.contains("sig leak") && rest.contains("hyper-util-0.1.0/src/pool.rs:1:2"));
        assert!(
            rest.contains(r#"started by connection <a href="conn/8">8</a>"#),
            "{rest}"
        );
        // Slow leaks first, in red, in words.
        let slow = html
            .find(r#"<tr class="route leak" data-label="/ws/slow">"#)
            .unwrap();
        assert!(
            slow < html
                .find(r#"<tr class="route ok" data-label="/ws/ok">"#)
                .unwrap()
        );
        assert!(html.contains("slow leak: 12 of 14 closed connections still retain 8.0 KiB each"));
        assert!(
            html.contains(r#"href="api/pprof?route=%2Fws%2Fslow" download"#),
            "{html}"
        );
    }
}
