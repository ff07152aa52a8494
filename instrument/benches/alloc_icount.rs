//! Instructions per alloc+free pair, counted by callgrind (repeatable on a noisy machine).
//!
//! Run with: `cargo xtask bench-alloc` (it runs this under `valgrind --tool=callgrind` at two
//! iteration counts and divides the difference), or directly:
//! `alloc_icount <system|tracking|unsampled> <16B|64B|1KiB|mixed|grow> <pairs>` (`unsampled`:
//! tracking with allocation sampling off; `grow`: a block grown from 16 B to 64 KiB by doubling,
//! then freed, per "pair"). The allocators are called directly and inline into the loop;
//! a program reaches its `#[global_allocator]` through `__rust_alloc` and `__rust_dealloc`,
//! which add a call, and for `TrackingAlloc` a saved register (`docs/benchmarks-history.md` counts
//! them in the echo server's binary).

use std::alloc::{Layout, System};
use std::hint::black_box;

use leakscope::{Connection, TrackingAlloc, alloc_bench};

static TRACKING: TrackingAlloc<System> = TrackingAlloc::system();

/// Pairs every run does before the counted ones.
const WARMUP: usize = 100_000;

const MIXED: [usize; 16] = [
    16, 24, 32, 48, 64, 96, 128, 256, 24, 512, 32, 1024, 16, 2048, 64, 4096,
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() != 3 {
        eprintln!(
            "usage: alloc_icount <system|tracking|unsampled> <16B|64B|1KiB|mixed|grow> <pairs>"
        );
        std::process::exit(2);
    }
    let sizes: &[usize] = match args[1].as_str() {
        // Sixteen of one size, so every case runs the same loop as `mixed`: with one layout
        // per round, the round's own counting (spilled to the stack where the allocator's
        // fast path takes the registers) was two instructions per pair.
        "16B" => &[16; 16],
        "64B" => &[64; 16],
        "1KiB" => &[1024; 16],
        "mixed" => &MIXED,
        // One "pair" is a block grown from 16 B to 64 KiB by doubling (12 reallocs) and freed.
        "grow" => &[],
        other => {
            eprintln!("unknown size {other:?}");
            std::process::exit(2)
        }
    };
    let Ok(n) = args[2].parse::<usize>() else {
        eprintln!("pairs: a whole number, not {:?}", args[2]);
        std::process::exit(2)
    };
    let layouts: Vec<Layout> = sizes
        .iter()
        .map(|&s| Layout::from_size_align(s, 8).unwrap())
        .collect();
    let conn = Connection::open("icount", None);
    let tracking = match args[0].as_str() {
        "system" => false,
        "tracking" => true,
        "unsampled" => {
            alloc_bench::set_sample_bytes(0);
            true
        }
        other => {
            eprintln!("unknown allocator {other:?}");
            std::process::exit(2)
        }
    };
    // Every run first does the same warm-up, which cancels out of the difference of two runs:
    // what is left is the steady state. (Without it, a sampled stack walk that first reaches a
    // call path in the longer run only reads that path's unwind rules there: 0.4 instructions
    // per 16 B pair in one run.)
    conn.in_scope(|| {
        if layouts.is_empty() {
            for _ in 0..WARMUP / 100 + n {
                if tracking {
                    black_box(alloc_bench::grow(&TRACKING, 16, 65536));
                } else {
                    black_box(alloc_bench::grow(&System, 16, 65536));
                }
            }
        } else if tracking {
            run(&layouts, WARMUP + n, |l| alloc_bench::pair(&TRACKING, l));
        } else {
            run(&layouts, WARMUP + n, |l| alloc_bench::pair(&System, l));
        }
    });
}

/// `pairs` pairs (rounded down to whole rounds of `layouts`), each layout opaque to the
/// optimizer as a call's arguments are, so the loop's own work is the same whichever
/// allocator runs (an index taken modulo the count compiled differently in different loops).
fn run(layouts: &[Layout], pairs: usize, pair: impl Fn(Layout) -> bool) {
    for _ in 0..pairs / layouts.len() {
        for &l in layouts {
            black_box(pair(black_box(l)));
        }
    }
}
