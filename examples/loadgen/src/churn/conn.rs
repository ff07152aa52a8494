//! One client connection: connect, upgrade, one round trip, the ending (close frame or
//! TCP reset).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::ChurnConfig;

/// leaky-chat's correct route.
pub const CLEAN_ROUTE: &str = "/ws";
/// leaky-chat's route that keeps every received message (retained bytes).
pub const BYTES_ROUTE: &str = "/ws/leaky/bytes";
/// leaky-chat's route that leaves one orphan forwarder task per connection.
pub const FORWARDER_ROUTE: &str = "/ws/leaky/forwarder";
/// What each `/ws/leaky/bytes` connection sends (and the server keeps).
pub const LEAKY_BYTES: usize = 96 * 1024;

/// Limit for each step of a connection (connect, handshake, round trip).
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a close-frame ending waits for the server's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a client ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Sends a close frame and waits for the server's.
    CloseFrame,
    /// `SO_LINGER` 0, then drop: the kernel sends RST, no close frame, no FIN.
    Reset,
}

/// The `n`th of a sequence ends abruptly exactly `fraction` of the time (within one, for
/// every prefix): deterministic, so half means half.
pub fn ending_for(n: u64, fraction: f64) -> Ending {
    let before = (n as f64 * fraction).floor();
    let after = ((n + 1) as f64 * fraction).floor();
    if after > before {
        Ending::Reset
    } else {
        Ending::CloseFrame
    }
}

/// Why a connection failed.
pub(super) enum Failure {
    /// No TCP connection.
    Connect(String),
    /// The TCP connection existed, something later failed.
    After(String),
}

async fn step<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within 5 s")),
    }
}

type Ws = WebSocketStream<TcpStream>;

/// Connects and upgrades; returns the socket and its local address.
async fn open(cfg: &ChurnConfig, route: &str) -> Result<(Ws, SocketAddr), Failure> {
    let tcp = step("connect", TcpStream::connect(cfg.server))
        .await
        .map_err(Failure::Connect)?;
    let after = Failure::After;
    let local = tcp.local_addr().map_err(|e| after(e.to_string()))?;
    tcp.set_nodelay(true).map_err(|e| after(e.to_string()))?;
    let url = format!("{}{route}", cfg.base);
    let (ws, _) = step("handshake", tokio_tungstenite::client_async(url, tcp))
        .await
        .map_err(after)?;
    Ok((ws, local))
}

/// Sends `msg` and waits for a message `want` accepts (skipping others).
async fn round_trip(ws: &mut Ws, msg: Message, want: fn(&Message) -> bool) -> Result<(), String> {
    step("send", ws.send(msg)).await?;
    loop {
        match step("reply", async { ws.next().await.transpose() }).await? {
            Some(m) if want(&m) => return Ok(()),
            Some(_) => {}
            None => return Err("reply: the server closed the connection".into()),
        }
    }
}

/// Ends the connection; `Ok(false)` when the server's close frame did not come in time.
async fn finish(mut ws: Ws, ending: Ending) -> Result<bool, String> {
    match ending {
        Ending::Reset => {
            socket2::SockRef::from(ws.get_ref())
                .set_linger(Some(Duration::ZERO))
                .map_err(|e| format!("SO_LINGER: {e}"))?;
            drop(ws);
            Ok(true)
        }
        Ending::CloseFrame => {
            step("close", ws.close(None)).await?;
            // Until the server's close frame (then the stream ends or errors).
            let drained = tokio::time::timeout(CLOSE_TIMEOUT, async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            Ok(drained.is_ok())
        }
    }
}

/// One clean connection: a ping/pong round trip (it goes through the server's WebSocket
/// without touching the chat's broadcast channel, which would otherwise make leaky
/// forwarders lag behind and end by themselves), then the ending.
pub(super) async fn clean_once(cfg: &ChurnConfig, ending: Ending) -> Result<bool, Failure> {
    let (mut ws, _) = open(cfg, CLEAN_ROUTE).await?;
    let ping = Message::Ping(Bytes::from_static(b"churn"));
    round_trip(&mut ws, ping, Message::is_pong)
        .await
        .map_err(Failure::After)?;
    finish(ws, ending).await.map_err(Failure::After)
}

/// One leaky connection: 96 KiB echoed on the bytes route, one chat message on the forwarder
/// route; then the ending. Returns its local address.
pub(super) async fn leaky_once(
    cfg: &ChurnConfig,
    route: &'static str,
    ending: Ending,
) -> Result<(String, bool), Failure> {
    let (mut ws, local) = open(cfg, route).await?;
    let r = if route == BYTES_ROUTE {
        let data = Message::binary(vec![0x5a; LEAKY_BYTES]);
        round_trip(&mut ws, data, |m| m.is_binary() && m.len() == LEAKY_BYTES).await
    } else {
        round_trip(&mut ws, Message::text("churn forwarder"), Message::is_text).await
    };
    r.map_err(Failure::After)?;
    let closed = finish(ws, ending).await.map_err(Failure::After)?;
    Ok((local.to_string(), closed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_follow_the_fraction_exactly() {
        let resets = |f: f64, n: u64| {
            (0..n)
                .filter(|&i| ending_for(i, f) == Ending::Reset)
                .count()
        };
        assert_eq!(resets(0.5, 1000), 500);
        assert_eq!(resets(0.0, 1000), 0);
        assert_eq!(resets(1.0, 1000), 1000);
        assert_eq!(resets(0.25, 1000), 250);
        assert_eq!(ending_for(0, 0.5), Ending::CloseFrame);
        assert_eq!(ending_for(1, 0.5), Ending::Reset);
    }
}
