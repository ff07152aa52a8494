//! `cargo xtask ci`, `test`, `demo`.

use super::{cargo, clippy};

pub(crate) fn ci() -> Result<(), String> {
    super::tidy::tidy()?;
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    clippy(&["--workspace"])?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "--cfg tokio_unstable -D warnings")],
    )?;
    test()?;
    // The feature off: a user's release build. leakscope compiles to pass-throughs.
    clippy(&["-p", "leakscope"])?;
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
    // Both crates package and build from their packages (the dashboard against the packaged
    // leakscope, through cargo's local overlay of the crates packaged together).
    cargo(
        &[
            "package",
            "-p",
            "leakscope",
            "-p",
            "leakscope-dashboard",
            "--allow-dirty",
        ],
        &[],
    )?;
    eprintln!("\nxtask ci: all green");
    Ok(())
}

pub(crate) fn test() -> Result<(), String> {
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

pub(crate) fn demo(rest: &[String]) -> Result<(), String> {
    // Task dumps (the task page's "where is it stuck") exist on Linux x86_64/aarch64 only.
    let dumps = cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ));
    let mut args = vec!["run", "--profile", "demo", "-p", "leaky-chat"];
    if dumps {
        args.extend(["--features", "taskdump"]);
    }
    args.extend(["--", "--load"]);
    args.extend(rest.iter().map(String::as_str));
    cargo(&args, &[])
}
