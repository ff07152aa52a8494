//! The WebDriver side of the browser test: finding Chromium, chromedriver's lifetime, and
//! waits and reads on the page (every wait polls a condition against a deadline).

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use fantoccini::{Client, Locator};

/// How long any one condition may take on a loaded 2-core machine before it is a failure.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// `name`'s path: `$env` if set, else the first match on `PATH`.
pub(crate) fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Kills chromedriver and removes the browser profile, also when the test fails.
pub(crate) struct Driver {
    pub(crate) child: Child,
    pub(crate) profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after [`DEADLINE`].
pub(crate) async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timed out after {DEADLINE:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn count(client: &Client, css: &str) -> Result<usize, String> {
    client
        .find_all(Locator::Css(css))
        .await
        .map(|v| v.len())
        .map_err(|e| format!("find {css}: {e}"))
}

pub(crate) async fn script(client: &Client, js: &str) -> Result<serde_json::Value, String> {
    client
        .execute(js, vec![])
        .await
        .map_err(|e| format!("script {js:?}: {e}"))
}

/// The text of the first element matching `css`.
pub(crate) async fn text_of(client: &Client, css: &str) -> Result<String, String> {
    let el = client
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("find {css}: {e}"))?;
    el.text().await.map_err(|e| format!("text of {css}: {e}"))
}

/// Fails unless the first element matching `css` has a red background.
pub(crate) async fn assert_red(client: &Client, css: &str) -> Result<(), String> {
    let js = format!("return getComputedStyle(document.querySelector('{css}')).backgroundColor;");
    let bg = script(client, &js).await?;
    let rgb: Vec<u32> = bg
        .as_str()
        .unwrap_or("")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    assert!(
        rgb.len() == 3 && rgb[0] > rgb[1] + 16 && rgb[0] > rgb[2] + 16,
        "{css} is not red: {bg}"
    );
    Ok(())
}

/// The body text of the current page.
pub(crate) async fn body_text(client: &Client) -> Result<String, String> {
    let v = script(
        client,
        "return document.body ? document.body.innerText : '';",
    )
    .await?;
    Ok(v.as_str().unwrap_or("").to_owned())
}
