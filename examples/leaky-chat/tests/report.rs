//! The demo's post-mortem report, end to end: the real `leaky-chat` binary with
//! `LEAKSCOPE_REPORT`, a real WebSocket client leaving an orphan on the leaky forwarder route,
//! the live dashboard showing it, then SIGTERM (a graceful stop); the report files it leaves
//! behind name the leak, and the HTML viewer embeds exactly the JSON and refers to nothing
//! outside itself. Every wait has a deadline; the child is killed if the test fails. (With
//! leakscope off there is no dashboard and no report: `tests/disabled.rs`.)

#![cfg(all(unix, feature = "leak-detect"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use leaky_chat::load::{Ending, one_client};
use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_leaky-chat");
const LEAKY: &str = "/ws/leaky/forwarder";
/// Any one wait, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// The demo, killed when dropped (a failing test leaves no process behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The address in the first line of `lines` that contains `what` (`... http://ADDR/...`).
fn address_after(lines: &mpsc::Receiver<String>, what: &str, seen: &mut Vec<String>) -> SocketAddr {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(wait).unwrap_or_else(|_| {
            panic!(
                "the demo never logged {what:?}; it logged:\n{}",
                seen.join("\n")
            )
        });
        seen.push(line.clone());
        if let Some((_, rest)) = line.split_once(what) {
            let addr: String = rest.chars().take_while(|c| *c != '/').collect();
            return addr
                .parse()
                .unwrap_or_else(|_| panic!("an address in {line:?}"));
        }
    }
}

/// `GET path` over HTTP/1.0: the body of a 200.
fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no head")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{path}: {head}"));
    }
    Ok(body.to_owned())
}

/// The leaky route's connection with an orphan, as the live snapshot shows it: its id.
fn leaking_connection(snapshot: &Value) -> Option<u64> {
    snapshot["connections"]
        .as_array()?
        .iter()
        .find(|c| c["label"] == LEAKY && c["orphan_tasks"].as_u64() >= Some(1))
        .and_then(|c| c["id"].as_u64())
}

/// What the `<script type="application/json" id="report">` element holds, and the HTML
/// around it.
fn split_embedded(html: &str) -> (&str, String) {
    let open = "<script type=\"application/json\" id=\"report\">";
    let start = html.find(open).expect("the embedded report") + open.len();
    let len = html[start..].find("</script>").expect("its end");
    let outside = format!("{}{}", &html[..start], &html[start + len..]);
    (&html[start..start + len], outside)
}

/// Every reference to something outside the file: a URL with a scheme or `//` in a `src`,
/// `href`, `srcset`, `action`, `poster`, `data` attribute or a CSS `url(` / `@import`, and any
/// `http(s)://` at all outside the data.
fn external_references(outside: &str) -> Vec<String> {
    let attr = regex::Regex::new(
        r#"(?i)\b(src|href|srcset|action|poster|data|formaction)\s*=\s*["']?\s*([a-z][a-z0-9+.-]*:|//)"#,
    )
    .expect("a regex");
    let css = regex::Regex::new(r#"(?i)(url\(\s*["']?\s*([a-z][a-z0-9+.-]*:|//)|@import)"#)
        .expect("a regex");
    let any = regex::Regex::new(r"(?i)https?://").expect("a regex");
    [attr, css, any]
        .iter()
        .flat_map(|re| re.find_iter(outside).map(|m| m.as_str().to_owned()))
        .collect()
}

#[test]
fn sigterm_leaves_a_report_that_names_the_leak() {
    let dir = std::env::temp_dir().join(format!("leaky-chat-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let dir = TempDir(dir);
    let report = dir.0.join("r.json");

    let mut child = Command::new(EXE)
        .env("LEAKY_CHAT_ADDR", "127.0.0.1:0")
        .env("LEAKSCOPE_DASHBOARD_ADDR", "127.0.0.1:0")
        .env("LEAKSCOPE_REPORT", &report)
        .env("LEAKSCOPE_GRACE_MS", "300")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("LEAKSCOPE_DASHBOARD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut child = Killed(child);
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let chat = address_after(&lines, "chat on http://", &mut seen);
    let dashboard = address_after(&lines, "dashboard on http://", &mut seen);

    // A client that leaves the forwarder's orphan behind.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(one_client(chat, LEAKY, 2, Ending::CloseFrame))
        .expect("a chat client");

    // The live dashboard shows it (grace 300 ms).
    let deadline = Instant::now() + DEADLINE;
    let conn = loop {
        let snap = http_get(dashboard, "/api/snapshot")
            .and_then(|b| serde_json::from_str::<Value>(&b).map_err(|e| e.to_string()));
        if let Some(id) = snap.as_ref().ok().and_then(leaking_connection) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed the orphan of {LEAKY}: {snap:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!report.exists(), "no report before the shutdown");

    // SIGTERM: a graceful stop.
    let pid = child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -TERM {pid}");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop within {DEADLINE:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "the demo exits cleanly on SIGTERM: {status}"
    );
    reader.join().expect("the reader");
    seen.extend(lines.try_iter());
    let log = seen.join("\n");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(
        log.contains("leakscope report written at shutdown"),
        "{log}"
    );

    // The JSON: the leaking connection, its orphan with its spawn site, its signature.
    let json_text = std::fs::read_to_string(&report).expect("r.json");
    let json: Value = serde_json::from_str(&json_text).expect("r.json is JSON");
    let snap = &json["snapshot"];
    assert_eq!(leaking_connection(snap), Some(conn), "{json_text:.2000}");
    // With what it logged (leakscope's layer is in the demo's subscriber).
    let row = snap["connections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == conn))
        .expect("its row");
    assert!(
        row["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["message"] == "joined the room")),
        "its log lines: {row}"
    );
    let orphan = snap["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["conn_id"] == conn && t["orphan"] == true)
        .expect("its orphan task");
    assert!(
        orphan["spawned_at"]
            .as_str()
            .is_some_and(|s| s.contains("chat.rs")),
        "the spawn site: {orphan}"
    );
    assert!(
        snap["signatures"].as_array().is_some_and(|s| s
            .iter()
            .any(|s| s["label"] == LEAKY && s["verdict"] == "leak")),
        "the route's leak signature"
    );
    for key in ["generated_at_ms", "history", "config", "build"] {
        assert!(json.get(key).is_some(), "the report has {key}");
    }
    assert_eq!(json["config"]["grace_ms"], 300);

    // The HTML: the same JSON embedded, nothing outside the file referred to.
    let html = std::fs::read_to_string(dir.0.join("r.html")).expect("r.html");
    let (embedded, outside) = split_embedded(&html);
    let back: Value = serde_json::from_str(embedded).expect("the embedded JSON");
    assert_eq!(back, json, "the HTML embeds exactly the JSON file's report");
    assert!(
        !embedded.contains('<'),
        "no markup can end the data element"
    );
    assert_eq!(external_references(&outside), Vec::<String>::new());
    assert!(outside.contains("Content-Security-Policy"));
    // The regex check itself catches what it must.
    for bad in [
        "<script src=\"https://cdn.example/x.js\">",
        "<link href='//fonts.example/f.css'>",
        "body { background: url( http://x/y.png) }",
        "@import 'theme.css';",
    ] {
        assert!(!external_references(bad).is_empty(), "{bad}");
    }
}
