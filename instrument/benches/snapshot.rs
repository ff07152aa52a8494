//! What a snapshot costs with 10,000 connections and 100,000 live tasks tracked (every third
//! connection closed with its ten tasks still alive: about 33,000 orphans), and whether the
//! hooks wait for it: spawns timed on another thread while snapshots are taken back to back.
//!
//! Run with: `cargo bench -p leakscope --features enabled --bench snapshot`
//! Options: `-- --rounds N` (default 21).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use leakscope::RuntimeBuilderExt;

const CONNECTIONS: usize = 10_000;
const TASKS_PER_CONNECTION: usize = 10;
const CLOSED_EVERY: usize = 3;
const LABELS: [&str; 4] = [
    "/ws",
    "/ws/leaky/forwarder",
    "/ws/leaky/heartbeat",
    "/ws/leaky/bytes",
];

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:.1} ms [{:.1}-{:.1}]",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1])
    )
}

fn time(rounds: usize, f: impl Fn()) -> Vec<Duration> {
    f();
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rounds = match args.as_slice() {
        [] => 21,
        [flag, n] if flag == "--rounds" => n.parse().expect("--rounds: a whole number"),
        _ => {
            eprintln!("usage: snapshot [--rounds N]");
            std::process::exit(2)
        }
    };
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all().leakscope();
    let rt = b.build().unwrap();
    let _conns = rt.block_on(async {
        let mut conns = Vec::with_capacity(CONNECTIONS);
        for i in 0..CONNECTIONS {
            let peer = format!("10.0.{}.{}:{}", i / 250, i % 250, 40_000 + i % 20_000);
            let conn = leakscope::Connection::open(LABELS[i % LABELS.len()], Some(peer));
            conn.scope(async {
                for _ in 0..TASKS_PER_CONNECTION {
                    tokio::spawn(std::future::pending::<()>());
                }
            })
            .await;
            if i % CLOSED_EVERY == 0 {
                conn.close();
            }
            conns.push(conn);
        }
        conns
    });
    let s = leakscope::snapshot();
    eprintln!(
        "{} connections, {} tasks listed",
        s.connections.len(),
        s.tasks.len()
    );
    println!("| what | median [min-max] of {rounds} |");
    println!("|---|---|");
    println!(
        "| `leakscope::snapshot()` | {} |",
        stats(time(rounds, || drop(leakscope::snapshot())))
    );
    println!(
        "| `leakscope::summary(50)` | {} |",
        stats(time(rounds, || drop(leakscope::summary(50))))
    );
    // Spawn+await inside a connection while snapshots run back to back on this thread: the
    // hooks only take the collector's lock for a copy, never for a whole snapshot.
    let quiet = rt.block_on(spawns(2_000));
    let busy = Arc::new(AtomicBool::new(true));
    let b2 = busy.clone();
    let snapper = std::thread::spawn(move || {
        let mut n = 0;
        while b2.load(Ordering::Relaxed) {
            drop(leakscope::snapshot());
            n += 1;
        }
        n
    });
    let during = rt.block_on(spawns(2_000));
    busy.store(false, Ordering::Relaxed);
    let n = snapper.join().unwrap();
    println!(
        "| slowest of 2,000 tagged spawn+await, alone / during {n} snapshots | {:.2} ms / {:.2} ms |",
        quiet.as_secs_f64() * 1e3,
        during.as_secs_f64() * 1e3
    );
}

/// The slowest of `n` tagged spawn+await.
async fn spawns(n: usize) -> Duration {
    let conn = leakscope::Connection::open("spawns", None);
    let worst = tokio::spawn(conn.scope(async move {
        let mut worst = Duration::ZERO;
        for _ in 0..n {
            let start = Instant::now();
            tokio::spawn(async {}).await.unwrap();
            worst = worst.max(start.elapsed());
        }
        worst
    }))
    .await
    .unwrap();
    conn.close();
    worst
}
