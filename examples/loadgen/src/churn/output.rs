//! Printing the churn benchmark's results: a line per figure, the checks, and one JSON line
//! with everything.

use serde_json::json;

use super::{ChurnConfig, ChurnResult};
use crate::report;
use crate::verdict::{Check, Figures, Leaky, Snap};

impl ChurnResult {
    /// Clean and total (clean + leaky) closes per second over the churn's span.
    pub fn rates(&self) -> (f64, f64) {
        let secs = self.churn_elapsed.as_secs_f64();
        let clean = self.tally.clean();
        (
            clean as f64 / secs,
            (clean + self.leaky.len() as u64) as f64 / secs,
        )
    }
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Run<'a> {
    /// What was run.
    pub cfg: &'a ChurnConfig,
    /// What the clients did.
    pub result: &'a ChurnResult,
    /// The snapshot before the load.
    pub before: &'a Snap,
    /// What the snapshot after it says.
    pub figures: &'a Figures,
    /// The verdict.
    pub checks: &'a [Check],
    /// The server's (RSS, peak RSS) before the load, when its pid was given.
    pub rss_before: Option<(u64, u64)>,
    /// The same after the wait.
    pub rss_after: Option<(u64, u64)>,
}

/// Prints the load's figures.
pub fn load(r: &ChurnResult) {
    let t = &r.tally;
    let secs = r.churn_elapsed.as_secs_f64();
    let leaky = r.leaky.len() as u64;
    println!(
        "load: {} clean closes ({} close frame, {} reset) + {} leaky in {:.1} s = {:.0} clean \
         closes/s, {:.0} total closes/s (last leaky closed after {:.1} s)",
        t.clean(),
        t.clean_close_frame,
        t.clean_reset,
        leaky,
        secs,
        t.clean() as f64 / secs,
        (t.clean() + leaky) as f64 / secs,
        r.elapsed.as_secs_f64()
    );
    println!(
        "      {} TCP connections, {} connect errors, {} other errors; close frames not \
         answered within 2 s: {} clean, {} leaky (a leaked forwarder holds its socket)",
        t.tcp_connects, t.connect_errors, t.errors, t.close_timeouts, t.leaky_close_timeouts
    );
    for e in &t.first_errors {
        println!("      error: {e}");
    }
}

/// Prints the verdict and the JSON line; returns whether every check held.
pub fn verdict(run: &Run) -> bool {
    let Run {
        cfg: c,
        result: r,
        before,
        figures: f,
        checks,
        rss_before: rss0,
        rss_after: rss1,
    } = *run;
    let t = &r.tally;
    let secs = r.churn_elapsed.as_secs_f64();
    let (clean_rate, total_rate) = r.rates();
    println!(
        "leaky-bytes:  {} made, {} listed, {} flagged leaking_memory (by peer); {} flagged or \
         counted in totals",
        f.bytes.made, f.bytes.listed, f.bytes.leaking, f.bytes.counted
    );
    println!(
        "forwarder:    {} made, {} listed, {} with orphan_tasks >= 1 (by peer; {} also \
         leaking_memory); {} orphaned or counted in totals",
        f.forwarder.made,
        f.forwarder.listed,
        f.forwarder.orphaned,
        f.forwarder.leaking,
        f.forwarder.counted
    );
    println!(
        "clean:        {} listed, {} flagged",
        f.clean_listed, f.clean_flagged
    );
    for e in &f.clean_flagged_examples {
        println!("  flagged: {e}");
    }
    let d = &f.delta;
    println!(
        "totals (after - before): opened +{}, closed +{}, orphan_tasks +{}, \
         connections_leaking_memory +{}, evicted +{}, untracked +{}, open +{}",
        d.opened, d.closed, d.orphan_tasks, d.leaking, d.evicted, d.untracked, d.open
    );
    if let (Some((r0, _)), Some((r1, hwm))) = (rss0, rss1) {
        println!("{}", report::rss_line(r0, r1, hwm));
    }
    for k in checks {
        let mark = if k.ok { " ok " } else { "FAIL" };
        println!("  [{mark}] {}: {}", k.name, k.detail);
    }
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let ok = failed.is_empty();
    if ok {
        println!("churn: all {} checks hold", checks.len());
    } else {
        println!("churn: FAILED {} of {} checks", failed.len(), checks.len());
    }
    let leaky = |l: &Leaky| {
        json!({"made": l.made, "listed": l.listed, "leaking_memory": l.leaking,
               "orphaned": l.orphaned, "counted_in_totals": l.counted})
    };
    let line = json!({
        "ok": ok, "failed": failed,
        "duration_s": c.duration.as_secs(), "churn_s": secs,
        "elapsed_s": r.elapsed.as_secs_f64(), "workers": c.workers,
        "abrupt": c.abrupt, "leaky_every_ms": c.leaky_every.as_millis() as u64,
        "clean_closes": t.clean(), "clean_close_frame": t.clean_close_frame,
        "clean_reset": t.clean_reset, "leaky_closes": r.leaky.len(),
        "clean_closes_per_s": clean_rate, "total_closes_per_s": total_rate,
        "tcp_connects": t.tcp_connects, "connect_errors": t.connect_errors, "errors": t.errors,
        "close_timeouts": t.close_timeouts, "leaky_close_timeouts": t.leaky_close_timeouts,
        "leaky_bytes": leaky(&f.bytes), "forwarder": leaky(&f.forwarder),
        "clean_listed": f.clean_listed, "clean_flagged": f.clean_flagged,
        "delta": {"connections_opened": d.opened, "connections_closed": d.closed,
                  "orphan_tasks": d.orphan_tasks, "connections_leaking_memory": d.leaking,
                  "connections_evicted": d.evicted, "connections_untracked": d.untracked,
                  "open_connections": d.open},
        "mode": before.mode, "grace_ms": before.grace_ms,
        "retained_bytes_threshold": before.threshold,
        "rss_before": rss0.map(|r| r.0), "rss_after": rss1.map(|r| r.0),
        "rss_peak": rss1.map(|r| r.1),
    });
    println!("{line}");
    ok
}
