//! Allocation cost: `TrackingAlloc<System>` charging a connection, against `System` and against
//! `dhat::Alloc` (with a running profiler), in the same run.
//!
//! Run with: `cargo bench -p leakscope --features enabled,dhat --bench alloc`
//! (`cargo xtask bench-alloc` prints the median ratios as a table).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use leakscope::{Connection, TrackingAlloc, alloc_bench};

static TRACKING: TrackingAlloc<System> = TrackingAlloc::system();
static DHAT: dhat::Alloc = dhat::Alloc;

/// A fixed mix of small and medium sizes, as a server allocates them.
const MIXED: [usize; 16] = [
    16, 24, 32, 48, 64, 96, 128, 256, 24, 512, 32, 1024, 16, 2048, 64, 4096,
];

fn conn() -> Connection {
    Connection::open("bench", None)
}

fn pairs<A: GlobalAlloc>(a: &A, sizes: &[usize], iters: u64) -> Duration {
    let layouts: Vec<Layout> = sizes
        .iter()
        .map(|&s| Layout::from_size_align(s, 8).unwrap())
        .collect();
    let start = Instant::now();
    for i in 0..iters {
        let l = layouts[(i as usize) % layouts.len()];
        black_box(alloc_bench::pair(a, l));
    }
    start.elapsed()
}

/// Times `iters` pairs on each of two threads at once, both charging one connection.
fn two_threads<A: GlobalAlloc + Sync>(
    a: &'static A,
    sizes: &'static [usize],
    iters: u64,
) -> Duration {
    let c = conn();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let run = move |c: Connection, b: std::sync::Arc<std::sync::Barrier>| {
        c.in_scope(|| {
            b.wait();
            pairs(a, sizes, iters)
        })
    };
    let (c2, b2) = (c.clone(), barrier.clone());
    let other = std::thread::spawn(move || run(c2, b2));
    let mine = run(c, barrier);
    mine.max(other.join().unwrap())
}

fn bench(c: &mut Criterion) {
    let cases: [(&str, &'static [usize]); 5] = [
        ("16B", &[16]),
        ("64B", &[64]),
        ("1KiB", &[1024]),
        ("64KiB", &[65536]),
        ("mixed", &MIXED),
    ];
    let connection = conn();
    for (name, sizes) in cases {
        let mut g = c.benchmark_group(format!("pair_{name}"));
        g.bench_function("system", |b| b.iter_custom(|n| pairs(&System, sizes, n)));
        g.bench_function("tracking", |b| {
            b.iter_custom(|n| connection.in_scope(|| pairs(&TRACKING, sizes, n)))
        });
        g.bench_function("unsampled", |b| {
            b.iter_custom(|n| {
                let on = alloc_bench::sample_bytes();
                alloc_bench::set_sample_bytes(0);
                let t = connection.in_scope(|| pairs(&TRACKING, sizes, n));
                alloc_bench::set_sample_bytes(on);
                t
            })
        });
        g.finish();
        // What the sampled walks did, so a slow run can be told apart: rules read from the
        // unwind tables (thousands of instructions each; a steady loop reads none) and walks
        // handed to libgcc.
        eprintln!(
            "pair_{name}: stack walker so far: {} rules read, {} walks handed to libgcc",
            alloc_bench::stack_walk_rules_read(),
            alloc_bench::stack_walks_handed_over()
        );
    }
    for (name, sizes) in [("16B", &[16][..]), ("mixed", &MIXED[..])] {
        let sizes: &'static [usize] = sizes;
        let mut g = c.benchmark_group(format!("two_threads_{name}"));
        g.bench_function("system", |b| {
            b.iter_custom(|n| two_threads(&System, sizes, n))
        });
        g.bench_function("tracking", |b| {
            b.iter_custom(|n| two_threads(&TRACKING, sizes, n))
        });
        g.finish();
    }
    let mut g = c.benchmark_group("realloc_grow_16B_to_64KiB");
    g.bench_function("system", |b| {
        b.iter(|| alloc_bench::grow(&System, 16, 65536))
    });
    g.bench_function("tracking", |b| {
        connection.in_scope(|| b.iter(|| alloc_bench::grow(&TRACKING, 16, 65536)))
    });
    g.finish();

    // dhat last: its profiler stays installed for the rest of the process.
    let _profiler = dhat::Profiler::builder().testing().build();
    for (name, sizes) in [
        ("16B", &[16][..]),
        ("1KiB", &[1024][..]),
        ("mixed", &MIXED[..]),
    ] {
        let mut g = c.benchmark_group(format!("pair_{name}"));
        g.sample_size(10).measurement_time(Duration::from_secs(2));
        g.bench_function("dhat", |b| b.iter_custom(|n| pairs(&DHAT, sizes, n)));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
