//! Child processes and directories a test must not leave behind, even when it fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process, killed (and reaped) when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty directory `leakscope-{name}-{pid}` under the system's temporary directory.
pub(crate) fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("leakscope-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    TempDir(dir)
}

/// Starts `cmd` (stdout piped, stderr inherited) and reads its stdout until `find` picks a
/// value out of a line (an address it announces), within `wait`; its later lines are read and
/// dropped. Panics with `what` when the line does not come in time.
pub(crate) fn spawn_until(
    cmd: &mut Command,
    wait: Duration,
    what: &str,
    find: impl Fn(&str) -> Option<String> + Send + 'static,
) -> (Killed, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child process");
    let stdout = child.stdout.take().expect("stdout");
    let child = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(v) = find(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let found = rx
        .recv_timeout(wait)
        .unwrap_or_else(|_| panic!("{what} within {wait:?}"));
    (child, found)
}
