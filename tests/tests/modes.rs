//! Hooks are per runtime, the mode per process: code that runs where the hooks cannot see it
//! (a `LocalSet`, a second runtime built without them) must neither switch the whole process
//! out of `hooks` mode nor lose the tasks it spawns with `leakscope::spawn` (issue 8, 11).

use std::time::Duration;

use leakscope::{EndedBy, Mode};
use leakscope_tests::*;

const DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn a_localset_does_not_switch_the_process_out_of_hooks_mode() {
    init(Duration::from_millis(300));
    if !cfg!(tokio_unstable) {
        eprintln!("(built without tokio_unstable: there are no hooks to keep; nothing to check)");
        return;
    }
    run(async {
        let conn = leakscope::Connection::open("localset", None);
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                tokio::task::spawn_local(conn.scope(async { tokio::task::yield_now().await }))
                    .await
                    .unwrap()
            })
            .await;
        conn.close();
        assert_eq!(leakscope::mode(), Mode::Hooks);
        let snap = leakscope::snapshot();
        assert!(
            snap.warnings.iter().any(|w| w.contains("LocalSet")),
            "the blind spot is named: {:?}",
            snap.warnings
        );
        // A later connection served in an ordinary task is tracked as before.
        let c2 = leakscope::Connection::open("after", None);
        let id = c2.id().unwrap();
        tokio::spawn(c2.scope(async {
            tokio::spawn(async {}).await.unwrap();
            leakscope::spawn_named("named", async {}).await.unwrap();
        }))
        .await
        .unwrap();
        let tasks = wait_for("both tasks of the later connection", DEADLINE, || async {
            let t = tasks_of(id);
            (t.len() == 2 && t.iter().all(|t| t.ended_by.is_some())).then_some(t)
        })
        .await;
        assert!(tasks.iter().any(|t| t.name == format!("conn={id} named")));
    });
}

#[test]
fn leakscope_spawn_on_a_runtime_without_hooks_is_still_tracked() {
    init(Duration::from_millis(300));
    run(async {
        let plain = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let conn = leakscope::Connection::open("plain-runtime", None);
        let id = conn.id().unwrap();
        let c = conn.clone();
        plain
            .spawn(async move {
                let h = c.in_scope(|| {
                    leakscope::spawn_named("on-plain", async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    })
                });
                h.await.unwrap();
            })
            .await
            .unwrap();
        let t = wait_for("the task on the plain runtime", DEADLINE, || async {
            tasks_of(id).into_iter().find(|t| t.ended_by.is_some())
        })
        .await;
        assert_eq!(t.name, format!("conn={id} on-plain"));
        assert_eq!(t.ended_by, Some(EndedBy::Completed));
        conn.close();
        plain.shutdown_background();
    });
}
