//! What a web page can make a browser do, over real sockets: read a tokenless dashboard through
//! DNS rebinding (only loopback and configured host names are answered, else 421), or send it a
//! request with a side effect (the task dump's POST must come from the dashboard's own pages).

mod common;

use axum::http::StatusCode;
use common::*;
use leakscope_dashboard::{Options, RouterOptions};

#[test]
fn only_loopback_and_configured_host_names_are_answered() {
    run(async {
        let opts = RouterOptions::new()
            .allowed_hosts("Dash.Example.com, box.lan:8080")
            .expect("host names");
        let addr = serve_with_peers(LOOPBACK, app(opts)).await;
        let port = addr.port();
        let ok = [
            format!("localhost:{port}"),
            format!("LOCALHOST.:{port}"),
            "localhost".to_owned(),
            format!("127.0.0.1:{port}"),
            "127.1.2.3".to_owned(),
            format!("[::1]:{port}"),
            "[::ffff:127.0.0.1]".to_owned(),
            "dash.example.COM.".to_owned(),
            "box.lan:8080".to_owned(),
        ];
        for host in &ok {
            let r = http(addr, &get_req("/_leakscope/health", host)).await;
            assert_eq!(r.status, StatusCode::OK, "Host: {host}: {}", r.body);
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "box.lan:8081",
            "192.168.1.2",
            "[::]",
        ] {
            let r = http(addr, &get_req("/_leakscope/health", host)).await;
            assert_eq!(
                r.status,
                StatusCode::MISDIRECTED_REQUEST,
                "Host: {host}: {}",
                r.body
            );
            assert!(r.body.contains("DNS rebinding"), "{}", r.body);
            assert!(
                r.body.contains("dash.example.com, box.lan:8080"),
                "{}",
                r.body
            );
            assert!(r.body.len() < 1024, "a short explanation: {}", r.body);
        }
        for host in ["localhost:0", "a b", "[::1", "localhost:99999"] {
            let r = http(addr, &get_req("/_leakscope/health", host)).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "Host: {host}: {}",
                r.body
            );
        }
        // Two Host headers: both must pass.
        let req =
            "GET /_leakscope/health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n";
        let r = http(addr, req).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{}", r.body);
        // The URI's authority is a host name too (absolute form, as HTTP/2's :authority).
        let req = "GET http://evil.example/_leakscope/health HTTP/1.1\r\nHost: localhost\r\n\r\n";
        assert_eq!(
            http(addr, req).await.status,
            StatusCode::MISDIRECTED_REQUEST
        );
        // No host name at all (HTTP/1.0): no browser sends that, so no rebinding either.
        let r = http(addr, "GET /_leakscope/health HTTP/1.0\r\n\r\n").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    });
}

#[test]
fn the_standalone_server_applies_the_same_host_rule() {
    run(async {
        let opts = Options::default()
            .addr("127.0.0.1:0")
            .allowed_hosts("dash.example.com")
            .expect("a host name");
        let d = leakscope_dashboard::serve(opts)
            .await
            .expect("serve")
            .expect("leakscope is enabled in tests");
        let r = http(d.addr, &get_req("/health", "evil.example")).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{}", r.body);
        let r = http(d.addr, &get_req("/health", "dash.example.com")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = http(d.addr, &get_req("/health", &d.addr.to_string())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        d.shutdown().await;

        let mut bad = Options::default().addr("127.0.0.1:0");
        bad.allowed_hosts = vec!["*.example.com".into()];
        let e = leakscope_dashboard::serve(bad)
            .await
            .expect_err("a wildcard");
        assert!(e.to_string().contains("wildcards are not supported"), "{e}");
    });
}

#[test]
fn a_task_dump_is_a_post_from_the_dashboards_own_page() {
    run(async {
        let (_, task) = make_orphan("security/dump").await;
        let addr = serve_with_peers(LOOPBACK, app(RouterOptions::new())).await;
        let host = addr.to_string();
        // An id no task has: a request the check lets through is answered by the handler
        // (404), without a dump. Real dumps, which stop the runtime, are tested through the
        // router in routes.rs and dump.rs.
        let post = |headers: &str| {
            format!(
                "POST /_leakscope/task/{}?dump=1 HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Length: 0\r\n{headers}\r\n",
                u64::MAX
            )
        };
        // Refused: another site, or a page whose origin is not this dashboard's.
        for h in [
            "Sec-Fetch-Site: cross-site\r\n",
            "Sec-Fetch-Site: same-site\r\n",
            "Sec-Fetch-Site: cross-site\r\nOrigin: http://{host}\r\n",
            "Origin: http://evil.example\r\n",
            "Origin: null\r\n",
            "Origin: garbage\r\n",
        ] {
            let r = http(addr, &post(&h.replace("{host}", &host))).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{h:?}: {}", r.body);
            assert!(r.body.contains("from another site"), "{}", r.body);
            assert!(!r.body.contains("dump-text"));
        }
        // Served: the page's own button, a typed URL, a tool that sends neither header.
        for h in [
            "Sec-Fetch-Site: same-origin\r\n".to_owned(),
            "Sec-Fetch-Site: none\r\n".to_owned(),
            format!("Origin: http://{host}\r\n"),
            String::new(),
        ] {
            let r = http(addr, &post(&h)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{h:?}: {}", r.body);
            assert!(r.body.contains("is not tracked"), "{}", r.body);
        }
        // Any other method with a side effect gets the same check.
        let req = format!(
            "DELETE /_leakscope/health HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: cross-site\r\n\r\n"
        );
        assert_eq!(http(addr, &req).await.status, StatusCode::FORBIDDEN);
        // A link takes no dump, from any site: it shows the page.
        let req = format!(
            "GET /_leakscope/task/{task}?dump=1 HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: cross-site\r\n\r\n"
        );
        let r = http(addr, &req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(!r.body.contains(r#"id="dump-text""#), "{}", r.body);

        // With a token the same-origin rule still holds.
        let app = app(RouterOptions::new().bearer_token("tok"));
        let addr = serve_with_peers(LOOPBACK, app).await;
        let req = |site: &str| {
            format!(
                "POST /_leakscope/task/{}?dump=1&token=tok HTTP/1.1\r\nHost: x\r\n\
                 Sec-Fetch-Site: {site}\r\nContent-Length: 0\r\n\r\n",
                u64::MAX
            )
        };
        assert_eq!(
            http(addr, &req("cross-site")).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            http(addr, &req("same-origin")).await.status,
            StatusCode::NOT_FOUND
        );
    });
}
