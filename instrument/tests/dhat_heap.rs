//! leakscope's own heap does not grow with connection churn beyond its configured retention,
//! measured by dhat in testing mode with `TrackingAlloc<dhat::Alloc>` as the global allocator.
//! (One dhat profiler per process: this file holds one test.)

use std::time::Duration;

#[global_allocator]
static ALLOC: leakscope::TrackingAlloc<dhat::Alloc> = leakscope::TrackingAlloc::dhat();

async fn churn(n: usize) {
    for i in 0..n {
        let conn = leakscope::Connection::open("churn", Some(format!("127.0.0.1:{}", i % 60_000)));
        conn.scope(async move {
            // Kept in the connection's ring of log lines (the layer is installed below),
            // forgotten with the connection.
            tracing::info!(cycle = i, "handler started");
            leakscope::spawn_named("work", async {
                tracing::warn!("task ran");
                vec![0u8; 256].len()
            })
            .await
            .unwrap();
            tokio::spawn(async {}).await.unwrap();
        })
        .await;
        conn.close();
    }
    // Wait (with a deadline) for the terminate hooks of the last tasks, which run after their
    // JoinHandles resolve; the snapshot also applies the retention rules.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leakscope::snapshot().totals.live_tasks != 0 {
        assert!(std::time::Instant::now() < deadline, "tasks never ended");
        tokio::task::yield_now().await;
    }
}

#[test]
fn leakscope_heap_stays_flat_over_10_000_connection_cycles() {
    let _profiler = dhat::Profiler::builder().testing().build();
    use tracing_subscriber::prelude::*;
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(leakscope::layer()),
    )
    .unwrap();
    leakscope::Builder::new()
        .grace(Duration::ZERO)
        .retention(Duration::ZERO)
        .max_closed_connections(100)
        .install()
        .unwrap();
    let rt = leakscope::runtime().worker_threads(1).build().unwrap();
    rt.block_on(async {
        churn(2_000).await; // warm up: maps reach their steady capacity
        let before = dhat::HeapStats::get();
        churn(10_000).await;
        let after = dhat::HeapStats::get();
        let snap = leakscope::snapshot();
        assert_eq!(snap.totals.connections_opened, 12_000);
        // The layer does keep the lines (of a connection still open).
        let conn = leakscope::Connection::open("kept", None);
        conn.scope(async { tracing::info!(n = 1, "one line") })
            .await;
        let one = leakscope::connection_snapshot(conn.id().unwrap()).unwrap();
        let e = &one.connections[0].events;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].message.as_str(), e[0].fields.as_str()),
            ("one line", "n=1")
        );
        assert!(snap.connections.len() <= 100, "{}", snap.connections.len());
        let growth = after.curr_bytes as i64 - before.curr_bytes as i64;
        dhat::assert!(
            growth < 64 * 1024,
            "heap grew by {growth} bytes over 10,000 cycles (before {} B, after {} B)",
            before.curr_bytes,
            after.curr_bytes
        );
    });
}
