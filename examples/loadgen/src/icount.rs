//! `cargo xtask bench --icount`: server instructions per message, counted by callgrind.
//!
//! Wall clock on a shared 2-core box swings by ±40% from one round to the next; instructions
//! do not. The echo server runs under `valgrind --tool=callgrind` with one worker; a fixed
//! number of messages round-trips through it (clients in lockstep: send, wait for the echo),
//! then SIGINT stops it gracefully and callgrind prints the instructions it counted. Two runs
//! of different lengths per case, each after the same warm-up, so start-up, shutdown and
//! first-time work (the first stack walk of each call path reads its unwind rules) cancel
//! out: `(instructions(long) - instructions(short)) / (messages(long) - messages(short))`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// A fixed amount of work.
#[derive(Debug, Clone)]
pub struct Work {
    /// `ws://host:port/path`.
    pub url: String,
    /// Clients at once, each in lockstep.
    pub clients: usize,
    /// Round trips per client in total.
    pub messages_per_client: u64,
    /// Round trips per connection before a clean close and a new connection (0: one
    /// connection per client).
    pub per_connection: u64,
    /// Message size in bytes.
    pub size: usize,
}

/// Round-trips exactly `clients * messages_per_client` messages; fails on any error (a count
/// that is not exact would not be a figure).
pub async fn run(w: &Work) -> Result<u64, String> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..w.clients {
        let w = w.clone();
        set.spawn(async move { client(&w).await });
    }
    let mut total = 0;
    while let Some(r) = set.join_next().await {
        total += r.map_err(|e| format!("a client panicked: {e}"))??;
    }
    Ok(total)
}

async fn client(w: &Work) -> Result<u64, String> {
    let payload = vec![0xa5u8; w.size];
    let mut done = 0u64;
    while done < w.messages_per_client {
        let (mut ws, _) = tokio_tungstenite::connect_async(w.url.as_str())
            .await
            .map_err(|e| format!("connect {}: {e}", w.url))?;
        let mut on_this = 0u64;
        while done < w.messages_per_client && (w.per_connection == 0 || on_this < w.per_connection)
        {
            ws.send(Message::binary(payload.clone()))
                .await
                .map_err(|e| format!("send: {e}"))?;
            match tokio::time::timeout(Duration::from_secs(120), ws.next()).await {
                Ok(Some(Ok(_))) => {}
                other => return Err(format!("no echo: {other:?}")),
            }
            done += 1;
            on_this += 1;
        }
        ws.close(None).await.map_err(|e| format!("close: {e}"))?;
        while let Some(Ok(_)) = ws.next().await {}
    }
    Ok(done)
}

/// The total of callgrind's `Collected : N` line in `stderr`.
pub fn collected(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.split_once("Collected :"))
        .and_then(|(_, n)| n.trim().parse().ok())
}

/// The instructions `callgrind_annotate --inclusive=no` output attributes to libc's `memset`
/// (its own cost, callees excluded). valgrind counts each iteration of `rep stosb` as an
/// instruction, so a large `memset` (tungstenite zeroes its read buffer on every read)
/// weighs a byte per instruction here, far more than it costs a real CPU.
pub fn memset_self(annotate: &str) -> u64 {
    sum_of(annotate, |l| l.contains("memset") && l.contains("libc.so"))
}

/// The sum of the first column (instructions, with thousands separators) of the lines of a
/// `callgrind_annotate` listing that `keep` keeps.
fn sum_of(annotate: &str, keep: impl Fn(&str) -> bool) -> u64 {
    annotate
        .lines()
        .filter(|l| keep(l))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| n.replace(',', "").parse::<u64>().ok())
        .sum()
}

/// The function leakscope's clock thread runs (`instrument/src/clock.rs`), and the tick it calls
/// every 10 ms, which applies waiting task events: work that is the messages', kept in.
const CLOCK_THREAD: &str = "leakscope::clock::coarse::start::{{closure}}";
const TICK_WORK: &str = "leakscope::collector::drain_waiting";

/// The clock thread's own instructions, from `callgrind_annotate --inclusive=yes --auto=no`:
/// everything its closure did (every source file's line of it: inlined code is listed per
/// file), less the waiting task events it applied. It wakes every 10 ms of wall-clock time,
/// so per message it weighs as much more than on a real CPU as callgrind is slower: a cost
/// per second, not per message.
///
/// `None` when the thread ran but its tick's work is not found (renamed?): subtracting nothing
/// would count the messages' task events as the clock's.
pub fn clock_thread_own(annotate_inclusive: &str) -> Option<u64> {
    let sum = |name: &str| {
        let suffix = format!(":{name}");
        sum_of(annotate_inclusive, |l| {
            !l.contains("=>") && l.split(' ').any(|w| w.ends_with(&suffix))
        })
    };
    let (thread, tick) = (sum(CLOCK_THREAD), sum(TICK_WORK));
    (thread == 0 || tick != 0).then(|| thread.saturating_sub(tick))
}

/// Instructions per message from a short and a long run.
pub fn per_message(short: (u64, u64), long: (u64, u64)) -> Option<f64> {
    let (di, dm) = (long.0.checked_sub(short.0)?, long.1.checked_sub(short.1)?);
    (dm > 0).then(|| di as f64 / dm as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrinds_total() {
        let err = "==12== Callgrind, a call-graph generating cache profiler\n\
                   ==12== Events    : Ir\n==12== Collected : 123456789\n==12==\n==12== I   refs:      123,456,789\n";
        assert_eq!(collected(err), Some(123_456_789));
        assert_eq!(collected("no total here"), None);
        let annotate = "471,374,814 (96.44%)  ./string/memset-vec-unaligned-erms.S:__memset_avx2_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]\n\
                        796,253 ( 0.16%)  ./string/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]\n\
                        488 ( 0.00%)  ./string/memset-vec-unaligned-erms.S:memset [/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2]\n";
        assert_eq!(memset_self(annotate), 471_374_814);
        let inclusive = "    270,019 ( 0.03%)  /work/main/instrument/src/clock.rs:leakscope::clock::coarse::start::{{closure}} [/tmp/echo-server-b]\n\
                           6,822 ( 0.00%)  /work/main/instrument/src/clock.rs:leakscope::clock::coarse::start [/tmp/echo-server-b]\n\
                           5,005 ( 0.00%)  /rustc/x/library/core/src/time.rs:leakscope::clock::coarse::start::{{closure}}\n\
                          58,730 ( 0.01%)  /work/main/instrument/src/collector/mod.rs:leakscope::collector::drain_waiting [/tmp/echo-server-b]\n\
                           6,822 ( 0.00%)  => /work/main/instrument/src/clock.rs:leakscope::clock::coarse::start::{{closure}} (1x)\n";
        assert_eq!(clock_thread_own(inclusive), Some(270_019 + 5_005 - 58_730));
        assert_eq!(clock_thread_own("no clock thread"), Some(0));
        let no_tick = inclusive
            .lines()
            .filter(|l| !l.contains("drain_waiting"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            clock_thread_own(&no_tick),
            None,
            "the tick's work must be found"
        );
        assert_eq!(per_message((1_000, 10), (3_000, 30)), Some(100.0));
        assert_eq!(per_message((3_000, 30), (1_000, 10)), None);
    }
}
