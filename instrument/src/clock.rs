//! Time in milliseconds on a Unix scale that never steps.
//!
//! Grace periods are judged on this clock, so it must not jump when NTP steps the wall clock:
//! an early step would hide orphans, a late one invent them. It is the wall clock read once,
//! at the first call, plus a monotonic [`Instant`] since then: timestamps look like Unix
//! milliseconds (what the dashboard and JSON show) but only ever move forward at the rate of
//! real time. After a wall-clock step the displayed times are off by the step; verdicts are
//! not.
//!
//! Reading it costs tens of nanoseconds; task timestamps use a coarse copy (within 10 ms)
//! refreshed by a background thread (`leakscope-clock`, started with the collector, only with
//! the `enabled` feature).

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock and the monotonic clock read at the same moment.
fn anchor() -> &'static (u64, Instant) {
    static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (wall, Instant::now())
    })
}

/// Now, in milliseconds on leakscope's clock: Unix milliseconds at the first call, then
/// monotonic (never steps back or forth with the wall clock).
pub(crate) fn now_ms() -> u64 {
    let (wall, at) = anchor();
    wall + at.elapsed().as_millis() as u64
}

#[cfg(feature = "enabled")]
mod coarse {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    static COARSE: AtomicU64 = AtomicU64::new(0);

    /// Starts the ticker (once; if the thread cannot start, `coarse_ms` reads the clock), which
    /// also calls `tick` every 10 ms (the collector applies its waiting task events there).
    pub(crate) fn start(tick: fn()) {
        if COARSE.load(Ordering::Relaxed) != 0 {
            return;
        }
        COARSE.store(super::now_ms(), Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("leakscope-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(10));
                    COARSE.store(super::now_ms(), Ordering::Relaxed);
                    tick();
                }
            });
        if spawned.is_err() {
            COARSE.store(0, Ordering::Relaxed);
        }
    }

    /// Now, within about 10 ms, on the same clock as [`super::now_ms`].
    #[inline]
    pub(crate) fn coarse_ms() -> u64 {
        match COARSE.load(Ordering::Relaxed) {
            0 => super::now_ms(),
            v => v,
        }
    }
}

#[cfg(feature = "enabled")]
pub(crate) use coarse::{coarse_ms, start as start_coarse};

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_is_unix_scaled_and_never_goes_back() {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let a = super::now_ms();
        assert!(a.abs_diff(wall) < 60_000, "{a} vs wall {wall}");
        let mut prev = a;
        for _ in 0..1000 {
            let t = super::now_ms();
            assert!(t >= prev);
            prev = t;
        }
    }
}
