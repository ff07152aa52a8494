//! What leakscope's runtime hooks cost: 1M spawn+await and a poll-heavy load (1M polls),
//! on a runtime without hooks ("off") and one with leakscope's hooks ("on"), in alternating
//! rounds of the same run. Each workload runs untagged (code outside any connection) and
//! tagged (inside a connection scope, so every task is recorded).
//!
//! Run with: `cargo bench -p leakscope --features enabled --bench hooks`
//! Options: `-- --rounds N` (default 7), `--tasks N` (default 1000000), `--workers N`
//! (default 2); to count one case's instructions under callgrind, `--work spawn|polls`,
//! `--context untagged|tagged` and `--hooks off|on` run only the matching cases.

use std::time::{Duration, Instant};

use leakscope::RuntimeBuilderExt;

fn runtime(hooks: bool, workers: usize) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(workers).enable_all();
    if hooks {
        b.leakscope();
    }
    b.build().unwrap()
}

async fn spawn_await(n: u64) {
    for _ in 0..n {
        tokio::spawn(async {}).await.unwrap();
    }
}

async fn poll_heavy(n: u64) {
    let tasks = 100;
    let per = n / tasks;
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..per {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
}

fn time(
    rt: &tokio::runtime::Runtime,
    tagged: bool,
    work: &dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        if tagged {
            let conn = leakscope::Connection::open("bench", None);
            // Run the workload inside a task of the connection, as a handler would.
            tokio::spawn(conn.scope(work())).await.unwrap();
            conn.close();
        } else {
            tokio::spawn(work()).await.unwrap();
        }
        start.elapsed()
    })
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut rounds = 7;
    let mut workers = 2;
    let mut n: u64 = 1_000_000;
    let (mut only_work, mut only_context, mut only_hooks) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--tasks" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            "--workers" => workers = args.next().and_then(|v| v.parse().ok()).unwrap_or(workers),
            "--work" => only_work = args.next(),
            "--context" => only_context = args.next(),
            "--hooks" => only_hooks = args.next(),
            _ => {} // cargo bench passes --bench
        }
    }
    let _ = leakscope::Builder::new()
        .max_ended_tasks_per_connection(32)
        .install();
    let off = runtime(false, workers);
    let on = runtime(true, workers);
    println!(
        "{workers} worker thread(s), {rounds} alternating rounds, medians; each round's on/off, \
         median [min-max]\n"
    );
    type Work = (
        &'static str,
        fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    );
    let works: [(&str, Work); 2] = [
        ("spawn", ("1M spawn+await", |n| Box::pin(spawn_await(n)))),
        (
            "polls",
            ("1M polls (100 tasks x yield_now)", |n| {
                Box::pin(poll_heavy(n))
            }),
        ),
    ];
    let wanted =
        |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f == value);
    println!("| workload | context | off (median) | on (median) | on/off | per round on/off |");
    println!("|---|---|---|---|---|---|");
    for (key, (name, make)) in works {
        if !wanted(&only_work, key) {
            continue;
        }
        for tagged in [false, true] {
            if !wanted(&only_context, if tagged { "tagged" } else { "untagged" }) {
                continue;
            }
            let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
            for r in 0..rounds {
                // Alternate which variant runs first to cancel drift.
                let order = if r % 2 == 0 {
                    [false, true]
                } else {
                    [true, false]
                };
                for hooks in order {
                    if !wanted(&only_hooks, if hooks { "on" } else { "off" }) {
                        continue;
                    }
                    let rt = if hooks { &on } else { &off };
                    let d = time(rt, tagged, &|| make(n));
                    if hooks { t_on.push(d) } else { t_off.push(d) }
                }
            }
            if t_off.is_empty() || t_on.is_empty() {
                continue;
            }
            // The same round's two runs, before the medians sort them.
            let mut per_round: Vec<f64> = t_on
                .iter()
                .zip(&t_off)
                .map(|(b, a)| b.as_secs_f64() / a.as_secs_f64())
                .collect();
            per_round.sort_by(f64::total_cmp);
            let n = per_round.len();
            // The median; of an even count, the mean of the middle two (as the other tables').
            let mid = (per_round[(n - 1) / 2] + per_round[n / 2]) / 2.0;
            let (lo, hi) = (per_round[0], per_round[n - 1]);
            let (a, b) = (median(&mut t_off), median(&mut t_on));
            println!(
                "| {name} | {} | {:.0} ms | {:.0} ms | {:.2}x | {mid:.2}x [{lo:.2}-{hi:.2}] |",
                if tagged {
                    "inside a connection"
                } else {
                    "untagged"
                },
                a.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3,
                b.as_secs_f64() / a.as_secs_f64()
            );
        }
    }
    let snap = leakscope::snapshot();
    eprintln!(
        "(collector after the run: {} connections, {} task records kept, {} tasks spawned)",
        snap.connections.len(),
        snap.tasks.len(),
        snap.totals.tasks_spawned
    );
}
