//! Malformed and hostile requests at every route, from a fixed seed (the same cases every run):
//! paths, queries, headers and bodies, valid and not, small and huge, from loopback and other
//! peers, against routers with and without a token. Never a panic, never a 500, never an answer
//! that grows with what was sent; and the server keeps answering.
//!
//! Two layers: requests built with `http` through the router (every method, header value and
//! peer the router can see), and raw bytes over a real loopback socket (what only hyper's
//! parser sees: broken request lines, control characters, huge and many headers).

mod common;
mod strategies;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use leakscope_dashboard::{RouterOptions, router_with};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use strategies::*;
use tower::ServiceExt;

/// The most an error answer may hold: a message, never an echo of a huge input.
const MAX_ERROR: usize = 2048;

/// A runner with a fixed seed and no failure files.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// Checks one answer: no 500 (a 501 or 503 only from the task dump's POST), a bounded body.
fn check_answer(
    what: &str,
    status: StatusCode,
    content_type: &str,
    body_len: usize,
    dump: bool,
) -> Result<(), TestCaseError> {
    prop_assert!(
        !status.is_server_error()
            || (dump
                && matches!(
                    status,
                    StatusCode::NOT_IMPLEMENTED | StatusCode::SERVICE_UNAVAILABLE
                )),
        "{what}: {status}"
    );
    let max = if status.is_success() {
        MAX_RESPONSE
    } else {
        MAX_ERROR
    };
    prop_assert!(
        body_len <= max,
        "{what}: {status} {content_type} with {body_len} bytes (at most {max})"
    );
    Ok(())
}

#[test]
fn malformed_requests_through_the_router_never_panic_500_or_grow() {
    init();
    let rt = leakscope::runtime()
        .worker_threads(2)
        .build()
        .expect("runtime");
    // Rows to render: an orphan, an open connection with a task.
    rt.block_on(make_orphan("fuzz/<orphan>"));
    let _open = rt.block_on(make_open("fuzz/open"));
    let apps: Vec<Router> = vec![
        router_with(RouterOptions::new()),
        router_with(RouterOptions::new().bearer_token("tok")),
        router_with(
            RouterOptions::new()
                .allow_non_loopback(true)
                .allowed_hosts("evil.example")
                .expect("a host name"),
        ),
    ];
    let case = (
        prop_oneof![3 => Just(0), 1 => 1..apps.len()],
        method(),
        path(),
        query(),
        headers(),
        peer(),
        prop::collection::vec(any::<u8>(), 0..2048),
    );
    let mut runner = runner(1024);
    let result = runner.run(
        &case,
        |(app, method, mut path, query, headers, peer, body)| {
            // A task dump stops the runtime: no real task is asked for one here (dumps have their
            // own tests); a malformed id still reaches the handler.
            if method == Method::POST
                && path.starts_with("/task/")
                && path[6..].parse::<u64>().is_ok()
            {
                path = format!("/task/{}", u64::MAX);
            }
            let uri = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            let mut req = Request::builder().method(method.clone()).uri(&uri);
            for (name, v) in &headers {
                if let Ok(v) = HeaderValue::from_bytes(v) {
                    req = req.header(HeaderName::from_static(name), v);
                }
            }
            // A URI that `http` refuses never reaches a router (hyper answers 400 itself).
            let Ok(mut req) = req.body(Body::from(body)) else {
                return Ok(());
            };
            if let Some(p) = peer {
                req.extensions_mut().insert(ConnectInfo(p));
            }
            let what = format!("{method} {uri:.200} {headers:.300?} from {peer:?}");
            let dump = method == Method::POST && path.starts_with("/task/");
            let app = apps[app].clone();
            rt.block_on(async {
                let res = tokio::time::timeout(DEADLINE, app.oneshot(req))
                    .await
                    .map_err(|_| TestCaseError::fail(format!("{what}: no answer")))?
                    .expect("infallible");
                let status = res.status();
                let head: usize = res
                    .headers()
                    .iter()
                    .map(|(k, v)| k.as_str().len() + v.len())
                    .sum();
                prop_assert!(head <= 4096, "{what}: {head} bytes of headers");
                let ct = res
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                if ct == "text/event-stream" {
                    // A live stream never ends: its head is the answer.
                    return check_answer(&what, status, &ct, 0, dump);
                }
                let body = tokio::time::timeout(DEADLINE, res.into_body().collect())
                    .await
                    .map_err(|_| TestCaseError::fail(format!("{what}: body never ended")))?
                    .expect("body")
                    .to_bytes();
                check_answer(&what, status, &ct, body.len(), dump)
            })
        },
    );
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn raw_bytes_over_a_socket_never_crash_the_server() {
    init();
    let rt = leakscope::runtime()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let addr = rt.block_on(serve_with_peers(LOOPBACK, app(RouterOptions::new())));
    let mut runner = runner(160);
    let result = runner.run(&raw_request(), |bytes| {
        // No task dump for a real task (see the router fuzz above).
        let text = String::from_utf8_lossy(&bytes);
        if let Some(rest) = text.strip_prefix("POST /_leakscope/task/") {
            let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if id.parse::<u64>().is_ok() {
                return Ok(());
            }
        }
        rt.block_on(async {
            let what = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            // The server may close without an answer (a request hyper cannot parse).
            if let Some(r) = http_raw(addr, &bytes).await {
                let dump = what.starts_with("POST /_leakscope/task/");
                check_answer(
                    &what,
                    r.status,
                    r.header("content-type"),
                    r.body.len(),
                    dump,
                )?;
            }
            Ok(())
        })
    });
    // Still serving after all of that.
    let r = rt.block_on(http(addr, &get_req("/_leakscope/health", "localhost")));
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok\n"));
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    if let Err(e) = result {
        panic!("{e}");
    }
}
