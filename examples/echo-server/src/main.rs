//! Run with: `cargo run --release -p echo-server --features leak-detect`
//!
//! The benchmark server of `cargo xtask bench`: a WebSocket echo on `ECHO_ADDR` (default
//! `127.0.0.1:0`; the bound address is printed as `listening on ADDR`) with two routes:
//! `/echo` (clean) and `/echo/leaky` (each connection also starts a heartbeat with plain
//! `tokio::spawn` that never stops: one orphan task per closed connection). `ECHO_WORKERS`
//! sets the runtime's worker threads (default 1). The same source builds without leakscope
//! (no feature), with leakscope off (`with-leakscope`), on (`leak-detect`), and with
//! console-subscriber (`console`), so the variants differ only in what is measured.
//! The `#[cfg]`s below exist only to build the no-dependency baseline.

use std::time::Duration;

use axum::Router;
use axum::extract::ws::Message;
use axum::response::Response;
use axum::routing::get;

#[cfg(not(feature = "with-leakscope"))]
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
#[cfg(feature = "with-leakscope")]
use leakscope::axum::{WebSocket, WebSocketUpgrade};

#[cfg(feature = "with-leakscope")]
#[global_allocator]
static ALLOC: leakscope::TrackingAlloc<std::alloc::System> = leakscope::TrackingAlloc::system();

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let echo = matches!(msg, Message::Binary(_) | Message::Text(_));
        if matches!(msg, Message::Close(_)) || (echo && socket.send(msg).await.is_err()) {
            break;
        }
    }
}

async fn clean(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo)
}

async fn leaky(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|socket| async move {
        // BUG (on purpose): a heartbeat nobody stops.
        tokio::spawn(async {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            loop {
                iv.tick().await;
            }
        });
        echo(socket).await
    })
}

fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    #[cfg(feature = "with-leakscope")]
    let mut b = leakscope::runtime();
    #[cfg(not(feature = "with-leakscope"))]
    let mut b = {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.enable_all();
        b
    };
    b.worker_threads(workers).build()
}

fn main() {
    // With leakscope, its console setup keeps console-subscriber's own records off the
    // connections' heap accounts; without, console-subscriber as its README shows it.
    #[cfg(all(feature = "console", feature = "with-leakscope"))]
    if let Err(e) = leakscope::console::init() {
        eprintln!("echo-server: {e}");
    }
    #[cfg(all(feature = "console", not(feature = "with-leakscope")))]
    {
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry()
            .with(console_subscriber::spawn())
            .init();
    }
    let workers = match std::env::var("ECHO_WORKERS") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("echo-server: ECHO_WORKERS={v:?} is not a number; using 1");
            1
        }),
        Err(_) => 1,
    };
    let rt = runtime(workers).unwrap_or_else(|e| {
        eprintln!("echo-server: cannot start the runtime: {e}");
        std::process::exit(1)
    });
    rt.block_on(async {
        let addr = std::env::var("ECHO_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| {
                eprintln!("echo-server: cannot bind {addr}: {e}");
                std::process::exit(1)
            });
        let app = Router::new()
            .route("/echo", get(clean))
            .route("/echo/leaky", get(leaky));
        #[cfg(feature = "with-leakscope")]
        let app = app.nest("/_leakscope", leakscope_dashboard::router());
        println!("listening on {}", listener.local_addr().unwrap());
        // With the peer's address in every build (the dashboard serves loopback peers only
        // without a token), so the variants still differ only in what is measured.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        // Ctrl-C (SIGINT) stops it gracefully: `cargo xtask bench --icount` reads callgrind's
        // total at the exit.
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .unwrap();
    });
}
