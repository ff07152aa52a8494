//! `cargo xtask bench` (the echo server five ways) and `bench-alloc` (criterion ratios and
//! callgrind instruction counts).

use std::path::Path;
use std::process::Command;

use super::{cargo, dirs};

/// The flags of the wall-clock benchmark (`examples/loadgen/src/bin/bench.rs`), each with a
/// value.
const BENCH_FLAGS: &[&str] = &[
    "rounds", "duration", "clients", "size", "churn", "abrupt", "grace-ms", "variants",
];
/// The flags of `--icount` (`examples/loadgen/src/bin/icount.rs`), each with a value.
const ICOUNT_FLAGS: &[&str] = &[
    "repeats",
    "clients",
    "messages",
    "warmup",
    "per-connection",
    "size",
    "keep",
];

/// What `cargo xtask bench --help` prints.
pub(crate) const BENCH_HELP: &str = "\
usage: cargo xtask bench [--rounds N] [--duration S] [--clients N] [--size BYTES] [--churn K]
                         [--abrupt F] [--grace-ms MS] [--variants none,a,b,c,d]
       cargo xtask bench --icount [--repeats N] [--clients N] [--messages N] [--warmup N]
                         [--per-connection N] [--size BYTES] [--keep DIR]
  (default) the echo server five ways under load, wall clock, interleaved rounds
  --icount  server instructions per message under callgrind, leakscope off / on (needs valgrind)
see docs/benchmarks.md";

/// Checks `--name value` pairs against `known` before anything is built.
fn check_flags(rest: &[String], known: &[&str]) -> Result<(), String> {
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let name = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a:?} (flags look like --name value)"))?;
        if !known.contains(&name) {
            return Err(format!(
                "unknown flag --{name} (this benchmark takes --{})\n{BENCH_HELP}",
                known.join(", --")
            ));
        }
        match it.next() {
            Some(v) if !v.starts_with("--") => {}
            _ => return Err(format!("--{name} needs a value\n{BENCH_HELP}")),
        }
    }
    Ok(())
}

/// Builds the echo server variants `names` into `target/bench-bin`.
fn build_variants(names: &[&str]) -> Result<std::path::PathBuf, String> {
    let (_, target) = dirs();
    let bins = target.join("bench-bin");
    std::fs::create_dir_all(&bins).map_err(|e| format!("{}: {e}", bins.display()))?;
    let variants: [(&str, &[&str]); 5] = [
        ("none", &[]),
        ("a", &["--features", "with-leakscope"]),
        ("b", &["--features", "leak-detect"]),
        ("c", &["--features", "console"]),
        ("d", &["--features", "leak-detect,console"]),
    ];
    for (name, features) in variants.into_iter().filter(|(n, _)| names.contains(n)) {
        let mut args = vec!["build", "--release", "-p", "echo-server"];
        args.extend_from_slice(features);
        cargo(&args, &[])?;
        let to = bins.join(format!("echo-server-{name}"));
        std::fs::copy(target.join("release/echo-server"), &to)
            .map_err(|e| format!("copy to {}: {e}", to.display()))?;
    }
    cargo(&["build", "--release", "-p", "loadgen"], &[])?;
    Ok(bins)
}

/// Runs a loadgen benchmark binary with the variants' directory and an output file.
fn run_bench(bin: &str, bins: &Path, out: &str, rest: &[String]) -> Result<(), String> {
    let (root, target) = dirs();
    let out = target.join(out);
    let status = Command::new(target.join("release").join(bin))
        .arg("--bin-dir")
        .arg(bins)
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

/// The echo server built five ways and the wall-clock benchmark, or (`--icount`) built two
/// ways and counted under callgrind. Flags are checked before anything is built.
pub(crate) fn bench(rest: &[String]) -> Result<(), String> {
    let icount = rest.iter().any(|a| a == "--icount");
    let rest: Vec<String> = rest.iter().filter(|a| *a != "--icount").cloned().collect();
    if icount {
        check_flags(&rest, ICOUNT_FLAGS)?;
        if Command::new("valgrind").arg("--version").output().is_err() {
            return Err("--icount needs valgrind (Debian: apt-get install valgrind)".into());
        }
        let bins = build_variants(&["a", "b"])?;
        run_bench("icount", &bins, "icount-results.md", &rest)
    } else {
        check_flags(&rest, BENCH_FLAGS)?;
        let bins = build_variants(&["none", "a", "b", "c", "d"])?;
        run_bench("bench", &bins, "bench-results.md", &rest)
    }
}

/// The median (ns) criterion recorded for `group/name`.
fn criterion_median(target: &Path, group: &str, name: &str) -> Option<f64> {
    let path = target.join(format!("criterion/{group}/{name}/new/estimates.json"));
    let text = std::fs::read_to_string(path).ok()?;
    let at = text.find("\"median\"")?;
    let rest = &text[at..];
    let pe = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[pe..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '-' || *c == '+')
        .collect();
    num.parse().ok()
}

pub(crate) fn bench_alloc(rest: &[String]) -> Result<(), String> {
    let (_, target) = dirs();
    criterion_table(&target, rest)?;
    // Instruction counts: repeatable on a noisy machine.
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("(valgrind not installed: no instruction counts)");
        return Ok(());
    }
    icount_table(&bench_binary(&target, "alloc_icount")?)
}

/// Runs the criterion bench and prints its medians as ratios against `System`.
fn criterion_table(target: &Path, rest: &[String]) -> Result<(), String> {
    let mut args = vec![
        "bench",
        "-p",
        "leakscope",
        "--features",
        "enabled,dhat",
        "--bench",
        "alloc",
        "--",
    ];
    args.extend(rest.iter().map(String::as_str));
    cargo(&args, &[])?;
    println!(
        "\n| case | System | TrackingAlloc | ratio | sampling off | ratio | dhat::Alloc (profiling) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let groups = [
        "pair_16B",
        "pair_64B",
        "pair_1KiB",
        "pair_64KiB",
        "pair_mixed",
        "two_threads_16B",
        "two_threads_mixed",
        "realloc_grow_16B_to_64KiB",
    ];
    for g in groups {
        let sys = criterion_median(target, g, "system");
        let tr = criterion_median(target, g, "tracking");
        let un = criterion_median(target, g, "unsampled");
        let dh = criterion_median(target, g, "dhat");
        let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ns"));
        let ratio = |v: Option<f64>| match (v, sys) {
            (Some(v), Some(s)) => format!("{:.2}x", v / s),
            _ => "-".to_owned(),
        };
        println!(
            "| {g} | {} | {} | {} | {} | {} | {} | {} |",
            cell(sys),
            cell(tr),
            ratio(tr),
            cell(un),
            ratio(un),
            cell(dh),
            ratio(dh)
        );
    }
    Ok(())
}

/// Builds leakscope's benchmark `name` (with `enabled`) and finds its binary.
pub(crate) fn bench_binary(target: &Path, name: &str) -> Result<std::path::PathBuf, String> {
    cargo(
        &[
            "bench",
            "-p",
            "leakscope",
            "--features",
            "enabled",
            "--bench",
            name,
            "--no-run",
        ],
        &[],
    )?;
    let deps = target.join("release/deps");
    std::fs::read_dir(&deps)
        .map_err(|e| format!("{}: {e}", deps.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('-') && !rest.ends_with(".d"))
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .ok_or_else(|| format!("the {name} benchmark's binary was not found"))
}

/// Instructions callgrind counts for `pairs` alloc+free pairs.
fn instructions(bin: &Path, alloc: &str, size: &str, pairs: u32) -> Result<f64, String> {
    callgrind(
        bin,
        &[alloc, size, &pairs.to_string()],
        Path::new("/dev/null"),
    )
}

/// Runs `bin args` under callgrind (its profile written to `out`): the instructions it counted.
/// A run that failed is an error, not a figure (callgrind prints its total all the same).
pub(crate) fn callgrind(bin: &Path, args: &[&str], out: &Path) -> Result<f64, String> {
    let run = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bin)
        .args(args)
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    let err = String::from_utf8_lossy(&run.stderr);
    if !run.status.success() {
        return Err(format!(
            "{} failed under valgrind ({}):\n{err}",
            bin.display(),
            run.status
        ));
    }
    callgrind_total(&err)
}

/// The total of callgrind's `Collected : N` line in its `stderr`.
pub(crate) fn callgrind_total(stderr: &str) -> Result<f64, String> {
    stderr
        .lines()
        .find_map(|l| l.split_once("Collected :"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| format!("no callgrind total in:\n{stderr}"))
}

/// Instructions per pair: the difference of two run lengths, so start-up cancels out.
fn icount_table(bin: &Path) -> Result<(), String> {
    println!(
        "\n| case | System instr/pair | TrackingAlloc, sampling on | extra | sampling off | extra |"
    );
    println!("|---|---|---|---|---|---|");
    // `grow`: per growth of a block from 16 B to 64 KiB by doubling (12 reallocs), then freed.
    for size in ["16B", "64B", "1KiB", "mixed", "grow"] {
        let per = |alloc| -> Result<f64, String> {
            let (long, short) = (
                instructions(bin, alloc, size, 200_000)?,
                instructions(bin, alloc, size, 100_000)?,
            );
            Ok((long - short) / 100_000.0)
        };
        let (s, t, u) = (per("system")?, per("tracking")?, per("unsampled")?);
        println!(
            "| {size} | {s:.1} | {t:.1} | +{:.1} | {u:.1} | +{:.1} |",
            t - s,
            u - s
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_callgrinds_total() {
        assert_eq!(
            callgrind_total("==7== Events : Ir\n==7== Collected : 348041082\n"),
            Ok(348_041_082.0)
        );
        assert!(callgrind_total("==7== killed").is_err());
    }

    #[test]
    fn flags_are_checked_before_building() {
        assert!(check_flags(&args(&["--rounds", "5", "--size", "64"]), BENCH_FLAGS).is_ok());
        let e = check_flags(&args(&["--bogus", "1"]), BENCH_FLAGS).unwrap_err();
        assert!(e.starts_with("unknown flag --bogus"), "{e}");
        let e = check_flags(&args(&["--rounds"]), BENCH_FLAGS).unwrap_err();
        assert!(e.starts_with("--rounds needs a value"), "{e}");
        let e = check_flags(&args(&["--rounds", "--size", "1"]), BENCH_FLAGS).unwrap_err();
        assert!(e.starts_with("--rounds needs a value"), "{e}");
        let e = check_flags(&args(&["rounds"]), BENCH_FLAGS).unwrap_err();
        assert!(e.starts_with("unexpected argument"), "{e}");
        assert!(check_flags(&args(&["--messages", "100"]), ICOUNT_FLAGS).is_ok());
        assert!(check_flags(&args(&["--messages", "100"]), BENCH_FLAGS).is_err());
    }
}
