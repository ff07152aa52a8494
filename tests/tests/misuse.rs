//! Misuse gets a clear message, not a panic: a runtime built without leakscope's hooks.
//! (Its own test binary: no runtime with leakscope's hooks exists in it, so the process is in
//! explicit-spawn mode.)

use std::time::Duration;

use leakscope::Mode;

#[test]
fn a_runtime_without_hooks_is_noticed_and_explicit_spawns_still_tag() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = leakscope::Connection::open("no-hooks", None);
        let id = conn.id().unwrap();
        // The scope runs inside a task, as a server's handler would.
        tokio::spawn(conn.scope(async {
            leakscope::spawn_named("explicit", async {}).await.unwrap();
            tokio::spawn(async {}).await.unwrap();
        }))
        .await
        .unwrap();
        let snap = leakscope::snapshot();
        assert_eq!(snap.mode, Mode::ExplicitSpawn);
        // With tokio_unstable the missing hooks are noticed; without, the mode says what it
        // cannot see.
        let expected = if cfg!(tokio_unstable) {
            "without leakscope's hooks"
        } else {
            "plain tokio::spawn"
        };
        assert!(
            snap.warnings.iter().any(|w| w.contains(expected)),
            "{:?}",
            snap.warnings
        );
        let tasks: Vec<_> = snap.tasks.iter().filter(|t| t.conn_id == id).collect();
        assert_eq!(
            tasks.len(),
            1,
            "only the explicit spawn is seen: {tasks:#?}"
        );
        assert_eq!(tasks[0].name, format!("conn={id} explicit"));
    });
}

#[test]
fn configuring_twice_is_an_error_not_a_panic() {
    let _ = leakscope::snapshot(); // starts the collector with defaults
    let err = leakscope::Builder::new()
        .grace(Duration::from_secs(1))
        .install()
        .unwrap_err();
    assert!(err.to_string().contains("already configured"), "{err}");
}

#[test]
fn the_wrappers_work_outside_a_runtime() {
    // A scope is a plain future: any executor can poll it.
    let out = futures_util::FutureExt::now_or_never(leakscope::scope("outside", None, async { 7 }));
    assert_eq!(out, Some(7));
}
