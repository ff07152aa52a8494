//! The fleet story with the real thing: two processes (this test binary, started again as
//! children) expose `/metrics` on loopback, a real Prometheus server (Debian's `prometheus`
//! package; its config written here, loopback only) scrapes them every second, and its HTTP
//! API answers fleet-wide PromQL (orphans per route summed over instances) and every query of
//! `docs/grafana/leakscope.json`. Bounded: every wait has a deadline, the processes are killed
//! by drop guards. Without the package the test fails under `CI=true` and prints a SKIPPED
//! line elsewhere.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::process::{Killed, TempDir, spawn_until};
use common::prom::find;
use common::{LOOPBACK, make_open, make_orphan, run, serve_with_peers};
use serde_json::Value;

/// Set in a child: how many orphans it makes before it serves.
const CHILD_ENV: &str = "LEAKSCOPE_PROMETHEUS_FLEET_CHILD";
const ROUTE: &str = "fleet/ws";
/// The whole test, from the first child to the last query.
const BUDGET: Duration = Duration::from_secs(50);

/// The body of each child process: `n` orphans and one open connection on [`ROUTE`], then the
/// dashboard on loopback (its address on stdout) until the parent closes stdin or kills it.
#[test]
#[ignore = "a child process of a_real_prometheus_sums_the_fleet"]
fn fleet_child() {
    let Some(n) = std::env::var(CHILD_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    run(async move {
        for _ in 0..n {
            make_orphan(ROUTE).await;
        }
        let (_open, _, _) = make_open(ROUTE).await;
        let addr = serve_with_peers(LOOPBACK, leakscope_dashboard::router()).await;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "\nLISTENING {addr}");
        let _ = out.flush();
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    });
}

/// Starts this binary as a [`fleet_child`] with `n` orphans; returns it and its address.
fn start_child(n: u32, deadline: Instant) -> (Killed, String) {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["fleet_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, n.to_string())
        .stdin(Stdio::piped());
    spawn_until(
        &mut cmd,
        deadline.saturating_duration_since(Instant::now()),
        "the child process serves /metrics in time",
        |line| line.strip_prefix("LISTENING ").map(str::to_owned),
    )
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `GET path` from `addr`: the status line's code and the body.
fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no head")?;
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    Ok((code.ok_or("no status")?, body.to_owned()))
}

/// An instant query's result vector: (labels, value) per series.
fn query(api: &str, promql: &str) -> Result<Vec<(Value, f64)>, String> {
    let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let (code, body) = http_get(api, &format!("/api/v1/query?query={q}"))?;
    let json: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if code != 200 || json["status"] != "success" {
        return Err(format!("{promql}: {code} {body}"));
    }
    let rows = json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(rows
        .into_iter()
        .map(|r| {
            let v = r["value"][1].as_str().and_then(|v| v.parse().ok());
            (r["metric"].clone(), v.unwrap_or(f64::NAN))
        })
        .collect())
}

/// Polls `check` every 100 ms until it returns `Some`, or panics at `deadline` with the last
/// error and Prometheus's log.
fn wait<T>(
    what: &str,
    deadline: Instant,
    log: &Path,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    loop {
        let last = match check() {
            Ok(v) => return v,
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("timed out waiting for {what}: {last}\nprometheus log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Grafana dashboard's queries with its variables filled in (every instance and route).
fn grafana_queries() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/leakscope.json");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let panels = json["panels"].as_array().expect("panels").iter();
    panels
        .flat_map(|p| p["targets"].as_array().expect("targets").clone())
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("expr")
                .replace("$instance", ".*")
                .replace("$route", ".*")
                .replace("$__rate_interval", "1m")
        })
        .collect()
}

#[test]
fn a_real_prometheus_sums_the_fleet() {
    let Some(prometheus) = find("prometheus", "the real Prometheus fleet test") else {
        return;
    };
    let deadline = Instant::now() + BUDGET;
    let (_a, a) = start_child(2, deadline);
    let (_b, b) = start_child(3, deadline);

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("leakscope-prom-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).expect("temp dir");
    let dir = TempDir(dir);
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: leakscope\n    static_configs:\n      \
             - targets: ['{a}', '{b}']\n"
        ),
    )
    .expect("config");
    let log_path = dir.0.join("prometheus.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let api = format!("127.0.0.1:{}", free_port());
    let _server = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address={api}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );

    wait("both targets scraped", deadline, &log_path, || {
        let rows = query(
            &api,
            &format!("leakscope_route_orphan_tasks{{route=\"{ROUTE}\"}}"),
        )?;
        (rows.len() == 2)
            .then_some(())
            .ok_or(format!("{} of 2 instances so far", rows.len()))
    });
    // Fleet-wide: orphans and open connections per route, summed over the instances.
    let fleet = query(
        &api,
        &format!("sum by (route) (leakscope_route_orphan_tasks{{route=\"{ROUTE}\"}})"),
    )
    .expect("query");
    assert_eq!(fleet.len(), 1, "{fleet:?}");
    assert_eq!(fleet[0].0["route"], ROUTE);
    assert_eq!(fleet[0].1, 5.0, "2 + 3 orphans");
    let open = query(
        &api,
        &format!("sum(leakscope_route_open_connections{{route=\"{ROUTE}\"}})"),
    )
    .expect("query");
    assert_eq!(open[0].1, 2.0, "{open:?}");
    let sites = query(
        &api,
        &format!("sum by (site) (leakscope_signature_orphan_tasks{{route=\"{ROUTE}\"}})"),
    )
    .expect("query");
    assert_eq!(sites.iter().map(|(_, v)| v).sum::<f64>(), 5.0, "{sites:?}");

    // Every panel of the Grafana dashboard runs; all but the rates have data already.
    for q in grafana_queries() {
        let rows = query(&api, &q).unwrap_or_else(|e| panic!("a Grafana query fails: {e}"));
        if !q.contains("rate(") {
            assert!(!rows.is_empty(), "no data for the Grafana query {q}");
        }
    }
    // The alerts' expressions run too (rates over a range need the range, not data).
    let alerts = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/prometheus/alerts.yml"),
    )
    .expect("alerts");
    for expr in alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
    {
        query(&api, expr).unwrap_or_else(|e| panic!("an alert's query fails: {e}"));
    }
    assert!(Instant::now() < deadline, "over the {BUDGET:?} budget");
}
