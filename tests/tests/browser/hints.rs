//! What the browser must see beyond red rows (issue 11): a connection whose peer left while
//! nobody read its socket carries a zombie badge (its overview row and its page), and a leak
//! signature's fix link opens the fixes page at the section of the pattern it names.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use fantoccini::{Client, Locator};
use leakscope::FixPattern;
use leakscope::axum::{WebSocket, WebSocketUpgrade};
use leakscope_tests::{conn_by_peer, hooks_mode, serve, tasks_of};

use super::webdriver::{count, script, text_of, wait_until};

/// The route whose handler holds its socket in a task that never reads it.
const HOLD: &str = "/ws/hold";

/// The handler of `tests/zombie.rs`: the socket goes to a task that never reads it.
async fn hold(socket: WebSocket) {
    tokio::spawn(async move {
        let _held = socket;
        std::future::pending::<()>().await;
    });
}

/// Serves [`HOLD`] behind the tracked listener (leakscope holds the TCP socket, so it sees the
/// peer leave), connects, waits until the handler holds the socket, and leaves by FIN without
/// a close frame. Returns the client's address (the connection's peer).
pub(crate) async fn leave_a_zombie() -> Result<String, String> {
    let app = Router::new().route(
        HOLD,
        get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(hold) }),
    );
    let server = serve(app).await;
    let c = leakscope_tests::Client::connect(server, HOLD).await;
    let peer = c.peer();
    // The socket is in `hold`'s task: nobody reads it from then on. Without the hooks that
    // plain tokio::spawn is not seen (the zombie still is): the connection is then enough.
    wait_until("the handler to hold its socket", || async {
        let Some(c) = conn_by_peer(&peer) else {
            return Ok(None);
        };
        let held = tasks_of(c.id)
            .iter()
            .any(|t| t.spawned_at.contains("browser/hints.rs"));
        Ok((held || !hooks_mode()).then_some(()))
    })
    .await?;
    c.drop_tcp();
    Ok(peer)
}

/// The zombie's badge on its row of the overview (reloaded until it is there: the table is as
/// of page load), then on its connection page, reached through the row's link.
pub(crate) async fn zombie_badges(
    client: &Client,
    dashboard: SocketAddr,
    peer: &str,
) -> Result<(), String> {
    let row = format!("tr.conn[data-label=\"{HOLD}\"]");
    let badge = format!("{row} .badge.zombie");
    wait_until("the zombie badge on the overview", || async {
        client
            .goto(&format!("http://{dashboard}/?label=%2Fws%2Fhold"))
            .await
            .map_err(|e| format!("open the overview: {e}"))?;
        Ok((count(client, &badge).await? > 0).then_some(()))
    })
    .await?;
    let text = text_of(client, &badge).await?;
    assert!(
        text.starts_with("zombie: peer left ") && text.ends_with(" ago, never read"),
        "zombie badge: {text}"
    );
    let row_text = text_of(client, &row).await?;
    assert!(
        row_text.contains(peer) && row_text.contains("peer left, never read"),
        "zombie row: {row_text}"
    );
    let link = client
        .find(Locator::Css(&format!("{row} td a")))
        .await
        .map_err(|e| format!("the zombie row's link: {e}"))?;
    link.click()
        .await
        .map_err(|e| format!("open the zombie's page: {e}"))?;
    wait_until("the connection page's zombie badge", || async {
        Ok((count(client, "#zombie-badge").await? > 0).then_some(()))
    })
    .await?;
    let text = text_of(client, "#zombie-badge").await?;
    assert!(text.starts_with("zombie: peer left "), "page badge: {text}");
    Ok(())
}

/// `label`'s leak signature names a pattern (its summary, word for word) and links to its
/// section; the link opens the fixes page with that section as the target, in view.
pub(crate) async fn fix_link_opens_its_section(
    client: &Client,
    dashboard: SocketAddr,
    label: &str,
) -> Result<(), String> {
    client
        .goto(&format!("http://{dashboard}/"))
        .await
        .map_err(|e| format!("open the overview: {e}"))?;
    let cell = format!("tr.sig-fix.leak[data-label=\"{label}\"] td.fix");
    let summary = text_of(client, &format!("{cell} .fix-summary")).await?;
    let link = client
        .find(Locator::Css(&format!("{cell} a.fix-link")))
        .await
        .map_err(|e| format!("the fix link of {label}: {e}"))?;
    let href = link
        .attr("href")
        .await
        .map_err(|e| format!("the fix link's href: {e}"))?
        .ok_or("a fix link without href")?;
    let anchor = href
        .strip_prefix("fixes#")
        .ok_or_else(|| format!("not a relative link to a section: {href}"))?
        .to_owned();
    let pattern = FixPattern::ALL
        .iter()
        .find(|p| p.anchor() == anchor)
        .ok_or_else(|| format!("no pattern has the section {anchor}"))?;
    assert_eq!(summary, pattern.summary(), "the summary of {pattern:?}");
    link.click()
        .await
        .map_err(|e| format!("follow the fix link: {e}"))?;
    let target = wait_until("the fixes page at the section", || async {
        let v = script(
            client,
            "var t = document.querySelector(':target'); \
             return location.pathname.endsWith('/fixes') && t \
               ? [t.tagName, t.id, t.getBoundingClientRect().top, window.innerHeight] : null;",
        )
        .await?;
        Ok((!v.is_null()).then_some(v))
    })
    .await?;
    assert_eq!(
        (target[0].as_str(), target[1].as_str()),
        (Some("H2"), Some(anchor.as_str())),
        "the target: {target}"
    );
    let (top, height) = (target[2].as_f64(), target[3].as_f64());
    assert!(
        top.zip(height).is_some_and(|(t, h)| t >= 0.0 && t < h),
        "the section is not in view: {target}"
    );
    Ok(())
}
