//! The churn benchmark's clients (`src/bin/churn.rs`): workers open and close short clean
//! connections as fast as they can (a fraction of them ended by a TCP reset), while leaky
//! connections are mixed in at a fixed pace and their local addresses recorded, so the
//! verdict (`crate::verdict`) can find them in leakscope's snapshot by peer. `conn` is one
//! connection's life; `output` prints the results.

mod conn;
pub mod output;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use conn::{BYTES_ROUTE, CLEAN_ROUTE, Ending, FORWARDER_ROUTE, LEAKY_BYTES, ending_for};
use conn::{Failure, clean_once, leaky_once};

/// What to run.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// The chat server's socket address.
    pub server: SocketAddr,
    /// `ws://host:port` (no trailing slash); routes are appended.
    pub base: String,
    /// How long new connections are started.
    pub duration: Duration,
    /// Concurrent clean-connection loops.
    pub workers: usize,
    /// Fraction of clean connections ended by a TCP reset instead of a close frame.
    pub abrupt: f64,
    /// Fraction of leaky connections ended by a TCP reset.
    pub leaky_abrupt: f64,
    /// One bytes and one forwarder connection per interval.
    pub leaky_every: Duration,
    /// At most this many clean connections in total.
    pub max_connections: u64,
    /// A progress line per second on stderr.
    pub progress: bool,
}

/// What the clients did (clean and leaky).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// TCP connections established (each is one connection for the server), clean and leaky.
    pub tcp_connects: u64,
    /// Clean connections completed and ended with a close frame.
    pub clean_close_frame: u64,
    /// Clean connections completed and ended by a reset.
    pub clean_reset: u64,
    /// Clean close-frame endings where the server's close frame did not come within 2 s.
    pub close_timeouts: u64,
    /// The same for leaky connections (a leaked forwarder holds the socket: expected there).
    pub leaky_close_timeouts: u64,
    /// TCP connects that failed (the server never saw them).
    pub connect_errors: u64,
    /// Failures after the TCP connect (handshake, round trip, close), clean and leaky.
    pub errors: u64,
    /// The first few error messages.
    pub first_errors: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.tcp_connects += o.tcp_connects;
        self.clean_close_frame += o.clean_close_frame;
        self.clean_reset += o.clean_reset;
        self.close_timeouts += o.close_timeouts;
        self.leaky_close_timeouts += o.leaky_close_timeouts;
        self.connect_errors += o.connect_errors;
        self.errors += o.errors;
        for e in &o.first_errors {
            self.error_text(e.clone());
        }
    }

    fn error_text(&mut self, e: String) {
        if self.first_errors.len() < 5 {
            self.first_errors.push(e);
        }
    }

    /// Clean connections completed.
    pub fn clean(&self) -> u64 {
        self.clean_close_frame + self.clean_reset
    }

    fn record<T>(&mut self, r: &Result<T, Failure>) {
        match r {
            Ok(_) => self.tcp_connects += 1,
            Err(Failure::Connect(e)) => {
                self.connect_errors += 1;
                self.error_text(e.clone());
            }
            Err(Failure::After(e)) => {
                self.tcp_connects += 1;
                self.errors += 1;
                self.error_text(e.clone());
            }
        }
    }
}

/// One leaky connection.
#[derive(Debug, Clone)]
pub struct LeakyConn {
    /// [`BYTES_ROUTE`] or [`FORWARDER_ROUTE`].
    pub route: &'static str,
    /// The client's local address: the server's `peer` for it.
    pub peer: String,
    /// How it was ended.
    pub ending: Ending,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct ChurnResult {
    /// Counts (clean and leaky connections).
    pub tally: Tally,
    /// Leaky connections that completed their round trip and were closed.
    pub leaky: Vec<LeakyConn>,
    /// From the start until the last clean worker stopped: the span of the churn.
    pub churn_elapsed: Duration,
    /// From the start until the last connection (also leaky) was closed.
    pub elapsed: Duration,
}

async fn worker(cfg: Arc<ChurnConfig>, deadline: Instant, next: Arc<AtomicU64>) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < deadline {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= cfg.max_connections {
            break;
        }
        let ending = ending_for(n, cfg.abrupt);
        let r = clean_once(&cfg, ending).await;
        t.record(&r);
        match r {
            Ok(closed) => {
                match ending {
                    Ending::CloseFrame => t.clean_close_frame += 1,
                    Ending::Reset => t.clean_reset += 1,
                }
                t.close_timeouts += u64::from(!closed);
            }
            Err(Failure::Connect(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(Failure::After(_)) => {}
        }
    }
    t
}

/// Every interval, one bytes and one forwarder connection, each in its own task.
async fn leaky_loop(cfg: Arc<ChurnConfig>, deadline: Instant) -> (Tally, Vec<LeakyConn>) {
    let mut iv = tokio::time::interval(cfg.leaky_every);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut handles = Vec::new();
    let mut n = 0u64;
    loop {
        iv.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        for route in [BYTES_ROUTE, FORWARDER_ROUTE] {
            let cfg = cfg.clone();
            let ending = ending_for(n, cfg.leaky_abrupt);
            handles.push(tokio::spawn(async move {
                (route, ending, leaky_once(&cfg, route, ending).await)
            }));
        }
        n += 1;
    }
    let (mut t, mut made) = (Tally::default(), Vec::new());
    for h in handles {
        let Ok((route, ending, r)) = h.await else {
            t.errors += 1;
            continue;
        };
        t.record(&r);
        if let Ok((peer, closed)) = r {
            t.leaky_close_timeouts += u64::from(!closed);
            made.push(LeakyConn {
                route,
                peer,
                ending,
            });
        }
    }
    (t, made)
}

/// Runs the churn until the deadline, then waits for every connection to end.
pub async fn run(cfg: ChurnConfig) -> ChurnResult {
    let cfg = Arc::new(cfg);
    let started = Instant::now();
    let deadline = started + cfg.duration;
    let next = Arc::new(AtomicU64::new(0));
    let progress = cfg.progress.then(|| {
        let next = next.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            iv.tick().await;
            let mut last = 0;
            loop {
                iv.tick().await;
                let now = next.load(Ordering::Relaxed);
                eprint!(
                    "\r  [{:>3} s] {:>6} clean connections/s   ",
                    started.elapsed().as_secs(),
                    now - last
                );
                last = now;
            }
        })
    });
    let leaky = tokio::spawn(leaky_loop(cfg.clone(), deadline));
    let workers: Vec<_> = (0..cfg.workers)
        .map(|_| tokio::spawn(worker(cfg.clone(), deadline, next.clone())))
        .collect();
    let mut tally = Tally::default();
    for w in workers {
        match w.await {
            Ok(t) => tally.add(&t),
            Err(e) => {
                tally.error_text(format!("a worker failed: {e}"));
                tally.errors += 1;
            }
        }
    }
    let churn_elapsed = started.elapsed();
    let leaky = match leaky.await {
        Ok((t, made)) => {
            tally.add(&t);
            made
        }
        Err(e) => {
            tally.error_text(format!("the leaky loop failed: {e}"));
            tally.errors += 1;
            Vec::new()
        }
    };
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    ChurnResult {
        tally,
        leaky,
        churn_elapsed,
        elapsed,
    }
}
