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
    forget_packaged_sources()?;
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

/// leaky-chat's flags, checked before the (long) demo build: `--load-connections N`,
/// `--load-every-ms MS` (and `--load`, which the demo passes anyway).
fn check_demo_flags(rest: &[String]) -> Result<(), String> {
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--load" => {}
            "--load-connections" | "--load-every-ms" => {
                let v = it.next().ok_or(format!("{a} needs a value"))?;
                v.parse::<u64>()
                    .map_err(|_| format!("{a} {v:?}: expected a whole number"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (the demo takes --load-connections N and \
                     --load-every-ms MS)"
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn demo(rest: &[String]) -> Result<(), String> {
    check_demo_flags(rest)?;
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

/// Removes the unpacked sources of this workspace's crates from cargo's local-registry
/// overlays (`$CARGO_HOME/registry/src/-<hash>/`). `cargo package` unpacks each crate it
/// packages there to build the next one against it, but never unpacks the same version again:
/// a later run with changed sources (same version 0.1.0) built the dashboard against a stale
/// `leakscope` and failed. The overlays hold nothing else of ours; crates.io's sources (in
/// `index.crates.io-*`) are left alone.
fn forget_packaged_sources() -> Result<(), String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(()); // no cargo home: nothing cached
    };
    let Ok(overlays) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for overlay in overlays.flatten() {
        if !overlay.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(crates) = std::fs::read_dir(overlay.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            let ours = ["leakscope-", "leakscope-dashboard-"].iter().any(|p| {
                name.strip_prefix(p)
                    .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours {
                let path = krate.path();
                std::fs::remove_dir_all(&path).map_err(|e| {
                    format!(
                        "cannot remove the stale package source {}: {e}",
                        path.display()
                    )
                })?;
                eprintln!("xtask: removed the stale package source {}", path.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_demo_flags;

    #[test]
    fn demo_flags_are_checked_before_the_build() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_demo_flags(&args(&["--load-connections", "50"])).is_ok());
        assert!(
            check_demo_flags(&args(&["--bogus"]))
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            check_demo_flags(&args(&["--load-every-ms"]))
                .unwrap_err()
                .contains("needs")
        );
        assert!(
            check_demo_flags(&args(&["--load-every-ms", "x"]))
                .unwrap_err()
                .contains("whole")
        );
    }
}
