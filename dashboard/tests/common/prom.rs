//! Debian's `prometheus` package for the Prometheus tests: finding its binaries (missing: a
//! failure under `CI=true`, a loud SKIPPED line elsewhere) and running `promtool`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The install command the SKIPPED line and the CI failure name.
pub(crate) const INSTALL: &str = "apt-get install -y prometheus";

/// The path of `name` (`promtool` or `prometheus`; env `PROMTOOL` / `PROMETHEUS` first), or
/// `None` after saying why the test is skipped. Panics under `CI=true` when it is missing.
pub(crate) fn find(name: &str, test: &str) -> Option<PathBuf> {
    let var = name.to_uppercase();
    let found = std::env::var_os(&var)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        let msg = format!("`{name}` not found; install it with `{INSTALL}` (or set {var})");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test} cannot run under CI=true: {msg}");
        }
        // Straight to the stderr handle: the test harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n======== SKIPPED {test}: {msg} ========\n"
        );
    }
    found
}

/// Runs `promtool args...` with `stdin`; panics with its output unless it exits with 0.
pub(crate) fn promtool(promtool: &PathBuf, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    drop(input);
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{text}\ninput:\n{stdin}",
        out.status
    );
    text
}
