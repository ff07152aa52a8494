//! The churn benchmark (issue 8, "Trustworthy verdicts under churn"): against a running
//! `leaky-chat`, open and close clean `/ws` connections as fast as the box allows (a fraction
//! ended by a TCP reset) while leaky ones are mixed in, wait out the grace period, then check
//! leakscope's snapshot: every leaky connection flagged, no clean one, totals exact.
//!
//! Run with `cargo xtask churn`, or by hand against `leaky-chat` (without `--load`):
//! `cargo run --release -p loadgen --bin churn -- --url ws://127.0.0.1:3000 --leakscope 127.0.0.1:6680`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use loadgen::args::Args;
use loadgen::churn::{self, ChurnConfig, output};
use loadgen::verdict::{self, Snap};
use loadgen::{probe, report};

const HELP: &str = "\
usage: churn [flags]   (against a running leaky-chat, loopback only)
  --url ws://HOST:PORT      the chat's base URL; routes are appended (ws://127.0.0.1:3000)
  --leakscope HOST:PORT[/prefix]  its leakscope dashboard (127.0.0.1:6680)
  --duration S              seconds of load (20)
  --workers N               concurrent clean-connection loops (32)
  --abrupt FRACTION         clean connections ended by TCP RST instead of a close frame (0.5)
  --leaky-every-ms MS       one /ws/leaky/bytes (96 KiB) and one /ws/leaky/forwarder
                            connection per interval (200)
  --leaky-abrupt FRACTION   leaky connections ended by TCP RST (0: close frame)
  --max-connections N       at most N clean connections (1000000)
  --min-closes-per-s R      also fail below R clean closes/s (0: report only)
  --server-pid PID          print the server's RSS before and after
  --quiet                   no progress line
Exits 0 when every check holds, 1 when one fails, 2 on bad flags. The last line of output
is one JSON object with every figure.";

struct Opts {
    cfg: ChurnConfig,
    scope: (SocketAddr, String),
    pid: Option<u32>,
    min_rate: f64,
}

fn loopback_addr(s: &str, what: &str) -> Result<SocketAddr, String> {
    let addr = std::net::ToSocketAddrs::to_socket_addrs(s)
        .map_err(|e| format!("{what} {s:?}: {e}"))?
        .next()
        .ok_or(format!("{what} {s:?}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{what} {s:?}: only this machine is allowed (127.0.0.0/8, localhost, [::1])"
        ));
    }
    Ok(addr)
}

fn parse() -> Result<Opts, String> {
    let mut a = Args::parse(std::env::args().skip(1), &["quiet", "help"])?;
    if a.switch("help") {
        println!("{HELP}");
        std::process::exit(0);
    }
    let url = a.string("url").unwrap_or("ws://127.0.0.1:3000".into());
    let base = url.trim_end_matches('/').to_owned();
    let hostport = base
        .strip_prefix("ws://")
        .ok_or(format!("--url {url:?} must start with ws://"))?;
    if hostport.contains('/') {
        return Err(format!(
            "--url {url:?}: give the server's base (ws://HOST:PORT); the routes {}, {} and {} \
             are appended",
            churn::CLEAN_ROUTE,
            churn::BYTES_ROUTE,
            churn::FORWARDER_ROUTE
        ));
    }
    if !report::is_loopback_url(&base) {
        return Err(format!(
            "--url {url:?}: load is only sent to this machine (127.0.0.0/8, localhost, [::1])"
        ));
    }
    let server = loopback_addr(hostport, "--url")?;
    let scope = a.string("leakscope").unwrap_or("127.0.0.1:6680".into());
    let (dash, prefix) = scope
        .split_once('/')
        .map_or((scope.as_str(), String::new()), |(a, p)| {
            (a, format!("/{p}"))
        });
    let dash = loopback_addr(dash, "--leakscope")?;
    let secs: u64 = a.get("duration", 20, "whole seconds")?;
    let workers: usize = a.get("workers", 32, "a whole number of workers")?;
    let abrupt: f64 = a.get("abrupt", 0.5, "a fraction between 0 and 1")?;
    let leaky_abrupt: f64 = a.get("leaky-abrupt", 0.0, "a fraction between 0 and 1")?;
    let every_ms: u64 = a.get("leaky-every-ms", 200, "whole milliseconds")?;
    let max_connections = a.get("max-connections", 1_000_000, "a whole number")?;
    let min_rate: f64 = a.get("min-closes-per-s", 0.0, "closes per second")?;
    let pid = a.pid()?;
    let quiet = a.switch("quiet");
    a.finish()?;
    if !(1..=3600).contains(&secs) {
        return Err(format!("--duration {secs}: between 1 and 3600 seconds"));
    }
    if !(1..=4096).contains(&workers) {
        return Err(format!("--workers {workers}: between 1 and 4096"));
    }
    for (name, f) in [("abrupt", abrupt), ("leaky-abrupt", leaky_abrupt)] {
        if !(0.0..=1.0).contains(&f) {
            return Err(format!("--{name} {f}: a fraction between 0 and 1"));
        }
    }
    if !(10..=60_000).contains(&every_ms) {
        return Err(format!("--leaky-every-ms {every_ms}: between 10 and 60000"));
    }
    if max_connections == 0 || !min_rate.is_finite() || min_rate < 0.0 {
        return Err("--max-connections must be > 0, --min-closes-per-s >= 0".into());
    }
    let cfg = ChurnConfig {
        server,
        base,
        duration: Duration::from_secs(secs),
        workers,
        abrupt,
        leaky_abrupt,
        leaky_every: Duration::from_millis(every_ms),
        max_connections,
        progress: !quiet,
    };
    Ok(Opts {
        cfg,
        scope: (dash, prefix),
        pid,
        min_rate,
    })
}

async fn snapshot(scope: &(SocketAddr, String)) -> Result<Snap, String> {
    let body = probe::http_get(scope.0, &format!("{}/api/snapshot", scope.1))
        .await
        .map_err(|e| format!("leakscope at {}: {e}", scope.0))?;
    verdict::parse(&body)
}

#[tokio::main]
async fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("churn: {e} (try --help)");
            return ExitCode::from(2);
        }
    };
    match run(o).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("churn: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(o: Opts) -> Result<bool, String> {
    let before = snapshot(&o.scope).await?;
    if before.mode == "disabled" {
        return Err("leakscope is disabled in the server: nothing to check".into());
    }
    let rss0 = o.pid.and_then(probe::rss);
    let c = &o.cfg;
    println!(
        "churn: {} workers, {} s, abrupt {}, leaky pair every {} ms against {} \
         (leakscope {}, mode {}, grace {} ms, threshold {})",
        c.workers,
        c.duration.as_secs(),
        c.abrupt,
        c.leaky_every.as_millis(),
        c.base,
        o.scope.0,
        before.mode,
        before.grace_ms,
        report::bytes(before.threshold as i64)
    );
    let r = churn::run(o.cfg.clone()).await;
    output::load(&r);
    let wait = Duration::from_millis(before.grace_ms) + Duration::from_secs(2);
    println!("waiting {:.1} s (grace + 2 s)", wait.as_secs_f64());
    tokio::time::sleep(wait).await;
    let after = snapshot(&o.scope).await?;
    let rss1 = o.pid.and_then(probe::rss);
    let t = &r.tally;
    let f = verdict::figures(&before, &after, t.tcp_connects, &r.leaky);
    let mut checks = verdict::checks(&f, t.errors + t.connect_errors);
    let (clean_rate, _) = r.rates();
    if o.min_rate > 0.0 {
        checks.push(verdict::Check {
            name: "clean closes/s",
            ok: clean_rate >= o.min_rate,
            detail: format!("{clean_rate:.0} (at least {})", o.min_rate),
        });
    }
    let run = output::Run {
        cfg: &o.cfg,
        result: &r,
        before: &before,
        figures: &f,
        checks: &checks,
        rss_before: rss0,
        rss_after: rss1,
    };
    Ok(output::verdict(&run))
}
