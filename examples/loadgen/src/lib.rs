//! A WebSocket load generator: N clients round-trip fixed-size binary messages for a while,
//! optionally closing and reconnecting (churn), and report throughput and latency from an HDR
//! histogram. `src/bin/loadgen.rs` is its command line; `src/bin/bench.rs` runs the
//! leakscope overhead benchmark on top of it.

pub mod args;
pub mod load;
pub mod probe;
pub mod report;
