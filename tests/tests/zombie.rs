//! Sockets nobody reads, on real sockets: a handler moves its WebSocket into a task that never
//! reads it, and the client leaves by FIN or by RST. Behind the tracked listener (leakscope
//! holds the TCP socket) the connection becomes a zombie and its task an orphan; without it
//! (only the WebSocket wrapper), the open connection gets a "not read for N s" hint.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use leakscope::ConnState;
use leakscope::axum::{WebSocket, WebSocketUpgrade};
use leakscope_tests::*;

const GRACE: Duration = Duration::from_millis(300);
const UNREAD_HINT: Duration = Duration::from_millis(800);
const KEEPALIVE: Duration = Duration::from_secs(45);
/// How long a wait may take on a loaded CI box before it is a failure.
const DEADLINE: Duration = Duration::from_secs(10);

fn setup() {
    let _ = leakscope::Builder::new()
        .grace(GRACE)
        .unread_hint(UNREAD_HINT)
        .tcp_keepalive(Some(KEEPALIVE))
        .install();
}

/// The handler that holds its socket in a task that never reads it (`leakscope::spawn`, so the
/// task is seen in explicit-spawn mode too).
async fn hold(socket: WebSocket) {
    leakscope::spawn(async move {
        let _held = socket;
        std::future::pending::<()>().await;
    });
}

fn app() -> Router {
    Router::new().route(
        "/ws/hold",
        get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(hold) }),
    )
}

/// The client leaves (by `leave`); the connection must become a zombie and its task an orphan
/// within grace + 1 s.
async fn zombie_after(leave: fn(Client)) -> leakscope::ConnectionInfo {
    let addr = serve(app()).await;
    let c = Client::connect(addr, "/ws/hold").await;
    let peer = c.peer();
    wait_for("the handler's task", DEADLINE, || async {
        conn_by_peer(&peer).filter(|c| c.live_tasks >= 1)
    })
    .await;
    let left = Instant::now();
    let left_ms = leakscope_now_ms();
    leave(c);
    let conn = wait_for("a zombie with its orphan", DEADLINE, || async {
        conn_by_peer(&peer).filter(|c| c.zombie && c.orphan_tasks >= 1)
    })
    .await;
    let took = left.elapsed();
    assert!(
        took < GRACE + Duration::from_secs(1),
        "zombie orphan found {took:?} after the peer left, want < grace + 1 s"
    );
    assert_eq!(conn.state, ConnState::Closed);
    assert_eq!(conn.close_reason.as_deref(), Some("peer left, never read"));
    let since = conn.zombie_since_ms.expect("zombie_since_ms");
    assert!(
        since + 50 >= left_ms,
        "zombie since {since}, peer left {left_ms}"
    );
    assert_eq!(conn.closed_at_ms, Some(since));
    assert!(leakscope::summary(0).totals.zombie_connections >= 1);
    conn
}

/// Now on leakscope's clock (the snapshot's `taken_at_ms`).
fn leakscope_now_ms() -> u64 {
    leakscope::summary(0).taken_at_ms
}

#[test]
fn a_socket_held_unread_is_a_zombie_after_the_peers_fin() {
    setup();
    run(async {
        zombie_after(Client::drop_tcp).await;
    });
}

#[test]
fn a_socket_held_unread_is_a_zombie_after_the_peers_rst() {
    setup();
    run(async {
        zombie_after(Client::reset).await;
    });
}

#[test]
fn a_socket_that_is_read_is_never_a_zombie() {
    setup();
    run(async {
        let echo_app = Router::new().route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
        );
        let addr = serve(echo_app).await;
        let mut c = Client::connect(addr, "/ws").await;
        c.round_trip("hi").await;
        let peer = c.peer();
        c.drop_tcp();
        let conn = wait_for("the echo connection to close", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.state == ConnState::Closed)
        })
        .await;
        assert!(!conn.zombie, "{conn:?}");
        assert_ne!(conn.close_reason.as_deref(), Some("peer left, never read"));
    });
}

#[test]
fn without_the_listener_an_unread_socket_gets_a_hint() {
    setup();
    run(async {
        let addr = serve_plain(app()).await;
        let c = Client::connect(addr, "/ws/hold").await;
        let peer = c.peer();
        let start = Instant::now();
        let conn = wait_for("the not-read hint", DEADLINE, || async {
            conn_by_peer(&peer).filter(|c| c.not_read_for_ms.is_some())
        })
        .await;
        assert!(start.elapsed() + Duration::from_millis(50) >= UNREAD_HINT);
        assert_eq!(conn.state, ConnState::Open);
        assert!(!conn.zombie);
        assert!(conn.not_read_for_ms.unwrap() >= UNREAD_HINT.as_millis() as u64);
        drop(c);
    });
}

#[test]
fn a_reader_waiting_on_an_idle_socket_gets_no_hint() {
    setup();
    run(async {
        let echo_app = Router::new().route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
        );
        let addr = serve_plain(echo_app).await;
        let mut c = Client::connect(addr, "/ws").await;
        c.round_trip("hi").await;
        let peer = c.peer();
        // Idle for twice the hint's time, with the server's reader parked in `recv`.
        let until = Instant::now() + 2 * UNREAD_HINT;
        while Instant::now() < until {
            let conn = conn_by_peer(&peer).expect("tracked");
            assert_eq!(conn.not_read_for_ms, None, "{conn:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.close().await;
    });
}

#[test]
fn tracked_tcp_sockets_get_the_configured_keepalive() {
    setup();
    run(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = connect_unique(addr).await;
        let (server, peer) = listener.accept().await.unwrap();
        let plain = socket2::SockRef::from(&server).keepalive().unwrap();
        assert!(!plain, "keepalive is off on a fresh socket");
        let tracked = leakscope::io::track(server, "keepalive", Some(peer.to_string()));
        let sock = socket2::SockRef::from(tracked.get_ref());
        assert!(sock.keepalive().unwrap(), "SO_KEEPALIVE set");
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE);
        drop(client);
    });
}
