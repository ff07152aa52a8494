//! Run with: `cargo run --release -p loadgen --bin loadgen -- --url ws://127.0.0.1:3000/ws`
//!
//! Flags: `--clients N` (100), `--duration S` (30), `--size BYTES` (1024), `--churn K` (0:
//! never reconnect), `--abrupt FRACTION` (0), `--server-pid PID` (RSS growth), `--leakscope
//! HOST:PORT[/prefix]` (read live tasks, orphans and retained bytes at the end), `--quiet`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use loadgen::args::Args;
use loadgen::load::{self, LoadConfig};
use loadgen::{probe, report};

/// The load, the server's pid, and where leakscope's snapshot is served.
type Parsed = (LoadConfig, Option<u32>, Option<(SocketAddr, String)>);

fn parse() -> Result<Parsed, String> {
    let mut a = Args::parse(std::env::args().skip(1), &["quiet", "help"])?;
    if a.switch("help") {
        println!(
            "usage: loadgen --url ws://HOST:PORT/PATH [--clients N (100)] [--duration S (30)]\n\
             \x20      [--size BYTES (1024)] [--churn K (0: never reconnect)] [--abrupt F (0)]\n\
             \x20      [--server-pid PID (RSS growth)] [--leakscope HOST:PORT[/prefix]] [--quiet]"
        );
        std::process::exit(0);
    }
    let url = a
        .string("url")
        .ok_or("--url ws://127.0.0.1:PORT/PATH is required")?;
    if !report::is_loopback_url(&url) {
        return Err(format!(
            "--url {url:?}: load is only sent to this machine (127.0.0.0/8, localhost, [::1])"
        ));
    }
    let cfg = LoadConfig {
        url,
        clients: a.get("clients", 100, "a whole number of clients")?,
        duration: Duration::from_secs(a.get("duration", 30, "whole seconds")?),
        size: a.get("size", 1024, "a size in bytes")?,
        churn: a.get("churn", 0, "a number of round trips")?,
        abrupt: a.get("abrupt", 0.0, "a fraction between 0 and 1")?,
        progress: !a.switch("quiet"),
    };
    let pid = a.pid()?;
    let scope = a
        .string("leakscope")
        .map(|s| {
            let (addr, prefix) = s
                .split_once('/')
                .map_or((s.as_str(), String::new()), |(a, p)| (a, format!("/{p}")));
            addr.parse::<SocketAddr>()
                .map(|a| (a, prefix))
                .map_err(|_| format!("--leakscope {s:?}: expected HOST:PORT[/prefix]"))
        })
        .transpose()?;
    a.finish()?;
    cfg.validate()?;
    Ok((cfg, pid, scope))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (cfg, pid, scope) = match parse() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let before = pid.and_then(probe::rss);
    eprintln!(
        "loadgen: {} clients, {} B messages, {} s against {}",
        cfg.clients,
        cfg.size,
        cfg.duration.as_secs(),
        cfg.url
    );
    let result = match load::run(cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report::summary(&result));
    if let (Some(pid), Some((rss0, _))) = (pid, before)
        && let Some((rss1, hwm)) = probe::rss(pid)
    {
        println!("{}", report::rss_line(rss0, rss1, hwm));
    }
    if let Some((addr, prefix)) = scope {
        match probe::leaks(addr, &prefix).await {
            Ok(l) => println!(
                "leakscope: {} live tasks, {} orphan tasks, {} retained over {} connections",
                l.live_tasks,
                l.orphan_tasks,
                report::bytes(l.retained_bytes as i64),
                l.connections
            ),
            Err(e) => eprintln!("loadgen: could not read leakscope's snapshot: {e}"),
        }
    }
    ExitCode::SUCCESS
}
