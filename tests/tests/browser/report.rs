//! The post-mortem report's HTML viewer in a real browser, opened as a file (`file://`, no
//! server): the leaky route's connection is a red row first in the table with its orphan's
//! spawn site, a route name made of markup shows as text and runs nothing, and the page
//! fetched nothing.

use fantoccini::Client;
use serde_json::json;

use super::webdriver::{assert_red, count, script, text_of, wait_until};

/// A route name that would run script if the viewer wrote data as HTML.
const HOSTILE: &str =
    "</script><script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";

/// Writes the report files of this process now and checks the HTML in the browser. `leaky`
/// is a route with an orphan right now.
pub(crate) async fn renders_offline(client: &Client, leaky: &str) -> Result<(), String> {
    // A closed connection under the hostile name (listed, clean, for the retention period).
    let hostile = leakscope::Connection::open(HOSTILE, None);
    hostile.close();
    let dir = std::env::temp_dir().join(format!("leakscope-e2e-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = check(client, leaky, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn check(client: &Client, leaky: &str, dir: &std::path::Path) -> Result<(), String> {
    let files = leakscope_dashboard::write_report(Some(&dir.join("report.json")))
        .map_err(|e| e.to_string())?;
    client
        .goto(&format!("file://{}", files.html.display()))
        .await
        .map_err(|e| format!("open {}: {e}", files.html.display()))?;
    wait_until("the report to render", || async {
        Ok((count(client, "main[data-rendered=\"true\"]").await? > 0).then_some(()))
    })
    .await?;

    let row = format!("tr.conn.leaking[data-label=\"{leaky}\"]");
    assert!(count(client, &row).await? > 0, "a red row for {leaky}");
    assert_red(client, &row).await?;
    let first = script(
        client,
        "var r = document.querySelector('tr.conn'); return r ? r.className : null;",
    )
    .await?;
    assert_eq!(first, json!("conn leaking"), "a leaking row comes first");
    let orphans = text_of(client, "tr.detail li.orphan").await?;
    assert!(
        orphans.contains("spawned at") && orphans.contains(".rs:"),
        "an orphan with its spawn site: {orphans}"
    );
    let sig = format!("tr.sig.leak[data-label=\"{leaky}\"]");
    assert!(count(client, &sig).await? > 0, "the route's leak signature");
    assert_red(client, &sig).await?;

    // The hostile name is a row's text, and nothing of it ran.
    let shown = script(
        client,
        "return Array.from(document.querySelectorAll('tr.conn')).some(function (r) { \
           return r.getAttribute('data-label') === arguments[0]; });"
            .replace("arguments[0]", &json!(HOSTILE).to_string())
            .as_str(),
    )
    .await?;
    assert_eq!(shown, json!(true), "the hostile route is listed as text");
    let pwned = script(
        client,
        "return window.__pwned === undefined ? null : window.__pwned;",
    )
    .await?;
    assert_eq!(pwned, json!(null), "markup in the data ran");
    assert_eq!(
        count(client, "main img").await?,
        0,
        "markup in the data became an element"
    );
    // Offline: the page loaded no resource at all.
    let fetched = script(
        client,
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });",
    )
    .await?;
    assert_eq!(fetched, json!([]), "the viewer fetched something");
    Ok(())
}
