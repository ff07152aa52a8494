//! `cargo xtask miri`: the allocator's unit tests under Miri, where a nightly toolchain with
//! Miri is installed.

use std::process::Command;

use super::cargo;

pub(crate) fn miri() -> Result<(), String> {
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
                "heap",
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
