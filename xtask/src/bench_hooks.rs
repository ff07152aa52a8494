//! `cargo xtask bench-hooks`: what leakscope's runtime hooks cost, in instructions (callgrind),
//! per spawn+await and per poll, inside a connection (tagged) and outside it, hooks off and on
//! (`instrument/benches/hooks.rs`, one worker).
//!
//! Each figure is the difference of two run lengths (100,000 and 200,000), so start-up cancels
//! out, repeated (`--repeats N`, 3 by default): median and [min–max]. glibc's `malloc` family is
//! counted apart. A spawn allocates tokio's task cell with 128-byte alignment
//! (`posix_memalign`), and what that costs depends on the heap's layout: in some runs it cost
//! twice as much as in others, up or down, with the same binary. The rest of the count repeats
//! to within an instruction.

use std::path::Path;
use std::process::Command;

use super::bench::{bench_binary, callgrind};
use super::dirs;

/// The two run lengths (tasks, or polls).
const SHORT: u32 = 100_000;
const LONG: u32 = 200_000;

/// One run's (instructions, glibc malloc's own instructions).
fn count(
    bin: &Path,
    (work, context): (&str, &str),
    hooks: &str,
    n: u32,
) -> Result<(f64, f64), String> {
    let out =
        std::env::temp_dir().join(format!("leakscope-bench-hooks-{}.out", std::process::id()));
    let n = n.to_string();
    let args = [
        "--rounds",
        "1",
        "--workers",
        "1",
        "--context",
        context,
        "--work",
        work,
        "--hooks",
        hooks,
        "--tasks",
        &n,
    ];
    let total = callgrind(bin, &args, &out)?;
    let annotate = Command::new("callgrind_annotate")
        .args(["--inclusive=no", "--threshold=100", "--auto=no"])
        .arg(&out)
        .output()
        .map_err(|e| format!("callgrind_annotate (from the valgrind package): {e}"))?;
    let _ = std::fs::remove_file(&out);
    if !annotate.status.success() {
        return Err(format!(
            "callgrind_annotate failed: {}",
            String::from_utf8_lossy(&annotate.stderr)
        ));
    }
    Ok((
        total,
        malloc_self(&String::from_utf8_lossy(&annotate.stdout)),
    ))
}

/// The own instructions of glibc's `malloc` family (`malloc/malloc.c`, `malloc/arena.c`) in a
/// `callgrind_annotate --inclusive=no` listing.
fn malloc_self(annotate: &str) -> f64 {
    annotate
        .lines()
        .filter(|l| l.contains("libc.so") && (l.contains("malloc/") || l.contains("arena.c")))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| n.replace(',', "").parse::<f64>().ok())
        .sum()
}

/// `median [min–max]`.
fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{:.0} [{:.0}–{:.0}]",
        median(v.clone()),
        v[0],
        v[v.len() - 1]
    )
}

/// The median (of an even count, the mean of the middle two).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n.is_multiple_of(2) {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    } else {
        v[n / 2]
    }
}

pub(crate) fn bench_hooks(rest: &[String]) -> Result<(), String> {
    let repeats = match rest {
        [] => 3,
        [flag, n] if flag == "--repeats" => n
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("--repeats takes a whole number above 0, not {n:?}"))?,
        _ => return Err("usage: cargo xtask bench-hooks [--repeats N]".into()),
    };
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err("bench-hooks needs valgrind (Debian: apt-get install valgrind)".into());
    }
    let (_, target) = dirs();
    let bin = bench_binary(&target, "hooks")?;
    println!(
        "\nInstructions per spawn+await and per poll, inside a connection (tagged) and outside \
         (untagged) (callgrind, one worker, \
         ({LONG} - {SHORT}) / {} per run, {repeats} repeats; median [min–max]; \"outside \
         malloc\": without glibc malloc's own instructions)\n",
        LONG - SHORT
    );
    println!(
        "| case | hooks off | hooks on | extra | ratio | off, outside malloc | on, outside malloc | extra outside malloc |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let cases = [
        ("spawn", "tagged", "tagged spawn+await"),
        ("spawn", "untagged", "untagged spawn+await"),
        ("polls", "tagged", "tagged poll"),
        ("polls", "untagged", "untagged poll"),
    ];
    for (work, context, what) in cases {
        // [off, on] x [all, outside malloc]: one figure per repeat.
        let mut per = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for r in 0..repeats {
            for (h, hooks) in ["off", "on"].into_iter().enumerate() {
                let (t0, m0) = count(&bin, (work, context), hooks, SHORT)?;
                let (t1, m1) = count(&bin, (work, context), hooks, LONG)?;
                let n = f64::from(LONG - SHORT);
                per[h][0].push((t1 - t0) / n);
                per[h][1].push(((t1 - m1) - (t0 - m0)) / n);
                eprintln!(
                    "{what}, hooks {hooks}, repeat {}: {:.1} instructions, {:.1} outside malloc",
                    r + 1,
                    per[h][0][r],
                    per[h][1][r]
                );
            }
        }
        let [off, on] = per;
        let (a, b) = (median(off[0].clone()), median(on[0].clone()));
        let (c, d) = (median(off[1].clone()), median(on[1].clone()));
        println!(
            "| {what} | {} | {} | +{:.0} | {:.3} | {} | {} | +{:.0} |",
            spread(off[0].clone()),
            spread(on[0].clone()),
            b - a,
            b / a,
            spread(off[1].clone()),
            spread(on[1].clone()),
            d - c
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_glibc_mallocs_own_lines() {
        let listing = "\
107,980,835 ( 9.64%)  ./malloc/./malloc/malloc.c:_int_malloc [/usr/lib/x86_64-linux-gnu/libc.so.6]
     72,281 ( 6.45%)  ./malloc/./malloc/arena.c:_int_free [/usr/lib/x86_64-linux-gnu/libc.so.6]
  1,000,000 ( 1.00%)  /work/instrument/src/heap/malloc/x.rs:leakscope::f [/tmp/hooks]
     28,800 ( 0.00%)  ./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]
";
        assert_eq!(malloc_self(listing), 107_980_835.0 + 72_281.0);
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), "2 [1–3]");
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
