//! The sampler: once a second it takes a snapshot, appends its totals to a bounded ring
//! (10 minutes at 1 s) for `GET /api/history`, and publishes the live summary that every open
//! `GET /api/events` stream sends. One sampler per process, shared by every dashboard router.
//!
//! It is a tokio task started by [`crate::serve`] or by the first request to a router, on that
//! request's runtime, and spawned untracked (it belongs to no connection); the snapshot itself
//! is taken on the blocking pool. If its runtime shuts down, the next request (or an open live
//! stream that sees no sample for two seconds) starts it again on the current runtime.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::summary::{Point, summary_json};
use crate::view::ORPHAN_ROWS;

/// Points kept: 10 minutes at one per second.
pub(crate) const CAPACITY: usize = 600;
/// Time between two samples.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// `GET /api/history`: the ring, column by column (the layout charts want), oldest first.
#[derive(Debug, Serialize)]
pub(crate) struct History {
    pub interval_ms: u64,
    pub capacity: usize,
    /// Sample times in Unix seconds (with milliseconds as the fraction).
    pub t: Vec<f64>,
    pub open_connections: Vec<u64>,
    pub live_tasks: Vec<u64>,
    pub orphan_tasks: Vec<u64>,
    pub live_bytes: Vec<u64>,
    pub retained_bytes: Vec<u64>,
}

struct Sampler {
    ring: Mutex<VecDeque<Point>>,
    live: watch::Sender<Option<Arc<str>>>,
    running: AtomicBool,
}

fn sampler() -> &'static Sampler {
    static SAMPLER: OnceLock<Sampler> = OnceLock::new();
    SAMPLER.get_or_init(|| Sampler {
        ring: Mutex::new(VecDeque::with_capacity(CAPACITY)),
        live: watch::Sender::new(None),
        running: AtomicBool::new(false),
    })
}

/// Clears `running` when the sampler task ends or is dropped (its runtime shut down).
struct Running(&'static Sampler);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

/// Starts the sampler on the current tokio runtime unless it is running. Outside a runtime it
/// does nothing (the next request inside one starts it).
pub(crate) fn ensure_running() {
    let s = sampler();
    if s.running.load(Ordering::Relaxed)
        || s.running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return;
    }
    let guard = Running(s);
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return; // `guard` drops: not running.
    };
    // Untracked: neither the task nor what it allocates belongs to the request's connection.
    leakscope::untracked(|| {
        handle.spawn(async move {
            let _running = guard;
            let mut every = tokio::time::interval(INTERVAL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                // Keep even the summary off the runtime's worker threads.
                let work = tokio::task::spawn_blocking(move || leakscope::untracked(|| sample(s)));
                if work.await.is_err() {
                    return; // the runtime is shutting down
                }
            }
        })
    });
}

fn sample(s: &Sampler) {
    // Exact totals and the first orphan rows, without materialising every task.
    let snap = leakscope::summary(ORPHAN_ROWS);
    let point = Point::of(&snap);
    {
        let mut ring = s.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(point);
    }
    match summary_json(&snap, point) {
        Ok(json) => {
            s.live.send_replace(Some(json.into()));
        }
        Err(e) => tracing::error!(target: "leakscope", "dashboard: live summary failed: {e}"),
    }
}

/// The latest live summary and every one after it (`None` until the first sample).
pub(crate) fn subscribe() -> watch::Receiver<Option<Arc<str>>> {
    sampler().live.subscribe()
}

/// A copy of the ring.
pub(crate) fn history() -> History {
    let ring = sampler().ring.lock().unwrap_or_else(|p| p.into_inner());
    let n = ring.len();
    let mut h = History {
        interval_ms: INTERVAL.as_millis() as u64,
        capacity: CAPACITY,
        t: Vec::with_capacity(n),
        open_connections: Vec::with_capacity(n),
        live_tasks: Vec::with_capacity(n),
        orphan_tasks: Vec::with_capacity(n),
        live_bytes: Vec::with_capacity(n),
        retained_bytes: Vec::with_capacity(n),
    };
    for p in ring.iter() {
        h.t.push(p.t_ms as f64 / 1000.0);
        h.open_connections.push(p.open_connections);
        h.live_tasks.push(p.live_tasks);
        h.orphan_tasks.push(p.orphan_tasks);
        h.live_bytes.push(p.live_bytes);
        h.retained_bytes.push(p.retained_bytes);
    }
    h
}
