//! Run with: `cargo run -p leaky-chat -- --load`
//!
//! Serves the chat on `LEAKY_CHAT_ADDR` (default `127.0.0.1:3000`) and the leakscope dashboard
//! on `LEAKSCOPE_DASHBOARD_ADDR` (default `127.0.0.1:6680`).
//!
//! Flags: `--load` drives client connections against every route by itself;
//! `--load-connections N` (default 600) and `--load-every-ms MS` (default 500) bound it.
//!
//! Ctrl-C or SIGTERM stops it gracefully: the chat, then the dashboard, which writes the
//! post-mortem report files when `LEAKSCOPE_REPORT` names a path.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use leaky_chat::{AppState, app, load};

/// Per-connection heap accounting (a pass-through with leakscope's feature off).
#[global_allocator]
static ALLOC: leakscope::TrackingAlloc<std::alloc::System> = leakscope::TrackingAlloc::system();

struct Args {
    load: bool,
    connections: u64,
    every_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        load: false,
        connections: 600,
        every_ms: 500,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{name} {v:?}: expected a whole number"))
        };
        match a.as_str() {
            "--load" => args.load = true,
            "--load-connections" => args.connections = num("--load-connections")?,
            "--load-every-ms" => args.every_ms = num("--load-every-ms")?,
            "-h" | "--help" => {
                println!(
                    "usage: leaky-chat [--load] [--load-connections N] [--load-every-ms MS]\n\
                     env: LEAKY_CHAT_ADDR (127.0.0.1:3000), LEAKSCOPE_DASHBOARD_ADDR \
                     (127.0.0.1:6680), LEAKSCOPE_GRACE_MS (5000), LEAKSCOPE_REPORT (a path: \
                     the report files written at shutdown)\n\
                     stops gracefully on Ctrl-C or SIGTERM"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn init_tracing() {
    #[cfg(feature = "console")]
    if let Err(e) = leakscope::console::init() {
        eprintln!("{e}");
    }
    #[cfg(not(feature = "console"))]
    {
        use tracing_subscriber::prelude::*;
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // leakscope's layer sees a plain spawn_blocking; the filter applies to the log lines
        // only (a global filter would hide tokio's spans from the layer).
        tracing_subscriber::registry()
            .with(leakscope::layer())
            .with(tracing_subscriber::fmt::layer().with_filter(filter))
            .init();
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("leaky-chat: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing();
    let rt = match leakscope::runtime().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("leaky-chat: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leaky-chat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let addr = std::env::var("LEAKY_CHAT_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("LEAKY_CHAT_ADDR={addr:?} is not a socket address"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let dashboard = leakscope_dashboard::serve_from_env()
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        "chat on http://{addr}/  (mode: {})",
        leakscope::mode().as_str()
    );
    match &dashboard {
        Some(d) => tracing::info!("leakscope dashboard on http://{}/", d.addr),
        None => tracing::info!("leakscope is disabled: no dashboard"),
    }
    if args.load {
        tokio::spawn(load::run(load::LoadPlan {
            server: addr,
            connections: args.connections,
            every: Duration::from_millis(args.every_ms),
            messages: 3,
        }));
    }
    let shutdown = async {
        let signal = stop_signal().await;
        tracing::info!("{signal}: shutting down");
    };
    // The chat's state outlives the server until the report is written: the forwarders it
    // leaks wait on its broadcast channel, and dropping it would end them before the report.
    let state = AppState::new();
    axum::serve(
        leakscope::axum::track_listener(listener),
        app(state.clone()),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| e.to_string())?;
    // After the chat stopped: with LEAKSCOPE_REPORT set, the dashboard's shutdown writes the
    // report files (and logs where).
    if let Some(d) = dashboard {
        d.shutdown().await;
    }
    drop(state);
    Ok(())
}

/// Ctrl-C, or (on Unix) SIGTERM: what `kill` and service managers send. Which one came.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return "Ctrl-C",
                    _ = term.recv() => return "SIGTERM",
                }
            }
            Err(e) => tracing::warn!("cannot listen for SIGTERM ({e}); Ctrl-C stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
