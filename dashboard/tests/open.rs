//! The `leakscope-dashboard` binary: `open REPORT.json` serves a saved report read-only on
//! loopback (the HTML viewer at `/`, the JSON as saved at `/api/report`, 405 for every other
//! method), and refuses what it cannot serve with a clear message and exit status 2.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use axum::http::StatusCode;
use common::process::{Killed, TempDir, spawn_until};
use common::*;

const EXE: &str = env!("CARGO_BIN_EXE_leakscope-dashboard");

fn temp_dir(what: &str) -> TempDir {
    common::process::temp_dir(&format!("open-test-{what}"))
}

/// Runs the binary to its end (within the deadline: these runs never serve).
fn run_to_end(args: &[&str]) -> Output {
    let child = Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{args:?} did not exit within {DEADLINE:?}"))
        .expect("its output")
}

/// Starts `open report` on a free loopback port; returns it and its address.
fn start_open(report: &Path) -> (Killed, std::net::SocketAddr) {
    let mut cmd = Command::new(EXE);
    cmd.args(["open", &report.to_string_lossy(), "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null());
    let (child, addr) = spawn_until(
        &mut cmd,
        DEADLINE,
        "the binary says where it listens",
        |line| {
            let (_, url) = line.split_once(" read-only on http://")?;
            Some(url.trim_end_matches('/').to_owned())
        },
    );
    (child, addr.parse().expect("an address"))
}

#[test]
fn open_serves_a_saved_report_read_only() {
    let dir = temp_dir("serve");
    let report = dir.0.join("saved.json");
    let (conn, _) = run(async { make_orphan("open/</script><script>alert(1)</script>").await });
    leakscope_dashboard::write_report(Some(&report)).expect("a report");
    let saved = std::fs::read_to_string(&report).expect("the report");

    let (_child, addr) = start_open(&report);
    run(async {
        let host = addr.to_string();
        let r = http(addr, &get_req("/", &host)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("content-type").starts_with("text/html"));
        assert!(
            r.header("content-security-policy")
                .contains("default-src 'none'")
        );
        assert!(
            r.body
                .contains("<script type=\"application/json\" id=\"report\">")
        );
        assert!(
            !r.body.contains("alert(1)</script>"),
            "the label is escaped"
        );
        assert_eq!(
            r.body,
            leakscope_dashboard::report_html(&saved).expect("the viewer")
        );

        let r = http(addr, &get_req("/api/report", &host)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.body, saved, "the JSON as saved, byte for byte");
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        assert!(
            v["snapshot"]["connections"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["id"] == conn))
        );

        for method in ["POST", "PUT", "DELETE"] {
            for path in ["/", "/api/report", "/api/report/save"] {
                let req = format!(
                    "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
                );
                let r = http(addr, &req).await;
                assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(r.body.contains("read-only"), "{}", r.body);
            }
        }
        let r = http(addr, &get_req("/api/snapshot", &host)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // A page of another site, through DNS rebinding: refused as by the dashboard.
        let r = http(addr, &get_req("/api/report", "evil.example")).await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    });
}

#[test]
fn open_refuses_what_it_cannot_serve_with_status_2() {
    let dir = temp_dir("refuse");
    let not_json = dir.0.join("not.json");
    std::fs::write(&not_json, "{\"snapshot\": ").expect("write");
    let not_report = dir.0.join("other.json");
    std::fs::write(&not_report, "{\"hello\": 1}").expect("write");
    let missing = dir.0.join("missing.json");
    let ok = dir.0.join("ok.json");
    std::fs::write(&ok, "{\"snapshot\": {}}").expect("write");
    let path = |p: &Path| p.to_string_lossy().into_owned();

    let help = run_to_end(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: leakscope-dashboard open"));

    for (args, says) in [
        (vec![], "missing the command"),
        (vec!["open".to_owned()], "missing the report file"),
        (
            vec!["open".into(), path(&ok), "--port".into(), "1".into()],
            "unknown option \"--port\"",
        ),
        (
            vec!["open".into(), path(&missing)],
            "cannot read the report",
        ),
        (vec!["open".into(), path(&not_json)], "not JSON"),
        (
            vec!["open".into(), path(&not_report)],
            "without a \"snapshot\"",
        ),
        (
            vec![
                "open".into(),
                path(&ok),
                "--addr".into(),
                "0.0.0.0:0".into(),
            ],
            "not a loopback address",
        ),
        (
            vec![
                "open".into(),
                path(&ok),
                "--addr".into(),
                "192.0.2.1:6680".into(),
            ],
            "not a loopback address",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_to_end(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} serves nothing");
    }
    let out = run_to_end(&["open", &path(&missing)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&path(&missing)), "names the file: {stderr}");
}
