//! Run with: `cargo xtask bench` (builds the server variants, then runs this).
//!
//! The leakscope overhead benchmark in the shape of the article's table: the same echo server
//! built as (0) without the leakscope dependency, (a) leakscope off, (b) leakscope on (hooks
//! and tracking allocator), (c) console-subscriber only, (d) leakscope on plus
//! console-subscriber; each with a clean and a leaky handler; interleaved rounds; medians;
//! ratios against (a) measured in the same round, with their range over the rounds. Besides
//! the clients' view (latency, throughput) it reads the server's own CPU time per round trip
//! (`/proc/<pid>/stat`, all its threads).
//!
//! Flags: `--bin-dir DIR` (the variant binaries `echo-server-{none,a,b,c,d}`), `--rounds N`
//! (3), `--duration S` (30), `--clients N` (100), `--size BYTES` (1024), `--churn K` (1000
//! round trips per connection), `--abrupt F` (0.1), `--grace-ms MS` (2000),
//! `--variants none,a,b,c,d`, `--out FILE` (also write the markdown there).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use loadgen::args::Args;
use loadgen::load::{self, LoadConfig};
use loadgen::probe;
use loadgen::report::{self, median, spread};
use tokio::io::{AsyncBufReadExt, BufReader};

const VARIANTS: [(&str, &str, bool); 5] = [
    ("none", "(0) no leakscope dependency", false),
    ("a", "(a) leakscope off", false),
    ("b", "(b) leakscope on", true),
    ("c", "(c) console-subscriber only", false),
    ("d", "(d) leakscope on + console", true),
];
const HANDLERS: [(&str, &str); 2] = [("clean", "/echo"), ("leaky", "/echo/leaky")];

const USAGE: &str = "usage: bench --bin-dir DIR [--rounds N (3)] [--duration S (30)] [--clients N (100)]\n\
             [--size BYTES (1024)] [--churn K (1000)] [--abrupt F (0.1)] [--grace-ms MS (2000)]\n\
             [--variants none,a,b,c,d] [--out FILE]\n\
(normally run by cargo xtask bench)";

struct Plan {
    bin_dir: PathBuf,
    rounds: usize,
    load: LoadConfig,
    grace_ms: u64,
    variants: Vec<&'static str>,
    out: Option<PathBuf>,
}

/// Per (variant, handler): the throughput, p99 and server-CPU-per-message ratios against
/// (a), one per round.
type Ratios = BTreeMap<(String, String), [Vec<f64>; 3]>;

#[derive(Clone, Copy, Debug)]
struct Run {
    throughput: f64,
    avg_us: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    /// The server's CPU time (user and system, all its threads) per round trip during the
    /// load, in microseconds.
    cpu_us: f64,
    growth: i64,
    peak: u64,
    leaks: Option<probe::Leaks>,
}

fn parse() -> Result<Plan, String> {
    let mut a = Args::parse(std::env::args().skip(1), &["help"])?;
    if a.switch("help") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let variants = a
        .string("variants")
        .unwrap_or_else(|| "none,a,b,c,d".into());
    let variants = variants
        .split(',')
        .map(|v| {
            VARIANTS
                .iter()
                .find(|(k, _, _)| *k == v.trim())
                .map(|(k, _, _)| *k)
                .ok_or(format!(
                    "--variants: unknown variant {v:?} (none, a, b, c, d)"
                ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let plan = Plan {
        bin_dir: PathBuf::from(
            a.string("bin-dir")
                .ok_or("--bin-dir DIR is required (cargo xtask bench sets it)")?,
        ),
        rounds: a.get("rounds", 3, "a whole number of rounds")?,
        load: LoadConfig {
            url: String::new(),
            clients: a.get("clients", 100, "a whole number of clients")?,
            duration: Duration::from_secs(a.get("duration", 30, "whole seconds")?),
            size: a.get("size", 1024, "a size in bytes")?,
            churn: a.get("churn", 1000, "a number of round trips")?,
            abrupt: a.get("abrupt", 0.1, "a fraction between 0 and 1")?,
            progress: true,
        },
        grace_ms: a.get("grace-ms", 2000, "milliseconds")?,
        variants,
        out: a.string("out").map(PathBuf::from),
    };
    a.finish()?;
    if plan.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    for v in &plan.variants {
        let bin = plan.bin_dir.join(format!("echo-server-{v}"));
        if !bin.exists() {
            return Err(format!(
                "{} is missing: build the variants with `cargo xtask bench`",
                bin.display()
            ));
        }
    }
    Ok(plan)
}

async fn one_run(plan: &Plan, variant: &str, tracked: bool, route: &str) -> Result<Run, String> {
    let bin = plan.bin_dir.join(format!("echo-server-{variant}"));
    let mut child = tokio::process::Command::new(&bin)
        .env("ECHO_ADDR", "127.0.0.1:0")
        .env("ECHO_WORKERS", "1")
        .env("LEAKSCOPE_GRACE_MS", plan.grace_ms.to_string())
        .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id().ok_or("the server exited at once")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr: SocketAddr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(a) = l.strip_prefix("listening on ") {
                return a.trim().parse().map_err(|_| format!("bad address {a:?}"));
            }
        }
        Err("the server exited before listening".to_owned())
    })
    .await
    .map_err(|_| "the server did not start within 30 s".to_owned())??;
    let (rss0, _) = probe::rss(pid).ok_or("cannot read the server's RSS")?;
    let cpu = || probe::cpu_seconds(pid).ok_or("cannot read the server's CPU time");
    let cpu0 = cpu()?;
    let mut cfg = plan.load.clone();
    cfg.url = format!("ws://{addr}{route}");
    let r = load::run(cfg).await?;
    let cpu_us = (cpu()? - cpu0) * 1e6 / r.messages.max(1) as f64;
    // Let closes settle and the grace period pass, the same wait for every variant.
    tokio::time::sleep(Duration::from_millis(plan.grace_ms + 1500)).await;
    let (rss1, peak) = probe::rss(pid).ok_or("cannot read the server's RSS")?;
    let leaks = if tracked {
        Some(probe::leaks(addr, "/_leakscope").await?)
    } else {
        None
    };
    let _ = child.kill().await;
    let h = &r.latency_us;
    Ok(Run {
        throughput: r.throughput(),
        avg_us: h.mean(),
        p50_us: h.value_at_quantile(0.5) as f64,
        p99_us: h.value_at_quantile(0.99) as f64,
        max_us: h.max() as f64,
        cpu_us,
        growth: rss1 as i64 - rss0 as i64,
        peak,
        leaks,
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu})")
}

fn table(plan: &Plan, runs: &BTreeMap<(String, String), Vec<Run>>, ratios: &Ratios) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{} clients, {} B binary round trips, {} s per run, reconnect every {} round trips ({}% dropped without a close frame), server on a 1-worker tokio runtime, {} interleaved rounds, medians; ratios against (a) in the same round, median [min–max] over the rounds; machine: {}.\n\n",
        plan.load.clients, plan.load.size, plan.load.duration.as_secs(), plan.load.churn, (plan.load.abrupt * 100.0).round(), plan.rounds, machine()
    ));
    s.push_str("| server | handler | avg latency | p50 | p99 | max | throughput | server CPU per msg | RSS growth | peak RSS | leaked tasks | retained bytes | throughput vs (a) | p99 vs (a) | server CPU per msg vs (a) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (v, label, tracked) in VARIANTS {
        for (h, _) in HANDLERS {
            let Some(rs) = runs.get(&(v.to_owned(), h.to_owned())) else {
                continue;
            };
            let m = |f: fn(&Run) -> f64| median(rs.iter().map(f).collect());
            let (leaked, retained) = if tracked {
                let l: Vec<probe::Leaks> = rs.iter().filter_map(|r| r.leaks).collect();
                (
                    format!(
                        "{:.0}",
                        median(l.iter().map(|x| x.orphan_tasks as f64).collect())
                    ),
                    report::bytes(
                        median(l.iter().map(|x| x.retained_bytes as f64).collect()) as i64
                    ),
                )
            } else {
                ("not visible".into(), "not visible".into())
            };
            let [tr, pr, cr] = ratios
                .get(&(v.to_owned(), h.to_owned()))
                .cloned()
                .unwrap_or_default();
            s.push_str(&format!(
                "| {label} | {h} | {} ms | {} ms | {} ms | {} ms | {:.0} msg/s | {:.1} µs | {} | {} | {leaked} | {retained} | {} | {} | {} |\n",
                report::ms(m(|r| r.avg_us)),
                report::ms(m(|r| r.p50_us)),
                report::ms(m(|r| r.p99_us)),
                report::ms(m(|r| r.max_us)),
                m(|r| r.throughput),
                m(|r| r.cpu_us),
                report::bytes(m(|r| r.growth as f64) as i64),
                report::bytes(m(|r| r.peak as f64) as i64),
                spread(&tr, 3),
                spread(&pr, 3),
                spread(&cr, 3),
            ));
        }
    }
    s
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let plan = match parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut runs: BTreeMap<(String, String), Vec<Run>> = BTreeMap::new();
    let mut ratios: Ratios = BTreeMap::new();
    for round in 0..plan.rounds {
        // Rotate the order every round so drift does not favour one variant.
        let mut order = plan.variants.clone();
        let n = order.len();
        order.rotate_left(round % n);
        let mut this_round: BTreeMap<(String, String), Run> = BTreeMap::new();
        for v in &order {
            let tracked = VARIANTS.iter().any(|(k, _, t)| k == v && *t);
            for (h, route) in HANDLERS {
                eprintln!("round {}/{}: {v} {h}", round + 1, plan.rounds);
                match one_run(&plan, v, tracked, route).await {
                    Ok(r) => {
                        this_round.insert((v.to_string(), h.to_owned()), r);
                    }
                    Err(e) => {
                        eprintln!("bench: {v} {h}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        for ((v, h), r) in &this_round {
            if let Some(base) = this_round.get(&("a".to_owned(), h.clone())) {
                let e = ratios.entry((v.clone(), h.clone())).or_default();
                e[0].push(r.throughput / base.throughput);
                e[1].push(r.p99_us / base.p99_us);
                e[2].push(r.cpu_us / base.cpu_us);
            }
            runs.entry((v.clone(), h.clone())).or_default().push(*r);
        }
    }
    let t = table(&plan, &runs, &ratios);
    println!("\n{t}");
    if let Some(out) = &plan.out
        && let Err(e) = std::fs::write(out, &t)
    {
        eprintln!("bench: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
