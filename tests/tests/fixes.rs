//! Every pattern of docs/fixes.md, before and after its fix, on real sockets: the "before"
//! handler leaks and its signature names the pattern and the section of the fix; the "after"
//! handler (the fix from the docs, verbatim: `cargo xtask tidy` checks every code block of
//! docs/fixes.md appears here) leaves nothing behind.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use leakscope::axum::{WebSocket, WebSocketUpgrade};
use leakscope::{ConnState, ConnectionInfo, FixPattern, SignatureKind, Verdict};
use leakscope_tests::*;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const GRACE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(20);

fn setup() {
    // Small sampling interval: a 128 KiB block is sampled (so its site is known) for sure.
    let _ = leakscope::Builder::new()
        .grace(GRACE)
        .sample_bytes(4096)
        .install();
}

// ---- Parked on a channel receive -------------------------------------------------------------

async fn chat_before(mut socket: WebSocket, room: broadcast::Sender<String>) {
    let mut rx = room.subscribe();
    tokio::spawn(async move {
        // Forwards the room's messages until the room closes: it never does.
        while let Ok(msg) = rx.recv().await {
            drop(msg);
        }
    });
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn chat_after(mut socket: WebSocket, room: broadcast::Sender<String>) {
    let mut rx = room.subscribe();
    let forwarder = tokio::spawn(async move {
        while let Ok(msg) = rx.recv().await {
            drop(msg);
        }
    });
    // Aborted however this handler ends: the socket closed, or the handler was dropped.
    let _forwarder = AbortOnDrop(forwarder);
    while let Some(Ok(_)) = socket.recv().await {}
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---- Parked on a oneshot or Notify -----------------------------------------------------------

async fn flush_before(mut socket: WebSocket, shutdown: Arc<Notify>) {
    tokio::spawn(async move {
        // Flushes this connection's state when the server shuts down.
        shutdown.notified().await;
    });
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn flush_after(mut socket: WebSocket, shutdown: Arc<Notify>) {
    let closed = CancellationToken::new();
    let token = closed.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.notified() => {}
            _ = token.cancelled() => {}
        }
    });
    // Cancelled when the handler ends.
    let _closed = closed.drop_guard();
    while let Some(Ok(_)) = socket.recv().await {}
}

// ---- A loop that keeps ticking ---------------------------------------------------------------

async fn heartbeat_before(mut socket: WebSocket) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            // Refreshes this connection's presence.
        }
    });
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn heartbeat_after(mut socket: WebSocket) {
    let closed = CancellationToken::new();
    let token = closed.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
        }
    });
    let _closed = closed.drop_guard();
    while let Some(Ok(_)) = socket.recv().await {}
}

// ---- A JoinSet that outlives the connection --------------------------------------------------

static ROOM_TASKS: LazyLock<Mutex<JoinSet<()>>> = LazyLock::new(|| Mutex::new(JoinSet::new()));

async fn lookups_before(mut socket: WebSocket) {
    // The connection's background lookups, in a set the whole server shares.
    ROOM_TASKS
        .lock()
        .unwrap()
        .spawn(std::future::pending::<()>());
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn lookups_after(mut socket: WebSocket) {
    // The connection owns its set: dropping it (or abort_all) aborts every task in it.
    let mut lookups = JoinSet::new();
    lookups.spawn(std::future::pending::<()>());
    while let Some(Ok(_)) = socket.recv().await {}
    lookups.abort_all();
}

// ---- A blocking task on a channel ------------------------------------------------------------

static JOBS: Mutex<Vec<std::sync::mpsc::Sender<u64>>> = Mutex::new(Vec::new());

async fn worker_before(mut socket: WebSocket) {
    let (jobs, rx) = std::sync::mpsc::channel::<u64>();
    // The Sender is kept where the server hands out jobs: recv never returns.
    JOBS.lock().unwrap().push(jobs);
    leakscope::spawn_blocking(move || {
        while let Ok(job) = rx.recv() {
            run_job(job);
        }
    });
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn worker_after(mut socket: WebSocket) {
    let (jobs, rx) = std::sync::mpsc::channel::<u64>();
    leakscope::spawn_blocking(move || {
        while let Ok(job) = rx.recv() {
            run_job(job);
        }
    });
    // The only Sender lives as long as the handler: dropping it ends the worker's recv.
    let _jobs = jobs;
    while let Some(Ok(_)) = socket.recv().await {}
}

/// One job of the blocking worker (its work is beside the point here).
fn run_job(job: u64) {
    std::hint::black_box(job);
}

// ---- Bytes kept in a map ---------------------------------------------------------------------

static SESSIONS: LazyLock<Mutex<HashMap<u64, Vec<u8>>>> = LazyLock::new(Default::default);

async fn session_before(mut socket: WebSocket, id: u64) {
    SESSIONS.lock().unwrap().insert(id, vec![0u8; 128 * 1024]);
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn session_after(mut socket: WebSocket, id: u64) {
    SESSIONS.lock().unwrap().insert(id, vec![0u8; 128 * 1024]);
    // Removed however the handler ends.
    let _session = RemoveOnDrop(id);
    while let Some(Ok(_)) = socket.recv().await {}
}

struct RemoveOnDrop(u64);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        SESSIONS.lock().unwrap().remove(&self.0);
    }
}

// ---- The server and the checks ---------------------------------------------------------------

fn app() -> Router {
    let room = broadcast::channel::<String>(16).0;
    let shutdown = Arc::new(Notify::new());
    let (r1, r2) = (room.clone(), room);
    let (s1, s2) = (shutdown.clone(), shutdown);
    let ids = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (i1, i2) = (ids.clone(), ids);
    let next =
        |ids: &std::sync::atomic::AtomicU64| ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Router::new()
        .route("/chat/before", get(move |ws: WebSocketUpgrade| async move {
            ws.on_upgrade(move |s| chat_before(s, r1))
        }))
        .route("/chat/after", get(move |ws: WebSocketUpgrade| async move {
            ws.on_upgrade(move |s| chat_after(s, r2))
        }))
        .route("/flush/before", get(move |ws: WebSocketUpgrade| async move {
            ws.on_upgrade(move |s| flush_before(s, s1))
        }))
        .route("/flush/after", get(move |ws: WebSocketUpgrade| async move {
            ws.on_upgrade(move |s| flush_after(s, s2))
        }))
        .route("/heartbeat/before", get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(heartbeat_before)
        }))
        .route("/heartbeat/after", get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(heartbeat_after)
        }))
        .route("/lookups/before", get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(lookups_before)
        }))
        .route("/lookups/after", get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(lookups_after)
        }))
        .route("/worker/before", get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(worker_before)
        }))
        .route("/worker/after", get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(worker_after)
        }))
        .route("/session/before", get(move |ws: WebSocketUpgrade| async move {
            let id = next(&i1);
            ws.on_upgrade(move |s| session_before(s, id))
        }))
        .route("/session/after", get(move |ws: WebSocketUpgrade| async move {
            let id = next(&i2);
            ws.on_upgrade(move |s| session_after(s, id))
        }))
}

/// Opens `route`, closes it with a close frame; returns the peer the server recorded.
async fn visit(addr: std::net::SocketAddr, route: &str) -> String {
    let c = Client::connect(addr, route).await;
    let peer = c.peer();
    c.close().await;
    peer
}

/// The connection once it is closed and past its grace period (judged).
async fn judged(peer: &str) -> ConnectionInfo {
    wait_for("the connection to be judged", DEADLINE, || async {
        let s = leakscope::snapshot();
        s.connections.into_iter().find(|c| {
            c.peer.as_deref() == Some(peer)
                && c.state == ConnState::Closed
                && c.closed_at_ms
                    .is_some_and(|t| t + GRACE.as_millis() as u64 + 50 < s.taken_at_ms)
        })
    })
    .await
}

/// `before` leaks with a signature of `kind` naming `pattern`; `after` leaves nothing.
async fn check(name: &str, kind: SignatureKind, pattern: FixPattern) {
    let addr = serve(app()).await;
    let before = visit(addr, &format!("/{name}/before")).await;
    let label = format!("/{name}/before");
    let sig = wait_for("the leak's signature and its fix", DEADLINE, || async {
        leakscope::snapshot()
            .signatures
            .into_iter()
            .find(|s| s.label == label && s.kind == kind && s.verdict == Verdict::Leak)
            .filter(|s| s.fix.is_some())
    })
    .await;
    let fix = sig.fix.clone().unwrap();
    assert_eq!(fix.pattern, pattern, "{name}: {sig:?}");
    assert!(fix.doc.starts_with("docs/fixes.md#"), "{fix:?}");
    let docs = include_str!("../../docs/fixes.md");
    let heading = format!("## {}", pattern.anchor().replace('-', " "));
    assert!(
        docs.to_lowercase().contains(&heading),
        "docs/fixes.md has no section {heading:?}"
    );
    let c = judged(&before).await;
    assert!(
        c.orphan_tasks > 0 || c.leaking_memory,
        "{name} before: {c:?}"
    );

    let after = visit(addr, &format!("/{name}/after")).await;
    let c = judged(&after).await;
    let clean = wait_for("the fixed connection's tasks to end", DEADLINE, || async {
        conn_by_peer(&after).filter(|c| c.live_tasks == 0)
    })
    .await;
    assert_eq!(c.orphan_tasks, 0, "{name} after: {c:?}");
    assert!(!clean.leaking_memory, "{name} after: {clean:?}");
}

macro_rules! pattern_test {
    ($test:ident, $name:literal, $kind:expr, $pattern:expr, needs_hooks: $hooks:literal) => {
        #[test]
        fn $test() {
            setup();
            if $hooks && !hooks_mode() {
                eprintln!("skipped: plain tokio::spawn needs the runtime hooks (tokio_unstable)");
                return;
            }
            run(check($name, $kind, $pattern));
        }
    };
}

pattern_test!(a_forwarder_parked_on_a_channel, "chat", SignatureKind::Task, FixPattern::Parked, needs_hooks: true);
pattern_test!(a_task_parked_on_a_notify, "flush", SignatureKind::Task, FixPattern::Parked, needs_hooks: true);
pattern_test!(a_ticking_heartbeat, "heartbeat", SignatureKind::Task, FixPattern::TickingLoop, needs_hooks: true);
pattern_test!(a_shared_joinset, "lookups", SignatureKind::Task, FixPattern::Parked, needs_hooks: true);
pattern_test!(a_blocking_worker, "worker", SignatureKind::Task, FixPattern::BlockingChannel, needs_hooks: false);
pattern_test!(a_session_map_entry, "session", SignatureKind::Bytes, FixPattern::MapEntry, needs_hooks: false);
