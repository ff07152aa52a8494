//! Who may read the dashboard, over real sockets: without a token, loopback peers only, nested
//! in an app bound to 0.0.0.0 as well as standalone; a peer the router cannot see, or one behind
//! a proxy, is refused with the ways to fix it.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::Router;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::StatusCode;
use common::*;
use leakscope_dashboard::{RouterOptions, router_with};

/// An address of this machine that is not loopback, if it has one: the source address of a
/// route to a documentation address (a UDP `connect` sends nothing).
fn non_loopback_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("203.0.113.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    let ok = !ip.is_loopback() && !ip.is_unspecified();
    // The address must also take a listener.
    (ok && std::net::TcpListener::bind((ip, 0)).is_ok()).then_some(ip)
}

#[test]
fn nested_in_an_app_bound_to_every_interface_only_loopback_peers_are_served() {
    run(async {
        let Some(ip) = non_loopback_ip() else {
            eprintln!("no non-loopback address here: see the MockConnectInfo test below");
            return;
        };
        // The documented use: an app on 0.0.0.0 with the dashboard nested, no token.
        let port = serve_with_peers(ANY, app(RouterOptions::new()))
            .await
            .port();
        let local = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        let remote = SocketAddr::new(ip, port);
        let r = http(local, &get_req("/_leakscope/health", &local.to_string())).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok\n"));
        let r = http(remote, &get_req("/peer", &remote.to_string())).await;
        assert!(
            r.body.starts_with(&format!("{ip}:")),
            "the app sees {}",
            r.body
        );
        for path in [
            "/_leakscope",
            "/_leakscope/api/snapshot",
            "/_leakscope/health",
        ] {
            let r = http(remote, &get_req(path, &remote.to_string())).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
            assert!(
                r.body.contains(&format!("refusing a request from {ip}")),
                "{}",
                r.body
            );
            assert!(r.body.contains("LEAKSCOPE_DASHBOARD_TOKEN"), "{}", r.body);
            assert!(
                r.body.contains("LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK"),
                "{}",
                r.body
            );
            assert_eq!(r.header("x-content-type-options"), "nosniff");
        }

        // With a token, any peer that presents it.
        let port = serve_with_peers(ANY, app(RouterOptions::new().bearer_token("tok")))
            .await
            .port();
        let remote = SocketAddr::new(ip, port);
        let r = http(remote, &get_req("/_leakscope/health", &remote.to_string())).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let r = http(
            remote,
            &get_req("/_leakscope/health?token=tok", "evil.example"),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "with a token any host name: {}",
            r.body
        );

        // The opt-out serves every peer; the host-name rule still applies.
        let opts = RouterOptions::new()
            .allow_non_loopback(true)
            .allowed_hosts(&ip.to_string())
            .expect("an IP is a host name");
        let port = serve_with_peers(ANY, app(opts)).await.port();
        let remote = SocketAddr::new(ip, port);
        let r = http(remote, &get_req("/_leakscope/health", &remote.to_string())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = http(remote, &get_req("/_leakscope/health", "lan-box.example")).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{}", r.body);
    });
}

#[test]
fn a_non_loopback_peer_from_connect_info_is_refused() {
    run(async {
        // The same rule on a machine without another address: axum's MockConnectInfo stands
        // in for a remote peer. The app is served without connect info, as with MockConnectInfo
        // in an app's own tests (real connect info would win, as for axum's extractor).
        let remote = SocketAddr::new(Ipv4Addr::new(203, 0, 113, 7).into(), 5000);
        let mapped = SocketAddr::new(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped().into(), 1);
        let loopback = SocketAddr::new(Ipv4Addr::new(127, 0, 0, 9).into(), 1);
        for (peer, expected) in [
            (remote, StatusCode::FORBIDDEN),
            (mapped, StatusCode::FORBIDDEN),
            (loopback, StatusCode::OK),
        ] {
            let app = app(RouterOptions::new()).layer(MockConnectInfo(peer));
            let listener = tokio::net::TcpListener::bind(LOOPBACK).await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            let r = http(addr, &get_req("/_leakscope/health", &addr.to_string())).await;
            assert_eq!(r.status, expected, "{peer}: {}", r.body);
            if expected == StatusCode::FORBIDDEN {
                assert!(r.body.contains(&peer.ip().to_string()), "{}", r.body);
            }
        }
    });
}

#[test]
fn ipv4_mapped_loopback_is_loopback_and_other_mapped_addresses_are_not() {
    run(async {
        // A dual-stack [::] listener sees IPv4 clients as ::ffff:a.b.c.d.
        let any6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0);
        let Ok(listener) = std::net::TcpListener::bind(any6) else {
            eprintln!("no IPv6 here: skipped");
            return;
        };
        drop(listener);
        let port = serve_with_peers(any6, app(RouterOptions::new()))
            .await
            .port();
        let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        if tokio::net::TcpStream::connect(v4).await.is_err() {
            eprintln!("this [::] listener takes no IPv4 clients (bindv6only): skipped");
            return;
        }
        let r = http(v4, &get_req("/peer", "localhost")).await;
        assert!(r.body.starts_with("[::ffff:127.0.0.1]:"), "peer {}", r.body);
        let r = http(v4, &get_req("/_leakscope/health", "localhost")).await;
        assert_eq!(r.status, StatusCode::OK, "mapped loopback: {}", r.body);
        let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port);
        let r = http(v6, &get_req("/_leakscope/health", &v6.to_string())).await;
        assert_eq!(r.status, StatusCode::OK, "[::1]: {}", r.body);
        if let Some(ip @ IpAddr::V4(v4ip)) = non_loopback_ip() {
            let remote = SocketAddr::new(ip, port);
            let r = http(remote, &get_req("/peer", "localhost")).await;
            let mapped = v4ip.to_ipv6_mapped().to_string();
            assert!(
                r.body.starts_with(&format!("[{mapped}]:")),
                "peer {}",
                r.body
            );
            let r = http(remote, &get_req("/_leakscope/health", "localhost")).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{mapped}: {}", r.body);
            assert!(r.body.contains(&mapped), "{}", r.body);
        }
    });
}

#[test]
fn a_router_that_cannot_see_the_peer_refuses_and_says_how_to_fix_it() {
    run(async {
        // Served without connect info: the router cannot tell who asks.
        let listener = tokio::net::TcpListener::bind(LOOPBACK).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let blind = Router::new().nest("/_leakscope", router_with(RouterOptions::new()));
        tokio::spawn(async move { axum::serve(listener, blind).await });
        let r = http(addr, &get_req("/_leakscope", &addr.to_string())).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        for fix in [
            "into_make_service_with_connect_info::<std::net::SocketAddr>()",
            "LEAKSCOPE_DASHBOARD_TOKEN",
            "LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK=1",
            ".tap_io(|_| ())",
        ] {
            assert!(r.body.contains(fix), "{fix} missing from {}", r.body);
        }

        // Behind leakscope's tracked listener, the recipe of that answer: tap_io gives axum
        // the peer (leakscope's wrapper itself inserts no connect info).
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind(LOOPBACK).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let listener = leakscope::axum::track_listener(listener).tap_io(|_| ());
        let app = app(RouterOptions::new()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let r = http(addr, &get_req("/_leakscope/health", &addr.to_string())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    });
}

#[test]
fn a_request_forwarded_by_a_proxy_is_not_a_loopback_client() {
    run(async {
        let addr = serve_with_peers(LOOPBACK, app(RouterOptions::new())).await;
        for h in [
            "X-Forwarded-For: 203.0.113.9",
            "Forwarded: for=203.0.113.9",
            "X-Real-IP: 1.2.3.4",
        ] {
            let req = format!("GET /_leakscope/health HTTP/1.1\r\nHost: localhost\r\n{h}\r\n\r\n");
            let r = http(addr, &req).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{h}: {}", r.body);
            assert!(r.body.contains("forwarded by a proxy"), "{}", r.body);
        }
        let opts = RouterOptions::new().bearer_token("tok");
        let addr = serve_with_peers(LOOPBACK, app(opts)).await;
        let req = "GET /_leakscope/health?token=tok HTTP/1.1\r\nHost: dash.example\r\n\
                   X-Forwarded-For: 203.0.113.9\r\n\r\n";
        assert_eq!(
            http(addr, req).await.status,
            StatusCode::OK,
            "a token is enough"
        );
    });
}
