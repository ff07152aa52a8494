//! A WebSocket load generator: N clients round-trip fixed-size binary messages for a while,
//! optionally closing and reconnecting (churn), and report throughput and latency from an HDR
//! histogram. `src/bin/loadgen.rs` is its command line; `src/bin/bench.rs` runs the
//! leakscope overhead benchmark on top of it; `src/bin/churn.rs` is the churn benchmark
//! (`churn`: the clients, `verdict`: the checks against leakscope's snapshot).

pub mod args;
pub mod churn;
pub mod icount;
pub mod load;
pub mod probe;
pub mod report;
pub mod verdict;
