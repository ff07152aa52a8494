//! Wall-clock time in Unix milliseconds, the unit of every timestamp in a snapshot.
//!
//! Reading the clock costs about 36 ns here, twice per tagged task; task timestamps use a
//! coarse clock instead (within 10 ms): a background thread (`leakscope-clock`, started with
//! the collector, only with the `enabled` feature) refreshes it every 10 ms. Connection open
//! and close times, and "now", read the clock itself.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(feature = "enabled")]
mod coarse {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    static COARSE: AtomicU64 = AtomicU64::new(0);

    /// Starts the ticker (once; if the thread cannot start, `coarse_ms` reads the clock).
    pub(crate) fn start() {
        if COARSE.load(Ordering::Relaxed) != 0 {
            return;
        }
        COARSE.store(super::now_ms(), Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("leakscope-clock".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_millis(10));
                    COARSE.store(super::now_ms(), Ordering::Relaxed);
                }
            });
        if spawned.is_err() {
            COARSE.store(0, Ordering::Relaxed);
        }
    }

    /// Now, within about 10 ms, in Unix milliseconds.
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
