//! Every page and API route, its error cases, escaping, auth and nesting.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use leakscope_dashboard::router;

#[test]
fn overview_lists_orphans_in_red_and_escapes_labels() {
    run(async {
        let (conn, task) = make_orphan("routes/<script>alert(1)</script>").await;
        let app = router();
        let r = get(&app, "/").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.header("content-type").starts_with("text/html"));
        assert!(
            r.header("content-security-policy")
                .contains("script-src 'self'")
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert!(!r.body.contains("<script>alert"), "label not escaped");
        let row = format!(
            r#"<tr class="orphan" data-label="routes/&#60;script&#62;alert(1)&#60;/script&#62;" data-task="{task}">"#
        );
        assert!(
            r.body.contains(&row),
            "no red orphan row {row} in:\n{}",
            r.body
        );
        assert!(r.body.contains(&format!(r#"href="conn/{conn}""#)));
        assert!(r.body.contains(&format!(r#"href="task/{task}""#)));
        for key in [
            "open_connections",
            "live_tasks",
            "orphan_tasks",
            "retained_bytes",
        ] {
            assert!(
                r.body.contains(&format!(r#"data-counter="{key}""#)),
                "{key}"
            );
        }
    });
}

#[test]
fn connections_table_filters_and_paginates() {
    run(async {
        let (_c1, open_id, _) = make_open("routes/filter/a").await;
        let (_c2, open_id2, _) = make_open("routes/filter/b").await;
        let (leak_id, _) = make_orphan("routes/filter/leak").await;
        let app = router();
        let link = |id: u64| format!(r#"href="conn/{id}""#);

        // Only the connections table (the orphan table above it lists the leaking one too).
        let table =
            |body: &str| body[body.find(r#"id="connections""#).expect("table")..].to_owned();

        let t = table(
            &get(&app, "/?state=open&label=routes%2Ffilter%2F")
                .await
                .body,
        );
        assert!(
            t.contains(&link(open_id)) && t.contains(&link(open_id2)),
            "{t}"
        );
        assert!(!t.contains(&link(leak_id)), "{t}");
        assert!(t.contains("of 2 matching"), "{t}");

        let t = table(&get(&app, "/?state=leaking&label=routes/filter/").await.body);
        assert!(
            t.contains("of 1 matching") && t.contains(&link(leak_id)),
            "{t}"
        );
        assert!(t.contains(r#"<span class="badge state-leaking">leaking</span>"#));

        let t = table(&get(&app, "/?state=closed&label=routes/filter/").await.body);
        assert!(
            t.contains("of 1 matching") && t.contains(&link(leak_id)),
            "{t}"
        );

        // Newest first: page 1 has b, page 2 has a.
        let t = table(
            &get(&app, "/?label=routes/filter/&state=open&per_page=1&page=2")
                .await
                .body,
        );
        assert!(
            t.contains(&link(open_id)) && !t.contains(&link(open_id2)),
            "{t}"
        );
        assert!(t.contains("page 2 of 2"));
        assert!(
            t.contains("?state=open&#38;label=routes%2Ffilter%2F&#38;page=1&#38;per_page=1"),
            "{t}"
        );

        // Past the last page: an empty page, not an error.
        let r = get(&app, "/?label=routes/filter/&page=99").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("No connections match."));
    });
}

#[test]
fn bad_query_parameters_are_400_with_a_message() {
    run(async {
        let app = router();
        let cases = [
            (
                "/?state=bogus",
                "state=\"bogus\": expected open, closed, leaking or all",
            ),
            ("/?page=0", "page=\"0\": expected a whole number from 1"),
            (
                "/?per_page=501",
                "per_page=\"501\": expected a whole number from 1 to 500",
            ),
            ("/?per_page=ten", "per_page=\"ten\""),
            ("/?stat=open", "unknown query parameter \"stat\""),
            ("/?page=1&page=2", "\"page\" is given more than once"),
            ("/conn/abc", "conn id \"abc\" is not a whole number"),
            ("/conn/-1", "is not a whole number"),
            ("/conn/99999999999999999999999", "is not a whole number"),
            ("/conn/1?x=1", "this page takes no query parameters"),
            ("/task/1.5", "task id \"1.5\" is not a whole number"),
            ("/task/1?dump=maybe", "dump=\"maybe\": expected 1 or 0"),
            ("/api/history?x", "unknown query parameter"),
            ("/api/events?x=1", "unknown query parameter"),
            ("/api/report?x=1", "unknown query parameter"),
            ("/api/pprof?pid=1", "unknown query parameter \"pid\""),
            ("/api/pprof?conn=abc", "conn=\"abc\": expected an id"),
            ("/api/pprof?conn=", "conn=\"\": expected an id"),
            ("/api/pprof?conn=1&route=%2Fws", "not both"),
            ("/api/pprof?route=", "expected a route label"),
            ("/api/pprof?conn=1&conn=2", "more than once"),
        ];
        for (uri, msg) in cases {
            let r = get(&app, uri).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
            assert!(r.body.contains(msg), "{uri}: {:?} lacks {msg:?}", r.body);
            assert!(r.header("content-type").starts_with("text/plain"));
        }
        // Invalid UTF-8 in a path id: rejected, no panic.
        let r = get(&app, "/conn/%FF").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    });
}

#[test]
fn unknown_ids_and_paths_are_404() {
    run(async {
        let app = router();
        for uri in [
            "/conn/18446744073709551615",
            "/task/18446744073709551615",
            "/task/18446744073709551615?dump=1",
            "/nope",
            "/assets/nope.js",
            "/conn/",
            "/api/pprof?conn=18446744073709551615",
        ] {
            let r = get(&app, uri).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.body);
            assert!(!r.body.is_empty(), "{uri}: a 404 says why");
        }
        let r = get(&app, "/conn/18446744073709551615").await;
        assert!(
            r.body
                .contains("connection 18446744073709551615 is not tracked")
        );
    });
}

#[test]
fn connection_page_shows_tasks_timeline_and_bytes() {
    run(async {
        let (conn, task) = make_orphan("routes/conn-page").await;
        let app = router();
        let r = get(&app, &format!("/conn/{conn}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(&format!("Connection #{conn}")));
        assert!(r.body.contains(r#"<svg class="timeline""#));
        assert!(r.body.contains(r#"class="bar orphan""#), "orphan bar");
        assert!(r.body.contains("socket closed") && r.body.contains("grace over"));
        assert!(r.body.contains(&format!(r#"href="../task/{task}""#)));
        for fact in ["allocated", "freed", "live blocks", "retained"] {
            assert!(r.body.contains(&format!("<dt>{fact}</dt>")), "{fact}");
        }
        assert!(r.body.contains(r#"href="../assets/app.css""#));
        assert!(r.body.contains(r#"class="brand" href="../""#));
    });
}

#[test]
fn task_page_and_dump_on_request_only() {
    run(async {
        let (conn, task) = make_orphan("routes/task-page").await;
        let app = router();
        let r = get(&app, &format!("/task/{task}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(&format!("Task {task}")));
        assert!(r.body.contains(&format!(r#"href="../conn/{conn}""#)));
        assert!(r.body.contains("common/mod.rs"), "spawn location");
        assert!(
            !r.body.contains(r#"id="dump-text""#),
            "no dump unless asked"
        );

        // A link takes no dump (any site could make a browser fetch it): the page says so.
        let r = get(&app, &format!("/task/{task}?dump=1")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(!r.body.contains(r#"id="dump-text""#), "{}", r.body);
        if cfg!(feature = "taskdump") {
            assert!(r.body.contains(r#"id="dump-by-link""#), "{}", r.body);
            assert!(
                r.body
                    .contains(r#"<form method="post" action="?dump=1#dump">"#),
                "{}",
                r.body
            );
        }

        // The button's POST, from the page itself or from a tool that sends no origin.
        let uri = format!("/task/{task}?dump=1");
        let asked = [
            request(&app, Method::POST, &uri, &[]).await,
            request(
                &app,
                Method::POST,
                &uri,
                &[("sec-fetch-site", "same-origin")],
            )
            .await,
        ];
        for r in asked {
            if cfg!(feature = "taskdump") {
                // This test runtime is idle: the dump is safe and finds the parked task.
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                assert!(r.body.contains(r#"id="dump-text""#), "{}", r.body);
            } else {
                assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{}", r.body);
                assert!(
                    r.body
                        .contains("Task dumps are not available in this build")
                );
            }
        }
    });
}

#[test]
fn json_metrics_report_health_and_assets() {
    run(async {
        let (conn, _) = make_orphan("routes/json").await;
        let app = router();

        let r = get(&app, "/api/snapshot").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), "application/json");
        let snap: leakscope::Snapshot = serde_json::from_str(&r.body).expect("snapshot JSON");
        assert!(snap.connection(conn).is_some_and(|c| c.orphan_tasks == 1));

        let r = get(&app, "/metrics").await;
        assert!(
            r.header("content-type")
                .starts_with("text/plain; version=0.0.4")
        );
        assert!(r.body.contains("# TYPE leakscope_orphan_tasks gauge"));
        for line in [
            "# TYPE leakscope_shared_tasks gauge",
            "# TYPE leakscope_routes_leaking gauge",
            "# TYPE leakscope_connections_leaking gauge",
            "# TYPE leakscope_tasks_ended_total counter",
        ] {
            assert!(r.body.contains(line), "{line}");
        }
        assert!(metric(&r.body, "leakscope_connections_leaking").is_some_and(|n| n >= 1));

        let r = get(&app, "/api/report").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.header("content-disposition")
                .starts_with("attachment; filename=\"leakscope-report-")
        );
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("report JSON");
        for key in ["snapshot", "history", "config", "build", "generated_at_ms"] {
            assert!(v.get(key).is_some(), "report lacks {key}");
        }
        assert_eq!(v["build"]["leakscope_enabled"], true);
        assert_eq!(v["config"]["grace_ms"], 50);
        assert!(
            v["snapshot"]["connections"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        );

        let r = get(&app, "/health").await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok\n"));

        for (name, ty) in [
            ("app.css", "text/css"),
            ("app.js", "text/javascript"),
            ("uPlot.iife.min.js", "text/javascript"),
            ("uPlot.min.css", "text/css"),
        ] {
            let r = get(&app, &format!("/assets/{name}")).await;
            assert_eq!(r.status, StatusCode::OK, "{name}");
            assert!(r.header("content-type").starts_with(ty), "{name}");
            assert!(r.body.len() > 500, "{name} is embedded");
        }
    });
}

#[test]
fn report_as_html_and_saving_it_without_a_path() {
    run(async {
        make_orphan("routes/report-html").await;
        let app = router();
        let r = get(&app, "/api/report?format=html").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("content-type").starts_with("text/html"));
        assert!(
            r.header("content-disposition")
                .starts_with("attachment; filename=\"leakscope-report-")
                && r.header("content-disposition").ends_with(".html\"")
        );
        assert!(
            r.body
                .contains("<script type=\"application/json\" id=\"report\">")
        );
        assert!(r.body.contains("routes/report-html"));
        let r = get(&app, "/api/report?format=json").await;
        assert_eq!(r.header("content-type"), "application/json");
        let r = get(&app, "/api/report?format=pdf").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("expected json or html"), "{}", r.body);

        // This test binary configures no report path: a clear 409, in JSON.
        let r = request(&app, Method::POST, "/api/report/save", &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.header("content-type"), "application/json");
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        let msg = v["error"].as_str().expect("an error message");
        assert!(
            msg.contains("no report path configured") && msg.contains("LEAKSCOPE_REPORT"),
            "{msg}"
        );
    });
}
