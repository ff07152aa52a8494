//! Helpers for the dashboard's router tests. leakscope's collector is process-wide, so each
//! test creates its own connections with unique labels and asserts only on those.

#![allow(dead_code)] // Each test binary uses a different subset.

pub(crate) mod process;
pub(crate) mod prom;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// How long a test waits for something that should happen within about a second.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// Sets a short grace period (first call in the process wins).
pub(crate) fn init() {
    let _ = leakscope::Builder::new()
        .grace(Duration::from_millis(50))
        .install();
}

/// Runs `fut` on a runtime with leakscope's hooks, so plain `tokio::spawn` is tracked.
pub(crate) fn run<F: Future>(fut: F) -> F::Output {
    init();
    let rt = leakscope::runtime()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let out = rt.block_on(fut);
    // A task dump can leave a worker parked at tokio's dump barrier (tokio #7478): a plain drop
    // would wait for it forever. Give the workers 5 s, then let the test end.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    out
}

/// A response, with its body read to the end.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The peer these router tests claim: a loopback client, as
/// `into_make_service_with_connect_info::<SocketAddr>()` would tell the router. The peer and
/// host-name rules themselves are tested over real sockets in `security.rs`.
pub(crate) fn loopback_peer() -> ConnectInfo<SocketAddr> {
    ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000)))
}

/// Sends one request through `app`, from a loopback peer.
pub(crate) async fn request(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).expect("request");
    req.extensions_mut().insert(loopback_peer());
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = tokio::time::timeout(DEADLINE, res.into_body().collect())
        .await
        .expect("body within the deadline")
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET uri`.
pub(crate) async fn get(app: &Router, uri: &str) -> Reply {
    request(app, Method::GET, uri, &[]).await
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after [`DEADLINE`].
pub(crate) async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a connection labelled `label`, spawns one task in it that never ends, closes the
/// connection, and waits until that task is an orphan. Returns `(conn id, task id)`.
pub(crate) async fn make_orphan(label: &str) -> (u64, u64) {
    let conn = leakscope::Connection::open(label, Some("127.0.0.1:9".to_owned()));
    let id = conn.id().expect("tracked");
    conn.scope(async {
        tokio::spawn(std::future::pending::<()>());
    })
    .await;
    conn.close();
    wait_for("an orphan task", || {
        let s = leakscope::snapshot();
        s.tasks_of(id).find(|t| t.orphan).map(|t| (id, t.id))
    })
    .await
}

/// Opens a connection labelled `label` with one task that never ends; the connection stays
/// open while the returned handle lives. Returns `(handle, conn id, task id)`.
pub(crate) async fn make_open(label: &str) -> (leakscope::Connection, u64, u64) {
    let conn = leakscope::Connection::open(label, None);
    let id = conn.id().expect("tracked");
    conn.scope(async {
        tokio::spawn(std::future::pending::<()>());
    })
    .await;
    let task = wait_for("the task to be tracked", || {
        leakscope::snapshot().tasks_of(id).next().map(|t| t.id)
    })
    .await;
    (conn, id, task)
}

/// Opens four connections labelled `label`: the first starts a task that never ends (what a
/// library's lazily started global does), the other three close without leaking. Waits until
/// leakscope judges that task a shared global. Returns `(first conn id, task id)`.
pub(crate) async fn make_shared(label: &str) -> (u64, u64) {
    let mut first = None;
    for i in 0..4 {
        let conn = leakscope::Connection::open(label, None);
        let id = conn.id().expect("tracked");
        conn.scope(async {
            if i == 0 {
                tokio::spawn(std::future::pending::<()>());
            }
        })
        .await;
        conn.close();
        first.get_or_insert(id);
    }
    let first = first.expect("four connections");
    wait_for("a shared global task", || {
        let s = leakscope::snapshot();
        s.tasks_of(first).find(|t| t.shared).map(|t| (first, t.id))
    })
    .await
}

/// The value of the Prometheus sample `name` in `text`.
pub(crate) fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The most a response may hold in these tests (the largest page of a test process is far
/// smaller): more means something echoes or grows without bound.
pub(crate) const MAX_RESPONSE: usize = 4 << 20;

/// Sends raw bytes to `to` over a real socket and reads the answer: to the end (the request
/// should say `Connection: close`), or only its head for a live stream. `None` when the server
/// closed the connection without answering (what hyper does with some malformed requests).
pub(crate) async fn http_raw(to: SocketAddr, request: &[u8]) -> Option<Reply> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut s = tokio::net::TcpStream::connect(to).await.expect("connect");
        // The server may answer and close before it read everything (a 431): not an error.
        let _ = s.write_all(request).await;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            assert!(
                buf.len() <= MAX_RESPONSE,
                "a response over {MAX_RESPONSE} bytes"
            );
            if let Some(r) = parse_reply(&buf, false)
                && r.header("content-type") == "text/event-stream"
            {
                return buf;
            }
        }
        buf
    };
    let buf = tokio::time::timeout(DEADLINE, io)
        .await
        .expect("an answer within the deadline");
    parse_reply(&buf, true)
}

/// `request` (a head ending in a blank line; `Connection: close` is added) to `to`.
pub(crate) async fn http(to: SocketAddr, request: &str) -> Reply {
    let request = request.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    http_raw(to, request.as_bytes())
        .await
        .unwrap_or_else(|| panic!("no answer to {request:?}"))
}

/// Parses an HTTP/1.x response; with `complete`, the body is what follows the head (decoded
/// when chunked), else `None` until the head is complete.
fn parse_reply(raw: &[u8], complete: bool) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let code: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for l in lines {
        let (k, v) = l.split_once(':').expect("a header line");
        headers.append(
            axum::http::HeaderName::from_bytes(k.trim().as_bytes()).expect("a header name"),
            v.trim().parse().expect("a header value"),
        );
    }
    let mut body = raw[end + 4..].to_vec();
    if complete
        && headers
            .get("transfer-encoding")
            .is_some_and(|v| v == "chunked")
    {
        body = dechunk(&body);
    }
    Some(Reply {
        status: StatusCode::from_u16(code).expect("a status"),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol]).expect("a chunk size");
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .expect("a hex chunk size");
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Serves `app` on `addr` with the peer's address (`ConnectInfo<SocketAddr>`); returns the
/// bound address. The server runs until the test's runtime shuts down.
pub(crate) async fn serve_with_peers(addr: SocketAddr, app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let bound = listener.local_addr().expect("addr");
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    bound
}

/// An app that nests the dashboard and also says which peer it saw.
pub(crate) fn app(opts: leakscope_dashboard::RouterOptions) -> Router {
    Router::new()
        .route(
            "/peer",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.to_string()
            }),
        )
        .nest("/_leakscope", leakscope_dashboard::router_with(opts))
}

/// `GET path` naming `host`.
pub(crate) fn get_req(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// Every interface, any port.
pub(crate) const ANY: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
/// 127.0.0.1, any port.
pub(crate) const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
