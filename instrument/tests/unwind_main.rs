//! The sampled allocation's stack walk on the main thread (whose stack the loader sets up,
//! unlike a spawned thread's): the same frames as libgcc's, and sampled allocations made here
//! walked without handing a walk to libgcc. A test without the harness, which would run it
//! on a thread of its own.

use std::alloc::System;

#[global_allocator]
static ALLOC: leakscope::TrackingAlloc<System> = leakscope::TrackingAlloc::system();

fn main() {
    let frames = leakscope::alloc_bench::stack_walk_agrees_with_libgcc()
        .unwrap_or_else(|e| panic!("the main thread's walk differs from libgcc's: {e}"));
    assert!(frames >= 3, "only {frames} frames");
    // Sampled allocations of a connection, made on this thread: every 512 KiB on average, so
    // 64 MiB in 1 KiB blocks takes about 128 walks.
    let before = leakscope::alloc_bench::stack_walks_handed_over();
    let conn = leakscope::Connection::open("unwind_main", None);
    let kept = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(
            conn.scope(async { (0..65_536).map(|i| vec![i as u8; 1024]).collect::<Vec<_>>() }),
        );
    let sampled = leakscope::connection_snapshot(conn.id().unwrap_or(0))
        .map(|s| s.heap.live_samples)
        .unwrap_or(0);
    drop(kept);
    assert!(sampled > 0, "no allocation was sampled");
    assert_eq!(
        leakscope::alloc_bench::stack_walks_handed_over(),
        before,
        "a sampled walk on the main thread was handed to libgcc"
    );
    println!("unwind_main: {frames} frames as libgcc's; {sampled} sampled blocks walked");
}
