//! Above single connections (issue 10): the overview's leak signatures (leaks red and first,
//! shared globals apart) and routes (slow leaks red), a shared task's pages, a connection's
//! allocation sites and `GET /api/pprof`. This binary charges heap bytes to connections.

mod common;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use leakscope::Verdict;
use leakscope_dashboard::router;

#[global_allocator]
static ALLOC: leakscope::TrackingAlloc<std::alloc::System> = leakscope::TrackingAlloc::system();

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A short grace period and a small sampling interval (so a few hundred KiB get samples),
/// installed before anything else in this binary uses leakscope.
fn run_sampled<F: Future>(fut: F) -> F::Output {
    let _ = leakscope::Builder::new()
        .grace(Duration::from_millis(50))
        .sample_bytes(16 * 1024)
        .install();
    run(fut)
}

/// Keeps 128 buffers of 4 KiB (512 KiB), allocated on the line below.
fn keep_buffers() {
    let mut kept = KEPT.lock().unwrap();
    for _ in 0..128 {
        kept.push(vec![1u8; 4096]); // ALLOCATION SITE
    }
}

#[test]
fn overview_shows_signatures_first_and_shared_globals_apart() {
    run_sampled(async {
        let (leak_conn, _) = make_orphan("verdicts/leak").await;
        let (first, task) = make_shared("verdicts/shared").await;
        let app = router();
        let r = get(&app, "/").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let b = &r.body;
        let leak = r#"<tr class="sig leak" data-label="verdicts/leak" data-kind="task">"#;
        let at = b
            .find(leak)
            .unwrap_or_else(|| panic!("no red signature row in:\n{b}"));
        let row = &b[at..at + b[at..].find("</tr>").expect("row end")];
        assert!(
            row.contains("tests/common/mod.rs:"),
            "the spawn site: {row}"
        );
        assert!(row.contains("1 of 1 closed connection"), "{row}");
        assert!(row.contains(&format!(r#"href="conn/{leak_conn}">#{leak_conn}</a>"#)));
        // First: above the orphan table and the connection list.
        assert!(at < b.find(r#"id="orphans""#).unwrap());
        assert!(at < b.find(r#"id="connections""#).unwrap());

        let shared = r#"<tr class="sig shared" data-label="verdicts/shared" data-kind="task">"#;
        let at = b
            .find(shared)
            .unwrap_or_else(|| panic!("no shared row in:\n{b}"));
        assert!(at > b.find(r#"id="shared-globals""#).expect("a section apart"));
        assert!(!b.contains(r#"class="sig leak" data-label="verdicts/shared""#));
        assert!(b.contains(&format!(
            r#"started by connection <a href="conn/{first}">{first}</a>"#
        )));
        assert!(b.contains(r#"data-counter="shared_tasks""#));

        // The shared task's pages: not an orphan, not red.
        let r = get(&app, &format!("/task/{task}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(
            r#"<span class="badge state-shared">shared global (started by this connection)</span>"#
        ));
        assert!(!r.body.contains("state-orphan"), "{}", r.body);
        let r = get(&app, &format!("/conn/{first}")).await;
        assert!(r.body.contains(r#"<tr class="task shared">"#), "{}", r.body);
        assert!(r.body.contains(r#"class="bar shared""#));
        assert!(!r.body.contains(r#"<tr class="task orphan">"#));

        let r = get(&app, "/metrics").await;
        assert!(metric(&r.body, "leakscope_shared_tasks").is_some_and(|n| n >= 1));
        assert!(metric(&r.body, "leakscope_connections_leaking").is_some_and(|n| n >= 1));
        assert!(metric(&r.body, "leakscope_tasks_ended_total").is_some());
    });
}

#[test]
fn a_route_that_keeps_bytes_per_connection_is_a_red_slow_leak() {
    run_sampled(async {
        const LABEL: &str = "verdicts/slow";
        for _ in 0..14 {
            let conn = leakscope::Connection::open(LABEL, None);
            conn.in_scope(|| KEPT.lock().unwrap().push(vec![7u8; 4096]));
            conn.close();
        }
        wait_for("the slow-leak verdict", || {
            let s = leakscope::snapshot();
            s.routes
                .iter()
                .any(|r| r.label == LABEL && r.verdict == Verdict::Leak)
                .then_some(())
        })
        .await;
        let app = router();
        let b = get(&app, "/").await.body;
        let row = r#"<tr class="route leak" data-label="verdicts/slow">"#;
        let at = b
            .find(row)
            .unwrap_or_else(|| panic!("no red route row in:\n{b}"));
        let row = &b[at..at + b[at..].find("</tr>").expect("row end")];
        assert!(row.contains("slow leak: 14 of 14 closed connections still retain "));
        assert!(row.contains(r#"href="api/pprof?route=verdicts%2Fslow" download"#));
        let r = get(&app, "/metrics").await;
        assert!(metric(&r.body, "leakscope_routes_leaking").is_some_and(|n| n >= 1));

        let r = get(&app, "/api/pprof?route=verdicts%2Fslow").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.header("content-disposition"),
            r#"attachment; filename="leakscope-route-verdicts-slow.pb""#
        );
    });
}

#[test]
fn connection_page_names_allocation_sites_and_serves_its_heap_profile() {
    run_sampled(async {
        let line = include_str!("verdicts.rs")
            .lines()
            .position(|l| l.ends_with("// ALLOCATION SITE"))
            .expect("marker")
            + 1;
        let conn = leakscope::Connection::open("verdicts/alloc", None);
        let id = conn.id().expect("tracked");
        // On a fresh thread: its sampling countdown is drawn at its first allocation, with the
        // interval in force then (16 KiB here).
        let c = conn.clone();
        std::thread::spawn(move || c.in_scope(keep_buffers))
            .join()
            .expect("keep_buffers");
        conn.close();
        wait_for("the allocation sites", || {
            let s = leakscope::connection_snapshot(id)?;
            let c = s.connection(id)?;
            (c.leaking_memory && !c.allocation_sites.is_empty()).then_some(())
        })
        .await;
        let app = router();
        let r = get(&app, &format!("/conn/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let b = &r.body;
        let at = b.find(r#"id="allocation-sites""#).expect("the section");
        let section = &b[at..at + b[at..].find("</section>").expect("end")];
        assert!(section.contains(r#"<tr class="site">"#), "{section}");
        assert!(
            section.contains(&format!("dashboard/tests/verdicts.rs:{line}<")),
            "the line that allocated: {section}"
        );
        assert!(section.contains("keep_buffers"), "the function: {section}");
        assert!(section.contains("one per 16.0 KiB allocated"), "{section}");
        assert!(section.contains(&format!(
            r#"href="../api/pprof?conn={id}" id="pprof-link" download"#
        )));

        let r = get(&app, &format!("/api/pprof?conn={id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.header("content-type"), "application/octet-stream");
        assert_eq!(
            r.header("content-disposition"),
            format!(r#"attachment; filename="leakscope-conn-{id}.pb""#)
        );
        assert!(r.body.len() > 100, "{} bytes", r.body.len());
        let r = get(&app, "/api/pprof").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.header("content-disposition"),
            r#"attachment; filename="leakscope-process.pb""#
        );
        assert!(!r.body.is_empty());

        for (uri, msg) in [
            (
                "/api/pprof?conn=18446744073709551615",
                "connection 18446744073709551615 is not tracked",
            ),
            (
                "/api/pprof?route=verdicts%2Fnone",
                "no tracked connection has the route",
            ),
        ] {
            let r = get(&app, uri).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.body);
            assert!(r.body.contains(msg), "{uri}: {}", r.body);
        }
    });
}
