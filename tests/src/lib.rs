//! Shared harness for leakscope's end-to-end tests: real servers on port 0, real WebSocket
//! clients, and waits on conditions with deadlines.

use std::future::Future;

/// Every test binary linking this harness charges heap bytes to connections.
#[global_allocator]
static ALLOC: leakscope::TrackingAlloc<std::alloc::System> = leakscope::TrackingAlloc::system();
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket client over a TCP connection whose local address we know (it is the server's
/// `peer`, which identifies the connection in the snapshot).
#[derive(Debug)]
pub struct Client {
    /// The socket.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The client's address = the server's view of the peer.
    pub local: SocketAddr,
}

/// A TCP connection to `server` from a local port no other client of this test process used.
/// Tests find their connection in the snapshot by its peer address, and tests run concurrently:
/// `connect` alone may give two clients the same port towards two different servers (the
/// kernel only keeps the four-tuple unique), which once made a test read another test's
/// connection. `bind` to port 0 gives a port no live socket holds; the ports handed out
/// before are remembered and refused.
pub async fn connect_unique(server: SocketAddr) -> TcpStream {
    static USED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut refused = Vec::new(); // held until a fresh port comes, so the kernel moves on
    for _ in 0..1000 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind a local port");
        let port = socket.local_addr().expect("local addr").port();
        let fresh = {
            let mut used = USED.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = !used.contains(&port);
            if fresh {
                used.push(port);
            }
            fresh
        };
        if fresh {
            return socket.connect(server).await.expect("connect");
        }
        refused.push(socket);
    }
    panic!("no local port unused by this test process after 1000 tries");
}

impl Client {
    /// Connects to `ws://server{route}`.
    pub async fn connect(server: SocketAddr, route: &str) -> Client {
        let tcp = connect_unique(server).await;
        let local = tcp.local_addr().expect("local addr");
        let url = format!("ws://{server}{route}");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket handshake");
        Client { ws, local }
    }

    /// Connects to `route`, makes one round trip, closes with a close frame; returns the peer
    /// string the server recorded.
    pub async fn visit(server: SocketAddr, route: &str) -> String {
        let mut c = Client::connect(server, route).await;
        c.round_trip("hi").await;
        let peer = c.peer();
        c.close().await;
        peer
    }

    /// Sends a text message and waits (≤10 s) for any reply.
    pub async fn round_trip(&mut self, text: &str) -> Message {
        self.ws.send(Message::text(text)).await.expect("send");
        tokio::time::timeout(Duration::from_secs(10), self.ws.next())
            .await
            .expect("reply within 10 s")
            .expect("stream open")
            .expect("no error")
    }

    /// Sends a close frame and waits for the server's (or the end of the stream).
    pub async fn close(mut self) {
        self.ws.close(None).await.expect("close");
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Drops the TCP connection without a close frame (a FIN).
    pub fn drop_tcp(self) {
        drop(self.ws);
    }

    /// Resets the TCP connection (an RST: linger 0, then close), without a close frame.
    pub fn reset(self) {
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            #[allow(deprecated)] // set_linger: the point here is an RST, not a clean close
            tcp.set_linger(Some(Duration::ZERO)).expect("linger 0");
        }
        drop(self.ws);
    }

    /// The peer string the server records for this client.
    pub fn peer(&self) -> String {
        self.local.to_string()
    }
}

/// Serves `app` behind leakscope's tracked listener on `127.0.0.1:0`; returns its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(leakscope::axum::track_listener(listener), app)
            .await
            .expect("serve");
    });
    addr
}

/// Serves `app` with axum's own listener (no leakscope listener wrapper: only the WebSocket
/// wrapper sees the connection) on `127.0.0.1:0`, with the peer address; returns its address.
pub async fn serve_plain(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

/// Answers every text message until the socket closes (a clean handler).
pub async fn echo(mut s: leakscope::axum::WebSocket) {
    use leakscope::axum::Message;
    while let Some(Ok(m)) = s.recv().await {
        if let Message::Text(t) = m
            && s.send(Message::Text(t)).await.is_err()
        {
            break;
        }
    }
}

/// Serves leaky-chat on port 0.
pub async fn serve_chat() -> SocketAddr {
    serve(leaky_chat::app(leaky_chat::AppState::new())).await
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\nsnapshot: {}",
                serde_json::to_string_pretty(&leakscope::snapshot()).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The connection whose peer is `peer`, if tracked.
pub fn conn_by_peer(peer: &str) -> Option<leakscope::ConnectionInfo> {
    leakscope::snapshot()
        .connections
        .into_iter()
        .find(|c| c.peer.as_deref() == Some(peer))
}

/// Every connection whose peer is `peer`.
pub fn conns_by_peer(peer: &str) -> Vec<leakscope::ConnectionInfo> {
    leakscope::snapshot()
        .connections
        .into_iter()
        .filter(|c| c.peer.as_deref() == Some(peer))
        .collect()
}

/// The tasks of connection `id`.
pub fn tasks_of(id: u64) -> Vec<leakscope::TaskInfo> {
    leakscope::snapshot()
        .tasks
        .into_iter()
        .filter(|t| t.conn_id == id)
        .collect()
}

/// Runs `fut` on a fresh multi-thread runtime with leakscope's hooks (2 workers). Tests leak
/// tasks on purpose, blocking ones too: the runtime is shut down without waiting for them
/// (dropping it would wait for a leaked blocking task forever).
pub fn run<F: Future>(fut: F) -> F::Output {
    let rt = leakscope::runtime()
        .worker_threads(2)
        .build()
        .expect("runtime");
    // A failing test panics out of `block_on`: the runtime is shut down the same way before
    // the panic goes on (an unwinding drop would wait for the leaked tasks).
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(fut)));
    rt.shutdown_timeout(Duration::from_millis(500));
    out.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Whether this build sees plain `tokio::spawn` on the runtimes `run` builds (hooks mode). Known
/// at compile time: `leakscope::mode()` says `hooks` only once such a runtime exists, so asking
/// it before `run` would skip a test depending on which test built a runtime first.
pub fn hooks_mode() -> bool {
    cfg!(tokio_unstable)
}

/// Sets the grace period for this test binary (first call wins).
pub fn init(grace: Duration) {
    let _ = leakscope::Builder::new().grace(grace).install();
}
