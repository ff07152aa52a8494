//! `events_per_connection(0)` turns a connection's log lines off: with `leakscope::layer()`
//! in the subscriber, a connection's events are neither kept nor counted. Its own binary: it
//! installs the global subscriber and the configuration.

use leakscope_tests::run;
use tracing_subscriber::prelude::*;

#[test]
fn zero_lines_per_connection_keeps_none() {
    let _ = leakscope::Builder::new().events_per_connection(0).install();
    let _ = tracing_subscriber::registry()
        .with(leakscope::layer())
        .try_init();
    assert_eq!(leakscope::config().events_per_connection, 0);
    run(async {
        let conn = leakscope::Connection::open("/events/off", None);
        let id = conn.id().unwrap();
        conn.scope(async {
            tracing::info!("one");
            tracing::warn!(n = 2, "two");
        })
        .await;
        let alone = leakscope::connection_snapshot(id).unwrap().connections;
        assert!(alone[0].events.is_empty(), "{:?}", alone[0].events);
        assert_eq!(alone[0].events_dropped, 0);
        conn.close();
    });
}
