//! What the pages say beyond "red" (issue 11): the fixes page, each leak's likely pattern
//! linked to its section (overview signatures, the task page), and sockets nobody reads: a
//! zombie (its peer left by FIN, unread) and an open socket not read for a while, over real
//! sockets; the zombie gauge of `/metrics`.

mod common;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use leakscope::FixPattern;
use leakscope_dashboard::{RouterOptions, router, router_with};
use tokio::net::{TcpListener, TcpStream};

/// [`run`] with the unread hint after 300 ms (installed before anything else in this binary
/// uses leakscope, so the grace period of `common::init` is set here too).
fn run_hinted<F: std::future::Future>(fut: F) -> F::Output {
    let _ = leakscope::Builder::new()
        .grace(Duration::from_millis(50))
        .unread_hint(Duration::from_millis(300))
        .install();
    run(fut)
}

/// The `<tr ...>` row that starts with `start`, up to its `</tr>`.
fn row<'a>(body: &'a str, start: &str) -> &'a str {
    let at = body
        .find(start)
        .unwrap_or_else(|| panic!("no row {start} in:\n{body}"));
    &body[at..at + body[at..].find("</tr>").expect("row end")]
}

/// The connection table's row of `label`.
fn conn_row(body: &str, label: &str) -> String {
    let table = &body[body.find(r#"id="connections""#).expect("the table")..];
    let attr = format!(r#" data-label="{label}">"#);
    table
        .split(r#"<tr class="conn "#)
        .skip(1)
        .map(|r| &r[..r.find("</tr>").expect("row end")])
        .find(|r| r.lines().next().is_some_and(|l| l.ends_with(&attr)))
        .map(|r| format!(r#"<tr class="conn {r}"#))
        .unwrap_or_else(|| panic!("no connection row {label} in:\n{table}"))
}

#[test]
fn the_fixes_page_has_a_section_per_pattern() {
    run_hinted(async {
        let app = router();
        let r = get(&app, "/fixes").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.header("content-type").starts_with("text/html"));
        assert!(
            r.header("content-security-policy")
                .contains("default-src 'none'")
        );
        for p in FixPattern::ALL {
            let h = format!(r#"<h2 id="{}">"#, p.anchor());
            assert!(r.body.contains(&h), "no {h} in:\n{}", r.body);
        }
        assert!(
            r.body
                .contains(r#"<pre class="code"><code class="language-rust">"#)
        );
        // The code is text: escaped, never markup.
        assert!(r.body.contains("room: broadcast::Sender&lt;String&gt;"));
        assert!(!r.body.contains("Sender<String>"));
        assert!(r.body.contains(r#"href="assets/app.css""#));
        assert!(
            r.body.contains(r#"<a href="fixes">fixes</a>"#),
            "in the nav"
        );

        let r = get(&app, "/fixes?x=1").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("this page takes no query parameters"));

        // Nested, with a token: 401 without it; with it, relative links that carry it on.
        let app = Router::new().nest(
            "/_leakscope",
            router_with(RouterOptions::new().bearer_token("tok")),
        );
        let r = get(&app, "/_leakscope/fixes").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = get(&app, "/_leakscope/fixes?token=tok").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body
                .contains(r#"class="brand" href="../_leakscope?token=tok""#)
        );
        assert!(r.body.contains(r#"href="assets/app.css?token=tok""#));
        assert!(r.body.contains(r#"<h2 id="parked-since-close">"#));
    });
}

#[test]
fn a_leak_links_to_its_fix_from_the_overview_and_the_task_page() {
    run_hinted(async {
        let (_, task) = make_orphan("hints/parked").await;
        let pattern = wait_for("the signature's fix", || {
            let s = leakscope::snapshot();
            let sig = s.signatures.iter().find(|g| g.label == "hints/parked")?;
            Some(sig.fix.as_ref()?.pattern)
        })
        .await;
        assert_eq!(pattern, FixPattern::Parked, "a task parked since the close");
        let app = router_with(RouterOptions::new().bearer_token("tok"));

        let r = get(&app, "/?token=tok").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let sig = row(
            &r.body,
            r#"<tr class="sig-fix leak" data-label="hints/parked""#,
        );
        assert!(sig.contains(FixPattern::Parked.summary()), "{sig}");
        assert!(
            sig.contains(r#"<a class="fix-link" href="fixes?token=tok#parked-since-close">"#),
            "{sig}"
        );

        let r = get(&app, &format!("/task/{task}?token=tok")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let at = r.body.find(r#"<section class="panel" id="fix">"#);
        let fix = &r.body[at.unwrap_or_else(|| panic!("no fix panel in:\n{}", r.body))..];
        assert!(fix.contains(FixPattern::Parked.summary()), "{fix}");
        assert!(fix.contains(r#"href="../fixes?token=tok#parked-since-close""#));
        assert!(fix.contains("From what leakscope counts"), "{fix}");

        // A task that is not an orphan has no hint.
        let (_conn, _, open_task) = make_open("hints/open").await;
        let r = get(&app, &format!("/task/{open_task}?token=tok")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(!r.body.contains(r#"id="fix""#), "{}", r.body);
    });
}

/// Tracks `socket` as connection `label` and moves it into a task of that connection that
/// never reads it; returns the connection's id.
fn hold(socket: TcpStream, label: &str) -> u64 {
    let peer = socket.peer_addr().expect("peer").to_string();
    let io = leakscope::io::track(socket, label, Some(peer));
    let conn = io.connection().clone();
    conn.in_scope(|| {
        tokio::spawn(async move {
            let _held = io;
            std::future::pending::<()>().await;
        })
    });
    conn.id().expect("tracked")
}

#[test]
fn a_zombie_and_an_unread_socket_show_their_badges() {
    run_hinted(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let leaving = TcpStream::connect(addr).await.expect("connect");
        let zombie = hold(listener.accept().await.expect("accept").0, "hints/zombie");
        let staying = TcpStream::connect(addr).await.expect("connect");
        let unread = hold(listener.accept().await.expect("accept").0, "hints/unread");
        drop(leaving); // a FIN nobody reads
        let conn = |id: u64| leakscope::snapshot().connection(id).cloned();
        wait_for("the zombie", || conn(zombie).filter(|c| c.zombie)).await;
        wait_for("the not-read hint", || {
            conn(unread).filter(|c| c.not_read_for_ms.is_some())
        })
        .await;
        let app = router();

        let r = get(&app, "/?label=hints%2F").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let z = conn_row(&r.body, "hints/zombie");
        assert!(z.contains(r#"<span class="badge zombie""#), "{z}");
        assert!(z.contains(">zombie: peer left ") && z.contains(" ago, never read</span>"));
        assert!(z.contains("<td>peer left, never read</td>") && !z.contains("badge unread"));
        let u = conn_row(&r.body, "hints/unread");
        assert!(u.contains(r#"<tr class="conn open""#), "{u}");
        assert!(u.contains(r#"<span class="badge unread""#), "{u}");
        assert!(
            u.contains(">not read for ") && !u.contains("badge zombie"),
            "{u}"
        );

        let r = get(&app, &format!("/conn/{zombie}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body
                .contains(r#"<span class="badge zombie" id="zombie-badge">zombie: peer left "#)
        );
        assert!(r.body.contains(r#"id="zombie-note""#) && !r.body.contains("unread-badge"));
        let r = get(&app, &format!("/conn/{unread}")).await;
        assert!(
            r.body
                .contains(r#"<span class="badge unread" id="unread-badge">not read for "#)
        );
        assert!(r.body.contains("<dt>last read</dt>") && !r.body.contains("zombie-badge"));

        let r = get(&app, "/metrics").await;
        assert!(r.body.contains("# TYPE leakscope_zombie_connections gauge"));
        assert!(metric(&r.body, "leakscope_zombie_connections").is_some_and(|n| n >= 1));
        // The JSON carries the fields as they are.
        let r = get(&app, "/api/snapshot").await;
        let s: leakscope::Snapshot = serde_json::from_str(&r.body).expect("snapshot JSON");
        let c = s.connection(zombie).expect("listed");
        assert!(c.zombie && c.zombie_since_ms.is_some());
        assert_eq!(c.close_reason.as_deref(), Some("peer left, never read"));
        assert!(
            s.connection(unread)
                .is_some_and(|c| c.not_read_for_ms >= Some(300))
        );
        drop(staying);
    });
}
