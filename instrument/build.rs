//! Says at build time what a user otherwise finds out by missing leaks: the `enabled` feature
//! without `--cfg tokio_unstable` gives explicit-spawn mode, which sees only the tasks spawned
//! with `leakscope::spawn*` (no plain `tokio::spawn`, nothing inside libraries). Cargo shows a
//! build script's warnings for path and workspace dependencies; the same sentence is printed
//! once at start-up and shown on the dashboard in every case.

fn main() {
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let enabled = std::env::var_os("CARGO_FEATURE_ENABLED").is_some();
    let unstable = std::env::var_os("CARGO_CFG_TOKIO_UNSTABLE").is_some();
    if enabled && !unstable {
        println!(
            "cargo::warning=leakscope: the `enabled` feature is on but this build lacks \
             `--cfg tokio_unstable`, so leakscope runs in explicit-spawn mode and misses every \
             plain tokio::spawn. Add to .cargo/config.toml: \
             [build] rustflags = [\"--cfg\", \"tokio_unstable\"]"
        );
    }
}
