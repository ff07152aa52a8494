//! What a snapshot costs with 10,000 connections and 100,000 live tasks tracked (every third
//! connection closed with its ten tasks still alive: about 33,000 orphans), and whether the
//! hooks wait for it: spawns timed while another thread takes snapshots back to back.
//!
//! Run with: `cargo bench -p leakscope --features enabled --bench snapshot`
//! Options: `-- --rounds N` (default 21); `--only-snapshot` stops after the full snapshots
//! (to count their instructions under callgrind: the difference of `--rounds 3` and
//! `--rounds 1`, halved).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    let only = args.iter().any(|a| a == "--only-snapshot");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--only-snapshot").collect();
    let rounds = match args.as_slice() {
        [] => 21,
        [flag, n] if *flag == "--rounds" => n.parse().expect("--rounds: a whole number"),
        _ => {
            eprintln!("usage: snapshot [--rounds N] [--only-snapshot]");
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
    let drops = std::cell::RefCell::new(Vec::new());
    let whole = time(rounds, || {
        let s = leakscope::snapshot();
        let start = Instant::now();
        drop(s);
        drops.borrow_mut().push(start.elapsed());
    });
    let mut drops = drops.into_inner();
    drops.remove(0); // the warm-up call's
    println!(
        "| `leakscope::snapshot()` (and dropping it) | {} |",
        stats(whole)
    );
    println!("| ... of which the caller's drop | {} |", stats(drops));
    if only {
        // (For callgrind: the full snapshot alone, `--rounds 1` and `--rounds 3`.)
        return;
    }
    println!(
        "| `leakscope::connections_snapshot()` (what `/metrics` reads) | {} |",
        stats(time(rounds, || drop(leakscope::connections_snapshot())))
    );
    println!(
        "| `leakscope::summary(50)` | {} |",
        stats(time(rounds, || drop(leakscope::summary(50))))
    );
    // Spawn+await inside a connection while snapshots run back to back on another thread,
    // until ten snapshots are done: a tagged spawn never waits for a snapshot (task events
    // queue; the lock is taken only by whoever reads).
    let quiet = rt.block_on(spawns(|n| n >= 2_000)).0;
    let done = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicBool::new(true));
    let (d2, b2) = (done.clone(), busy.clone());
    let snapper = std::thread::spawn(move || {
        while b2.load(Ordering::Relaxed) {
            drop(leakscope::snapshot());
            d2.fetch_add(1, Ordering::Relaxed);
        }
    });
    let (during, n, slow) = rt.block_on(spawns(move |n| {
        n >= 2_000 && done.load(Ordering::Relaxed) >= 10
    }));
    busy.store(false, Ordering::Relaxed);
    snapper.join().unwrap();
    // The same against a thread that only burns CPU for as long: on a 2-core box, 3 busy
    // threads are preempted for milliseconds whatever they do, so that is the floor.
    let spin = Arc::new(AtomicBool::new(true));
    let s2 = spin.clone();
    let spinner = std::thread::spawn(move || {
        let mut x = 0u64;
        while s2.load(Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    });
    let (spun, m, spun_slow) = rt.block_on(spawns(move |k| k >= n));
    spin.store(false, Ordering::Relaxed);
    spinner.join().unwrap();
    println!(
        "| tagged spawn+await, slowest: of 2,000 alone / of {n} while 10 snapshots ran / of \
         {m} while a thread spun | {:.2} ms / {:.2} ms / {:.2} ms |",
        quiet.as_secs_f64() * 1e3,
        during.as_secs_f64() * 1e3,
        spun.as_secs_f64() * 1e3
    );
    println!(
        "| tagged spawn+await over 1 ms: while 10 snapshots ran / while a thread spun | \
         {slow} / {spun_slow} |"
    );
}

/// Spawning tagged tasks until `enough(count)`: the slowest spawn+await, the count, and how
/// many took over 1 ms.
async fn spawns(enough: impl Fn(usize) -> bool + Send + 'static) -> (Duration, usize, usize) {
    let conn = leakscope::Connection::open("spawns", None);
    let worst = tokio::spawn(conn.scope(async move {
        let (mut worst, mut n, mut slow) = (Duration::ZERO, 0, 0);
        while !enough(n) {
            let start = Instant::now();
            tokio::spawn(async {}).await.unwrap();
            let took = start.elapsed();
            worst = worst.max(took);
            slow += usize::from(took > Duration::from_millis(1));
            n += 1;
        }
        (worst, n, slow)
    }))
    .await
    .unwrap();
    conn.close();
    worst
}
