//! Run with: `cargo xtask bench --icount` (builds the server variants, then runs this).
//!
//! Server instructions per message under callgrind (see `loadgen::icount`): the echo server
//! built as (a) leakscope off and (b) leakscope on, clean and leaky routes, a fixed number of
//! messages, repeated; medians, spreads and the ratio b / a.
//!
//! Flags: `--bin-dir DIR` (the variant binaries `echo-server-{a,b}`), `--repeats N` (3),
//! `--clients N` (4), `--messages N` (per client in the long run; the short run does half:
//! 2000), `--warmup N` (round trips per client that every run does first, so that both runs
//! start warm and their difference is the steady state: 1000), `--per-connection N` (round trips per connection: 100), `--size BYTES` (1024),
//! `--out FILE` (also write the markdown there), `--keep DIR` (keep each run's callgrind file
//! there, for `callgrind_annotate`).

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use loadgen::args::Args;
use loadgen::icount::{self, Work};
use loadgen::report::spread;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const VARIANTS: [(&str, &str); 2] = [("a", "(a) leakscope off"), ("b", "(b) leakscope on")];
const ROUTES: [(&str, &str); 2] = [("clean", "/echo"), ("leaky", "/echo/leaky")];

const USAGE: &str = "usage: icount --bin-dir DIR [--repeats N (3)] [--clients N (4)] [--messages N (2000)]\n\
              [--warmup N (1000)] [--per-connection N (100)] [--size BYTES (1024)] [--out FILE] [--keep DIR]\n\
(normally run by cargo xtask bench --icount)";

struct Plan {
    bin_dir: PathBuf,
    repeats: usize,
    clients: usize,
    messages: u64,
    /// Round trips per client before the counted ones, in every run.
    warmup: u64,
    per_connection: u64,
    size: usize,
    out: Option<PathBuf>,
    /// Keep each run's callgrind file here (for `callgrind_annotate`).
    keep: Option<PathBuf>,
}

fn parse() -> Result<Plan, String> {
    let mut a = Args::parse(std::env::args().skip(1), &["help"])?;
    if a.switch("help") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let plan = Plan {
        bin_dir: PathBuf::from(
            a.string("bin-dir")
                .ok_or("--bin-dir DIR is required (cargo xtask bench --icount sets it)")?,
        ),
        repeats: a.get("repeats", 3, "a whole number of repeats")?,
        clients: a.get("clients", 4, "a whole number of clients")?,
        messages: a.get("messages", 2000, "a whole number of messages per client")?,
        warmup: a.get("warmup", 1000, "a whole number of warm-up messages")?,
        per_connection: a.get("per-connection", 100, "a whole number of round trips")?,
        size: a.get("size", 1024, "a size in bytes")?,
        out: a.string("out").map(PathBuf::from),
        keep: a.string("keep").map(PathBuf::from),
    };
    a.finish()?;
    if plan.repeats == 0 || plan.clients == 0 || plan.messages < 2 || plan.size == 0 {
        return Err(
            "--repeats, --clients and --size must be at least 1, --messages at least 2".into(),
        );
    }
    if let Some(dir) = &plan.keep {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--keep {}: cannot make the directory: {e}", dir.display()))?;
    }
    Ok(plan)
}

/// One server run under callgrind: ([instructions, outside libc's `memset`, outside it and
/// leakscope's clock thread's own work], messages).
async fn one(
    bin: &Path,
    route: &str,
    (warmup, w): (u64, &Work),
    keep: Option<&Path>,
) -> Result<([u64; 3], u64), String> {
    let name = format!(
        "callgrind.{}.{}.{}.out",
        bin.file_name().and_then(|n| n.to_str()).unwrap_or("server"),
        route.trim_start_matches('/').replace('/', "-"),
        w.messages_per_client
    );
    let out = match keep {
        Some(dir) => dir.join(name),
        None => std::env::temp_dir().join(format!("leakscope-icount-{}.out", std::process::id())),
    };
    let mut child = tokio::process::Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bin)
        .env("ECHO_ADDR", "127.0.0.1:0")
        .env("ECHO_WORKERS", "1")
        .env("LEAKSCOPE_GRACE_MS", "2000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start valgrind (install the Debian package valgrind): {e}"))?;
    let pid = child.id().ok_or("the server exited at once")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let err_text = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let addr = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(a) = l.strip_prefix("listening on ") {
                return Some(a.trim().to_owned());
            }
        }
        None
    })
    .await
    .map_err(|_| "the server did not start within 120 s under valgrind")?;
    let Some(addr) = addr else {
        // Its own words (and valgrind's) say why. It may still run (its output closed, or was
        // not text): stopped first, so that neither wait can hang.
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        let err = tokio::time::timeout(Duration::from_secs(30), err_text)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let lines: Vec<&str> = err.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        return Err(format!(
            "the server {} stopped before saying where it listens; its stderr ends:\n{}",
            bin.display(),
            tail.join("\n")
        ));
    };
    let w = Work {
        url: format!("ws://{addr}{route}"),
        ..w.clone()
    };
    if warmup > 0 {
        // Not counted apart: both runs of a case do it, so it cancels out of their difference,
        // and what is left is the steady state (the first stack walks of each call path read
        // their unwind rules, a one-time cost that otherwise lands in either run).
        icount::run(&Work {
            messages_per_client: warmup,
            ..w.clone()
        })
        .await?;
    }
    let messages = icount::run(&w).await?;
    // SIGINT: the server stops gracefully and callgrind prints its total.
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    if !status.success() {
        return Err("cannot signal the server".into());
    }
    tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .map_err(|_| "the server did not stop within 120 s of SIGINT")?
        .map_err(|e| e.to_string())?;
    let err = err_text.await.map_err(|e| e.to_string())?;
    let total = icount::collected(&err).ok_or_else(|| format!("no callgrind total in:\n{err}"))?;
    let annotate = |inclusive: &str| {
        std::process::Command::new("callgrind_annotate")
            .args([inclusive, "--threshold=100", "--auto=no"])
            .arg(&out)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| format!("callgrind_annotate (from the valgrind package): {e}"))
    };
    let memset = icount::memset_self(&annotate("--inclusive=no")?);
    let clock = icount::clock_thread_own(&annotate("--inclusive=yes")?).ok_or(
        "the clock thread's tick (leakscope::collector::drain_waiting) is not in the profile: \
         renamed? (see loadgen::icount)",
    )?;
    if keep.is_none() {
        let _ = std::fs::remove_file(&out);
    }
    let outside = total - memset.min(total);
    Ok(([total, outside, outside - clock.min(outside)], messages))
}

async fn run(plan: Plan) -> Result<String, String> {
    let work = |messages| Work {
        url: String::new(),
        clients: plan.clients,
        messages_per_client: messages,
        per_connection: plan.per_connection,
        size: plan.size,
    };
    let mut rows = String::new();
    for (route_name, route) in ROUTES {
        // Per variant: instructions per message, all, outside memset, and outside memset and
        // the clock thread's own work.
        let mut per: Vec<[Vec<f64>; 3]> = vec![Default::default(); VARIANTS.len()];
        for r in 0..plan.repeats {
            for (i, (v, _)) in VARIANTS.iter().enumerate() {
                let bin = plan.bin_dir.join(format!("echo-server-{v}"));
                let (short, long) = (work(plan.messages / 2), work(plan.messages));
                let keep = plan.keep.as_deref();
                let short = one(&bin, route, (plan.warmup, &short), keep).await?;
                let long = one(&bin, route, (plan.warmup, &long), keep).await?;
                if *v == "b" && long.0[1] == long.0[2] {
                    return Err(format!(
                        "no clock thread in the profile of {}: has leakscope's \
                         `clock::coarse::start` been renamed? (see loadgen::icount)",
                        bin.display()
                    ));
                }
                for (k, out) in per[i].iter_mut().enumerate() {
                    let pm = icount::per_message((short.0[k], short.1), (long.0[k], long.1))
                        .ok_or("the long run counted fewer instructions than the short one")?;
                    out.push(pm);
                }
                eprintln!(
                    "{route_name} {v} repeat {}: {:.0} instructions per message, {:.0} outside \
                     memset, {:.0} also outside the clock thread",
                    r + 1,
                    per[i][0][r],
                    per[i][1][r],
                    per[i][2][r]
                );
            }
        }
        let kinds = [
            "all",
            "outside memset",
            "outside memset and the clock thread",
        ];
        for (k, what) in kinds.iter().enumerate() {
            let ratios: Vec<f64> = per[1][k]
                .iter()
                .zip(&per[0][k])
                .map(|(b, a)| b / a)
                .collect();
            rows.push_str(&format!(
                "| {route_name} | {what} | {} | {} | {} |\n",
                spread(&per[0][k], 0),
                spread(&per[1][k], 0),
                spread(&ratios, 3),
            ));
        }
    }
    Ok(format!(
        "Server instructions per message (callgrind, one worker, {} clients in lockstep, {} B \
         messages, {} round trips per connection, {} warm-up round trips per client in every \
         run, (long - short) / {} messages, {} repeats; \
         median [min–max]; \"outside memset\": without libc memset's own instructions, \
         which valgrind counts per byte; \"and the clock thread\": also without what \
         leakscope's clock thread does on its own every 10 ms of wall-clock time (it applies \
         waiting task events too, which stay counted), a cost per second that callgrind's \
         slowdown turns into one per message):\n\n| route | instructions | {} | {} | ratio b / a |\n\
         |---|---|---|---|---|\n{rows}",
        plan.clients,
        plan.size,
        plan.per_connection,
        plan.warmup,
        plan.clients as u64 * (plan.messages - plan.messages / 2),
        plan.repeats,
        VARIANTS[0].1,
        VARIANTS[1].1,
    ))
}

fn main() -> ExitCode {
    let plan = match parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("icount: {e}");
            return ExitCode::from(2);
        }
    };
    let out = plan.out.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(run(plan)) {
        Ok(table) => {
            println!("{table}");
            if let Some(p) = out
                && let Err(e) = std::fs::write(&p, &table)
            {
                eprintln!("icount: cannot write {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("icount: {e}");
            ExitCode::FAILURE
        }
    }
}
