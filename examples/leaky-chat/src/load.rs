//! `--load`: open, use and close client connections against the chat's routes, so the
//! dashboard fills without a second terminal. Bounded in count and time; loopback only.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// How `--load` behaves.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The chat server.
    pub server: SocketAddr,
    /// Connections to open in total.
    pub connections: u64,
    /// Pause between two connections.
    pub every: Duration,
    /// Messages each connection sends before closing.
    pub messages: u32,
}

/// How one client connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Sends a close frame.
    CloseFrame,
    /// Drops the TCP connection without a close frame.
    DropTcp,
}

/// Connects to `route`, sends `messages` text messages (reading the echoes where the route
/// echoes), and ends the connection as told.
pub async fn one_client(
    server: SocketAddr,
    route: &str,
    messages: u32,
    ending: Ending,
) -> Result<(), String> {
    let url = format!("ws://{server}{route}");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    if route.ends_with("/zombie") {
        // Nobody reads this socket on the server: leave without a word (a FIN).
        drop(ws);
        return Ok(());
    }
    // The bytes route keeps what it is sent: 24 KiB a message makes each connection retain
    // more than the 64 KiB threshold with the default three messages.
    let pad = if route.ends_with("/bytes") {
        24 * 1024
    } else {
        0
    };
    for i in 0..messages {
        ws.send(Message::text(format!(
            "hello {i} from {route}{}",
            ".".repeat(pad)
        )))
        .await
        .map_err(|e| format!("send: {e}"))?;
        // Every route answers something (echo or broadcast) to a text message.
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(format!("{route}: no reply: {other:?}")),
            Err(_) => return Err(format!("{route}: no reply within 5 s")),
        }
    }
    match ending {
        Ending::CloseFrame => {
            ws.close(None).await.map_err(|e| format!("close: {e}"))?;
            // Drain until the server's close frame arrives (or the stream ends).
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
        Ending::DropTcp => drop(ws),
    }
    Ok(())
}

/// Runs the plan: routes in turn, every fourth connection dropped without a close frame.
pub async fn run(plan: LoadPlan) {
    for n in 0..plan.connections {
        let route = crate::ROUTES[(n % crate::ROUTES.len() as u64) as usize];
        let ending = if n % 4 == 3 {
            Ending::DropTcp
        } else {
            Ending::CloseFrame
        };
        if let Err(e) = one_client(plan.server, route, plan.messages, ending).await {
            tracing::warn!("load client {n}: {e}");
        }
        tokio::time::sleep(plan.every).await;
    }
    tracing::info!("--load finished: {} connections", plan.connections);
}
