//! What keeping each connection's log lines costs: `tracing` events emitted inside a
//! connection, with a subscriber without leakscope's layer ("off") and with it ("on"), next to
//! what writing the same events with `tracing_subscriber::fmt` (to a sink) costs, in
//! alternating rounds of the same run; medians, spreads and ratios.
//!
//! Run with: `cargo bench -p leakscope --features enabled --bench events`
//! Options: `-- --rounds N` (default 9), `--events N` (default 200000).

use std::time::Instant;

use tracing::Subscriber;
use tracing_subscriber::prelude::*;

/// Nanoseconds per event: `n` events with two fields, inside a connection, under `sub`.
fn run(sub: impl Subscriber + Send + Sync + 'static, n: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(sub, || {
        let conn = leakscope::Connection::open("/bench/events", None);
        let ns = rt.block_on(conn.scope(async move {
            let start = Instant::now();
            for i in 0..n {
                tracing::info!(i, room = "lobby", "message forwarded");
            }
            start.elapsed().as_nanos() as f64 / n as f64
        }));
        conn.close();
        ns
    })
}

fn fmt_sink() -> impl tracing_subscriber::Layer<tracing_subscriber::Registry> {
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_ansi(false)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} {v:?}: not a number"))
        })
        .unwrap_or(default)
}

fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let (rounds, n) = (arg("--rounds", 9) as usize, arg("--events", 200_000));
    let _ = leakscope::Builder::new().install();
    let names = [
        "registry",
        "registry + layer",
        "fmt (sink)",
        "fmt (sink) + layer",
    ];
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        ns[0].push(run(tracing_subscriber::registry(), n));
        ns[1].push(run(
            tracing_subscriber::registry().with(leakscope::layer()),
            n,
        ));
        ns[2].push(run(tracing_subscriber::registry().with(fmt_sink()), n));
        ns[3].push(run(
            tracing_subscriber::registry()
                .with(fmt_sink())
                .with(leakscope::layer()),
            n,
        ));
    }
    println!(
        "{n} events per round, {rounds} alternating rounds, \
         events_per_connection = {}; ns per event, median [min-max]:\n",
        leakscope::config().events_per_connection
    );
    println!("| subscriber | ns/event | events/s | vs the same without the layer |");
    println!("|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let (m, lo, hi) = median_spread(ns[i].clone());
        let ratio = if i % 2 == 1 {
            let r: Vec<f64> = ns[i].iter().zip(&ns[i - 1]).map(|(a, b)| a / b).collect();
            let (rm, rlo, rhi) = median_spread(r);
            format!("{rm:.2}x [{rlo:.2}-{rhi:.2}]")
        } else {
            "-".to_owned()
        };
        println!(
            "| {name} | {m:.0} [{lo:.0}-{hi:.0}] | {:.2} M | {ratio} |",
            1e3 / m
        );
    }
}
