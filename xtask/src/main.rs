//! `cargo xtask <task>`: the project's automation, in Rust, with no dependencies.
//!
//! - `ci`    — everything CI runs (fmt, clippy, docs, all tests including the browser test,
//!   the feature-off build, the explicit-spawn run without `tokio_unstable`).
//! - `test`  — the test suites only.
//! - `demo`  — the README demo: leaky-chat with `--load` and the live dashboard.
//! - `bench` — the load-generator benchmark (see docs/benchmarks.md).
//! - `bench-alloc` — the allocator benchmarks, with median ratios against `System` (and
//!   callgrind instruction counts when valgrind is installed).
//! - `bench-hooks` — instructions per spawn+await and per poll, tagged and untagged, hooks off and on
//!   (callgrind).
//! - `churn` — the churn benchmark: leaky-chat under >= 1,000 closes/s with leaks mixed in,
//!   checked from the snapshot (every leak flagged, no clean one, totals exact).
//! - `tidy`  — the repository's own rules, checked (see `tidy.rs`).
//! - `miri`  — the allocator's unit tests under Miri, if a nightly toolchain with Miri exists.

mod bench;
mod bench_hooks;
mod churn;
mod ci;
mod miri;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Each task and its one-line usage (`cargo xtask <task> --help` prints it at once).
const TASKS: &[(&str, &str)] = &[
    (
        "ci",
        "everything CI runs: tidy, fmt, clippy, docs, every test suite",
    ),
    ("test", "the test suites only"),
    (
        "tidy",
        "the repository's own rules (unsafe code, file length, docs that name code)",
    ),
    (
        "demo",
        "leaky-chat with --load and the live dashboard [leaky-chat flags...]",
    ),
    (
        "bench",
        "the echo server five ways under load, or --icount: instructions per message",
    ),
    (
        "bench-alloc",
        "allocator ratios (criterion) and instructions per pair (callgrind)",
    ),
    (
        "bench-hooks",
        "instructions per spawn+await and per poll, tagged and not, hooks off / on (callgrind) [--repeats N]",
    ),
    (
        "churn",
        "verdicts under >= 10,000 closes/s (see cargo xtask churn --help)",
    ),
    (
        "miri",
        "the allocator's unit tests under Miri, where installed",
    ),
];

fn usage() -> String {
    let mut out = String::from("usage: cargo xtask <task> [args]\n");
    for (name, what) in TASKS {
        out.push_str(&format!("  {name:<12} {what}\n"));
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let wants_help = rest.iter().any(|a| a == "--help" || a == "-h");
    if wants_help && task == "bench" {
        println!("{}", bench::BENCH_HELP);
        return ExitCode::SUCCESS;
    }
    if wants_help
        && task != "churn"
        && let Some((name, what)) = TASKS.iter().find(|(n, _)| *n == task)
    {
        println!("usage: cargo xtask {name}: {what}");
        return ExitCode::SUCCESS;
    }
    let result = match task {
        "ci" => ci::ci(),
        "test" => ci::test(),
        "tidy" => tidy::tidy(),
        "demo" => ci::demo(rest),
        "bench" => bench::bench(rest),
        "bench-alloc" => bench::bench_alloc(rest),
        "bench-hooks" => bench_hooks::bench_hooks(rest),
        "churn" => churn::churn(rest),
        "miri" => miri::miri(),
        "help" | "-h" | "--help" => {
            print!("{}", usage());
            Ok(())
        }
        other => Err(format!("unknown task {other:?}\n{}", usage())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cargo <args>` with extra environment, failing on a non-zero exit.
fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let started = Instant::now();
    eprintln!("\n==> cargo {}", args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    eprintln!(
        "<== cargo {} ({:.0} s)",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// `cargo clippy <which> --all-targets -- -D warnings`.
fn clippy(which: &[&str]) -> Result<(), String> {
    let mut args = vec!["clippy"];
    args.extend_from_slice(which);
    args.extend_from_slice(&["--all-targets", "--", "-D", "warnings"]);
    cargo(&args, &[])
}

/// The workspace root and its target directory.
fn dirs() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    (root, target)
}
