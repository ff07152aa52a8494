//! Server-side render time of the dashboard with 10,000 connections and 100,000 tasks tracked.
//!
//! Run: `cargo bench -p leakscope-dashboard --bench overview`
//!
//! Fills leakscope through a runtime with its hooks (every third connection closed with its
//! ten tasks still alive: about 33,000 orphans), then requests each page through the router
//! (snapshot, filter, render, body) and prints medians. Exits with status 1 if the overview's
//! median exceeds the 200 ms budget.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const CONNECTIONS: usize = 10_000;
const TASKS_PER_CONNECTION: usize = 10;
const CLOSED_EVERY: usize = 3;
const WARMUP: usize = 2;
const ROUNDS: usize = 21;
const BUDGET: Duration = Duration::from_millis(200);
const LABELS: [&str; 4] = [
    "/ws",
    "/ws/leaky/forwarder",
    "/ws/leaky/heartbeat",
    "/ws/leaky/bytes",
];

async fn fill() -> Vec<leakscope::Connection> {
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let peer = format!("10.0.{}.{}:{}", i / 250, i % 250, 40_000 + i % 20_000);
        let conn = leakscope::Connection::open(LABELS[i % LABELS.len()], Some(peer));
        conn.scope(async {
            for _ in 0..TASKS_PER_CONNECTION {
                tokio::spawn(std::future::pending::<()>());
            }
        })
        .await;
        if i % CLOSED_EVERY == 0 {
            conn.close();
        }
        conns.push(conn);
    }
    conns
}

async fn time_get(app: &Router, uri: &str) -> (Duration, usize) {
    let start = Instant::now();
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::OK, "{uri}");
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (start.elapsed(), body.len())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn bench(app: &Router, uri: &str) -> Duration {
    for _ in 0..WARMUP {
        time_get(app, uri).await;
    }
    let mut times = Vec::with_capacity(ROUNDS);
    let mut size = 0;
    for _ in 0..ROUNDS {
        let (t, n) = time_get(app, uri).await;
        times.push(t);
        size = n;
    }
    let (min, max) = (times.iter().min().copied(), times.iter().max().copied());
    let m = median(times);
    println!(
        "{uri:<48} median {:>8.1} ms  (min {:.1}, max {:.1}; {} KiB)",
        ms(m),
        ms(min.unwrap_or_default()),
        ms(max.unwrap_or_default()),
        size / 1024
    );
    m
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    leakscope::Builder::new()
        .grace(Duration::ZERO)
        .max_leaking_connections(CONNECTIONS)
        .install()
        .expect("first configuration in this process");
    let rt = leakscope::runtime()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let over_budget = rt.block_on(async {
        assert_eq!(
            leakscope::mode(),
            leakscope::Mode::Hooks,
            "the bench needs --cfg tokio_unstable (set in .cargo/config.toml)"
        );
        let start = Instant::now();
        let conns = fill().await;
        let s = leakscope::snapshot();
        println!(
            "filled in {:.1} s: {} connections ({} open), {} live tasks, {} orphan tasks",
            start.elapsed().as_secs_f64(),
            s.connections.len(),
            s.totals.open_connections,
            s.totals.live_tasks,
            s.totals.orphan_tasks
        );
        assert_eq!(s.connections.len(), CONNECTIONS);
        assert_eq!(
            s.totals.live_tasks as usize,
            CONNECTIONS * TASKS_PER_CONNECTION
        );

        let mut snaps = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            std::hint::black_box(leakscope::snapshot());
            snaps.push(t.elapsed());
        }
        println!(
            "{:<48} median {:>8.1} ms",
            "leakscope::snapshot() alone",
            ms(median(snaps))
        );

        // A loopback peer, as `into_make_service_with_connect_info` would tell the router.
        let app = leakscope_dashboard::router()
            .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        let overview = bench(&app, "/").await;
        bench(&app, "/?state=leaking&label=forwarder&page=5&per_page=100").await;
        bench(&app, "/?per_page=500&page=20").await;
        let busy = conns[0].id().expect("tracked");
        bench(&app, &format!("/conn/{busy}")).await;
        bench(&app, "/api/history").await;
        bench(&app, "/metrics").await;
        bench(&app, "/api/snapshot").await;
        println!(
            "overview median {:.1} ms; budget {} ms: {}",
            ms(overview),
            BUDGET.as_millis(),
            if overview <= BUDGET {
                "OK"
            } else {
                "OVER BUDGET"
            }
        );
        drop(conns);
        overview > BUDGET
    });
    rt.shutdown_background();
    if over_budget {
        std::process::exit(1);
    }
}
