//! Where retained bytes were allocated (issue 10): sampled allocations name the user's file and
//! line, on the connection's page (`connection_snapshot`) and in `"bytes"` signatures.

use std::sync::Mutex;
use std::time::Duration;

use leakscope::{SignatureKind, Verdict};
use leakscope_tests::*;

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Keeps 256 buffers of 4 KiB: 1 MiB retained, allocated on the line below.
fn keep_buffers() {
    let mut kept = KEPT.lock().unwrap();
    for _ in 0..256 {
        kept.push(vec![1u8; 4096]); // ALLOCATION SITE
    }
}

#[test]
fn retained_bytes_name_the_line_that_allocated_them() {
    let _ = leakscope::Builder::new()
        .grace(Duration::from_millis(200))
        .sample_bytes(16 * 1024)
        .install();
    let line = include_str!("alloc_sites.rs")
        .lines()
        .position(|l| l.ends_with("// ALLOCATION SITE"))
        .unwrap()
        + 1;
    run(async {
        let conn = leakscope::Connection::open("/keep", None);
        let id = conn.id().unwrap();
        // On a fresh thread: a thread's sampling countdown is drawn at its first allocation,
        // with the interval in force then (this test's 16 KiB, not the default).
        let c = conn.clone();
        std::thread::spawn(move || c.in_scope(keep_buffers))
            .join()
            .unwrap();
        conn.close();
        let c = wait_for("the allocation sites", Duration::from_secs(10), || async {
            let s = leakscope::connection_snapshot(id)?;
            let c = s.connection(id)?.clone();
            (c.leaking_memory && !c.allocation_sites.is_empty()).then_some(c)
        })
        .await;
        let top = &c.allocation_sites[0];
        assert!(
            top.site
                .ends_with(&format!("tests/tests/alloc_sites.rs:{line}")),
            "{:#?}",
            c.allocation_sites
        );
        let est = top.bytes as f64;
        // About 55 samples: the estimate is within a factor 2 far beyond 3 standard deviations.
        assert!(
            est > 1024.0 * 1024.0 * 0.5 && est < 1024.0 * 1024.0 * 2.0,
            "estimated {est} B for 1 MiB"
        );
        let s = leakscope::snapshot();
        let sig = s
            .signatures
            .iter()
            .find(|g| g.kind == SignatureKind::Bytes && g.label == "/keep")
            .expect("a bytes signature");
        assert_eq!(sig.verdict, Verdict::Leak);
        assert!(sig.site.contains("alloc_sites.rs"), "{sig:?}");
        assert!(s.heap.live_samples > 0 && s.heap.sample_bytes == 16 * 1024);
        // The same samples as a pprof heap profile of the connection.
        let profile = leakscope::heap_profile(leakscope::ProfileOf::Connection(id))
            .expect("a tracked connection");
        assert!(profile.len() > 100, "{} bytes", profile.len());
        if let Some(path) = std::env::var_os("LEAKSCOPE_TEST_PPROF") {
            std::fs::write(path, &profile).unwrap();
        }
    });
}
