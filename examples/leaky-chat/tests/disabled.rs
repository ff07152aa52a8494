//! With leakscope's `enabled` feature off (`--no-default-features`), the same app compiles
//! unchanged, serves real WebSocket traffic, and leakscope does nothing: no dashboard socket,
//! an empty `disabled` snapshot. (With the feature on, this test checks the opposite.)

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_app_serves_traffic_and_leakscope_reports_its_mode() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = leaky_chat::app(leaky_chat::AppState::new());
    tokio::spawn(async move {
        axum::serve(leakscope::axum::track_listener(listener), app)
            .await
            .unwrap()
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/leaky/bytes"))
        .await
        .unwrap();
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ping"));
    ws.close(None).await.unwrap();

    let snap = leakscope::snapshot();
    let mut opts = leakscope_dashboard::Options::default();
    opts.addr = "127.0.0.1:0".into();
    let dashboard = leakscope_dashboard::serve(opts).await.unwrap();
    if cfg!(feature = "leak-detect") {
        assert_ne!(snap.mode, leakscope::Mode::Disabled);
        if let Some(d) = dashboard {
            d.shutdown().await;
        }
    } else {
        assert_eq!(snap.mode, leakscope::Mode::Disabled);
        assert!(snap.connections.is_empty() && snap.tasks.is_empty());
        assert!(
            dashboard.is_none(),
            "the dashboard must not bind when disabled"
        );
    }
}
