//! `cargo xtask <task>`: the project's automation, in Rust, with no dependencies.
//!
//! - `ci`    — everything CI runs (fmt, clippy, docs, all tests including the browser test,
//!   the feature-off build, the explicit-spawn run without `tokio_unstable`).
//! - `test`  — the test suites only.
//! - `demo`  — the README demo: leaky-chat with `--load` and the live dashboard.
//! - `bench` — the load-generator benchmark (see docs/benchmarks.md).
//! - `miri`  — the allocator's unit tests under Miri, if a nightly toolchain with Miri exists.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "ci" => ci(),
        "test" => test(),
        "demo" => demo(rest),
        "bench" => bench(rest),
        "miri" => miri(),
        "help" | "-h" | "--help" => {
            println!("usage: cargo xtask <ci|test|demo|bench|miri>");
            Ok(())
        }
        other => Err(format!(
            "unknown task {other:?}; expected one of ci, test, demo, bench, miri"
        )),
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

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "--cfg tokio_unstable -D warnings")],
    )?;
    test()?;
    // The feature off: a user's release build. leakscope compiles to pass-throughs.
    cargo(
        &[
            "clippy",
            "-p",
            "leakscope",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(&["build", "-p", "leaky-chat", "--no-default-features"], &[])?;
    cargo(
        &[
            "test",
            "-p",
            "leaky-chat",
            "--no-default-features",
            "--test",
            "disabled",
        ],
        &[],
    )?;
    // Explicit-spawn mode: the same end-to-end tests without tokio_unstable (own target dir,
    // so the two configurations do not rebuild each other).
    cargo(
        &[
            "test",
            "-p",
            "leakscope-tests",
            "--target-dir",
            "target/explicit-spawn",
        ],
        &[("RUSTFLAGS", ""), ("CARGO_BUILD_RUSTFLAGS", "")],
    )?;
    eprintln!("\nxtask ci: all green");
    Ok(())
}

fn test() -> Result<(), String> {
    cargo(&["test", "--workspace"], &[])?;
    // Suites behind features the workspace build does not turn on.
    cargo(
        &[
            "test",
            "-p",
            "leakscope",
            "--features",
            "enabled,dhat",
            "--test",
            "dhat_heap",
        ],
        &[],
    )?;
    cargo(
        &[
            "test",
            "-p",
            "leakscope-dashboard",
            "--features",
            "taskdump",
        ],
        &[],
    )
}

fn demo(rest: &[String]) -> Result<(), String> {
    let mut args = vec!["run", "--release", "-p", "leaky-chat", "--", "--load"];
    args.extend(rest.iter().map(String::as_str));
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

/// The echo server built five ways, and the benchmark that runs them.
fn bench(rest: &[String]) -> Result<(), String> {
    let (root, target) = dirs();
    let bins = target.join("bench-bin");
    std::fs::create_dir_all(&bins).map_err(|e| format!("{}: {e}", bins.display()))?;
    let variants: [(&str, &[&str]); 5] = [
        ("none", &[]),
        ("a", &["--features", "with-leakscope"]),
        ("b", &["--features", "leak-detect"]),
        ("c", &["--features", "console"]),
        ("d", &["--features", "leak-detect,console"]),
    ];
    for (name, features) in variants {
        let mut args = vec!["build", "--release", "-p", "echo-server"];
        args.extend_from_slice(features);
        cargo(&args, &[])?;
        let to = bins.join(format!("echo-server-{name}"));
        std::fs::copy(target.join("release/echo-server"), &to)
            .map_err(|e| format!("copy to {}: {e}", to.display()))?;
    }
    cargo(&["build", "--release", "-p", "loadgen"], &[])?;
    let out = target.join("bench-results.md");
    let status = Command::new(target.join("release/bench"))
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--out")
        .arg(&out)
        .args(rest)
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run the benchmark: {e}"))?;
    if !status.success() {
        return Err(format!("the benchmark failed ({status})"));
    }
    eprintln!("table written to {}", out.display());
    Ok(())
}

fn miri() -> Result<(), String> {
    let probe = Command::new("cargo")
        .args(["+nightly", "miri", "--version"])
        .output();
    match probe {
        Ok(o) if o.status.success() => cargo(
            &[
                "+nightly",
                "miri",
                "test",
                "-p",
                "leakscope",
                "--features",
                "enabled",
                "--lib",
                "alloc",
            ],
            &[],
        ),
        _ => {
            eprintln!(
                "xtask miri: SKIPPED — no nightly toolchain with Miri here \
                 (rustup toolchain install nightly --component miri)"
            );
            Ok(())
        }
    }
}
