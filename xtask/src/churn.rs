//! `cargo xtask churn`: the churn benchmark (issue 8). Builds `leaky-chat` and `loadgen` in
//! release, starts `leaky-chat` (no `--load`) on free loopback ports, waits for its dashboard,
//! runs `target/release/churn` against it, and stops the server.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{cargo, dirs};

const HELP: &str = "\
usage: cargo xtask churn [--grace-ms MS] [churn flags...]
  Builds leaky-chat and loadgen (release), starts leaky-chat on free loopback ports, runs
  target/release/churn against it, stops the server; fails when a churn check fails.
  --grace-ms MS   LEAKSCOPE_GRACE_MS for the server (default: its own, 5000 ms)
  churn flags (passed through): --duration S (20), --workers N (32), --abrupt F (0.5),
  --leaky-every-ms MS (200), --leaky-abrupt F (0), --max-connections N,
  --min-closes-per-s R, --quiet. --url, --leakscope and --server-pid are set here.
  Details: target/release/churn --help";

/// Flags churn takes without a value.
const SWITCHES: [&str; 1] = ["--quiet"];
/// Flags this task sets itself.
const MANAGED: [&str; 3] = ["--url", "--leakscope", "--server-pid"];

/// How long the server may take to answer on its dashboard.
const STARTUP: Duration = Duration::from_secs(30);

/// The server process, killed when dropped (also on every error path).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `cargo xtask churn` was asked.
#[derive(Debug, PartialEq)]
struct Plan {
    /// `LEAKSCOPE_GRACE_MS` for the server.
    grace_ms: Option<u64>,
    /// Arguments for `churn`.
    pass: Vec<String>,
}

/// The plan, or `None` for `--help`.
fn parse(rest: &[String]) -> Result<Option<Plan>, String> {
    let (mut grace, mut pass) = (None, Vec::new());
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--grace-ms" => {
                let v = it.next().ok_or("--grace-ms needs a value")?;
                let ms = v
                    .parse()
                    .map_err(|_| format!("--grace-ms {v:?}: expected whole milliseconds"))?;
                grace = Some(ms);
            }
            s if MANAGED.contains(&s) => {
                return Err(format!("{s} is set by `cargo xtask churn` (try --help)"));
            }
            s if SWITCHES.contains(&s) => pass.push(a.clone()),
            s if s.starts_with("--") => {
                let v = it.next().ok_or(format!("{s} needs a value (try --help)"))?;
                pass.push(a.clone());
                pass.push(v.clone());
            }
            other => {
                return Err(format!(
                    "unexpected argument {other:?} (flags look like --name value; try --help)"
                ));
            }
        }
    }
    Ok(Some(Plan {
        grace_ms: grace,
        pass,
    }))
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Whether `GET /health` on `addr` answers 200.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    s.write_all(req.as_bytes()).is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

/// Runs the churn benchmark; `rest` are the arguments after `churn`.
pub(crate) fn churn(rest: &[String]) -> Result<(), String> {
    let Some(Plan { grace_ms, pass }) = parse(rest)? else {
        println!("{HELP}");
        return Ok(());
    };
    let (root, target) = dirs();
    cargo(
        &["build", "--release", "-p", "leaky-chat", "-p", "loadgen"],
        &[],
    )?;
    let (chat, dash) = (free_port()?, free_port()?);
    if chat == dash {
        return Err("got the same free port twice; try again".into());
    }
    let mut cmd = Command::new(target.join("release/leaky-chat"));
    cmd.env("LEAKY_CHAT_ADDR", chat.to_string())
        .env("LEAKSCOPE_DASHBOARD_ADDR", dash.to_string())
        .current_dir(&root);
    if let Some(ms) = grace_ms {
        cmd.env("LEAKSCOPE_GRACE_MS", ms.to_string());
    }
    eprintln!("\n==> leaky-chat on {chat}, dashboard on {dash}");
    let mut server = Server(
        cmd.spawn()
            .map_err(|e| format!("cannot start target/release/leaky-chat: {e}"))?,
    );
    let started = Instant::now();
    while !healthy(dash) {
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(format!("leaky-chat exited before serving ({status})"));
        }
        if started.elapsed() > STARTUP {
            return Err(format!(
                "leaky-chat's dashboard did not answer on {dash} within {} s",
                STARTUP.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new(target.join("release/churn"))
        .arg("--url")
        .arg(format!("ws://{chat}"))
        .arg("--leakscope")
        .arg(dash.to_string())
        .arg("--server-pid")
        .arg(server.0.id().to_string())
        .args(&pass)
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run target/release/churn: {e}"))?;
    if let Ok(Some(s)) = server.0.try_wait() {
        return Err(format!("leaky-chat died during the benchmark ({s})"));
    }
    drop(server);
    if status.success() {
        Ok(())
    } else {
        Err(format!("the churn benchmark failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_pass_through_and_managed_ones_are_refused() {
        let plan = parse(&args(&["--grace-ms", "1000", "--duration", "5", "--quiet"]));
        let want = Plan {
            grace_ms: Some(1000),
            pass: args(&["--duration", "5", "--quiet"]),
        };
        assert_eq!(plan, Ok(Some(want)));
        assert!(parse(&args(&["--help"])).unwrap().is_none());
        assert!(parse(&args(&["--url", "ws://127.0.0.1:1"])).is_err());
        assert!(parse(&args(&["--duration"])).is_err());
        assert!(parse(&args(&["five"])).is_err());
        assert!(parse(&args(&["--grace-ms", "x"])).is_err());
    }
}
