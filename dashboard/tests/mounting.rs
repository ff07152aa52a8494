//! Where the dashboard is mounted: a token guards every route, every URL is relative under a
//! prefix, and a request on a tracked connection forgets that connection.

mod common;

use axum::Router;
use axum::http::{Method, StatusCode};
use common::*;
use leakscope_dashboard::{RouterOptions, router, router_with};

#[test]
fn a_token_guards_every_route() {
    run(async {
        let (conn, task) = make_orphan("routes/token").await;
        let app = router_with(RouterOptions::new().bearer_token("s3cret tok"));
        for uri in [
            "/",
            "/health",
            "/api/snapshot",
            "/api/events",
            "/metrics",
            "/assets/app.js",
            "/nope",
        ] {
            let r = get(&app, uri).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
            assert_eq!(r.header("www-authenticate"), "Bearer realm=\"leakscope\"");
            assert!(r.body.contains("LEAKSCOPE_DASHBOARD_TOKEN"));
            let r = request(&app, Method::GET, uri, &[("authorization", "Bearer wrong")]).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
            let r = get(&app, &format!("{uri}?token=wrong")).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        }
        let r = request(
            &app,
            Method::GET,
            "/health",
            &[("authorization", "Bearer s3cret tok")],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = request(
            &app,
            Method::GET,
            "/health",
            &[("authorization", "bearer s3cret tok")],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "the scheme is case-insensitive");

        // A page opened with ?token= carries it on to its links, assets and live stream.
        let r = get(&app, "/?token=s3cret+tok").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body
                .contains(r#"data-events="api/events?token=s3cret+tok""#)
        );
        assert!(r.body.contains(r#"href="assets/app.css?token=s3cret+tok""#));
        assert!(
            r.body
                .contains(&format!(r#"href="conn/{conn}?token=s3cret+tok""#))
        );
        assert!(
            r.body
                .contains(r#"<input type="hidden" name="token" value="s3cret tok">"#)
        );
        let r = get(&app, &format!("/conn/{conn}?token=s3cret%20tok")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(r#"href="../?token=s3cret+tok""#));
        // The task page's button posts with the token too.
        let r = get(&app, &format!("/task/{task}?token=s3cret+tok")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if cfg!(feature = "taskdump") {
            let form = r#"<form method="post" action="?dump=1&#38;token=s3cret+tok#dump">"#;
            assert!(r.body.contains(form), "{}", r.body);
            let uri = format!("/task/{task}?dump=1&token=s3cret+tok");
            let headers = [("sec-fetch-site", "same-origin")];
            let r = request(&app, Method::POST, &uri, &headers).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains(r#"id="dump-text""#), "{}", r.body);
        }
    });
}

#[test]
fn nested_under_a_prefix_every_url_is_relative() {
    run(async {
        let (conn, task) = make_orphan("routes/nested").await;
        let app = Router::new().nest("/_leakscope", router());
        let r = get(&app, "/_leakscope").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(r#"href="_leakscope/assets/app.css""#));
        assert!(r.body.contains(r#"data-events="_leakscope/api/events""#));
        assert!(
            r.body
                .contains(&format!(r#"href="_leakscope/conn/{conn}""#))
        );
        let pages = [
            r.body,
            get(&app, &format!("/_leakscope/conn/{conn}")).await.body,
            get(&app, &format!("/_leakscope/task/{task}")).await.body,
        ];
        assert!(pages[1].contains(r#"href="../assets/app.css""#));
        assert!(pages[1].contains(r#"class="brand" href="../../_leakscope""#));
        for page in &pages {
            for absolute in [
                r#"href="/"#,
                r#"src="/"#,
                r#"action="/"#,
                r#"data-events="/"#,
            ] {
                assert!(
                    !page.contains(absolute),
                    "absolute URL {absolute} in:\n{page}"
                );
            }
        }
        for uri in [
            "/_leakscope/api/snapshot",
            "/_leakscope/health",
            "/_leakscope/assets/app.js",
        ] {
            assert_eq!(get(&app, uri).await.status, StatusCode::OK, "{uri}");
        }
    });
}

#[test]
fn a_request_on_a_tracked_connection_forgets_it() {
    run(async {
        // What leakscope's tracked listener does: the request runs in the connection's scope.
        let conn = leakscope::Connection::open("routes/own-connection", None);
        let id = conn.id().expect("tracked");
        assert!(leakscope::connection_snapshot(id).is_some());
        let app = router();
        let r = conn.scope(get(&app, "/health")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            leakscope::connection_snapshot(id).is_none(),
            "the dashboard's own connection is ignored, even though its handlers run untracked"
        );
    });
}
