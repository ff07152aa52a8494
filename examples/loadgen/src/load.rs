//! The clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// `ws://host:port/path`.
    pub url: String,
    /// Concurrent clients.
    pub clients: usize,
    /// How long to run.
    pub duration: Duration,
    /// Message size in bytes.
    pub size: usize,
    /// Close and reconnect after this many round trips (0: never).
    pub churn: u64,
    /// Fraction of closes that drop the TCP connection without a close frame.
    pub abrupt: f64,
    /// Print a progress line every second on stderr.
    pub progress: bool,
}

impl LoadConfig {
    /// Checks the values; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.url.starts_with("ws://") {
            return Err(format!("url {:?} must start with ws://", self.url));
        }
        if self.clients == 0 || self.clients > 10_000 {
            return Err(format!(
                "clients {} must be between 1 and 10000",
                self.clients
            ));
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(3600) {
            return Err("duration must be between 1 s and 1 h".into());
        }
        if self.size == 0 || self.size > 16 << 20 {
            return Err(format!(
                "size {} must be between 1 byte and 16 MiB",
                self.size
            ));
        }
        if !(0.0..=1.0).contains(&self.abrupt) {
            return Err(format!(
                "abrupt {} must be a fraction between 0 and 1",
                self.abrupt
            ));
        }
        Ok(())
    }
}

/// What happened.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Round trips completed.
    pub messages: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Round-trip latency in microseconds.
    pub latency_us: Histogram<u64>,
    /// Connections opened.
    pub connects: u64,
    /// Connections closed with a close frame / by dropping TCP.
    pub closes: (u64, u64),
    /// Failed connects, sends or receives.
    pub errors: u64,
}

impl LoadResult {
    /// Round trips per second.
    pub fn throughput(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

struct Client {
    latency: Histogram<u64>,
    connects: u64,
    closes: (u64, u64),
    errors: u64,
}

/// xorshift64*: deterministic per client, no dependency.
fn next_rand(state: &mut u64) -> f64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

async fn client(
    cfg: Arc<LoadConfig>,
    index: usize,
    deadline: Instant,
    done: Arc<AtomicU64>,
) -> Client {
    let mut c = Client {
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        connects: 0,
        closes: (0, 0),
        errors: 0,
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (index as u64 + 1);
    let payload = vec![0xa5u8; cfg.size];
    'outer: while Instant::now() < deadline {
        let mut ws = match tokio_tungstenite::connect_async(cfg.url.as_str()).await {
            Ok((ws, _)) => ws,
            Err(_) => {
                c.errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        c.connects += 1;
        let mut sent = 0u64;
        while Instant::now() < deadline && (cfg.churn == 0 || sent < cfg.churn) {
            let start = Instant::now();
            if ws.send(Message::binary(payload.clone())).await.is_err() {
                c.errors += 1;
                continue 'outer;
            }
            match ws.next().await {
                Some(Ok(_)) => {}
                _ => {
                    c.errors += 1;
                    continue 'outer;
                }
            }
            let us = start.elapsed().as_micros().max(1) as u64;
            let _ = c.latency.record(us.min(60_000_000));
            sent += 1;
            done.fetch_add(1, Ordering::Relaxed);
        }
        if next_rand(&mut rng) < cfg.abrupt {
            c.closes.1 += 1;
            drop(ws);
        } else {
            c.closes.0 += 1;
            let _ = ws.close(None).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
    }
    c
}

/// Runs the load. Connections are loopback-only by construction of the URLs we pass.
pub async fn run(cfg: LoadConfig) -> Result<LoadResult, String> {
    cfg.validate()?;
    let cfg = Arc::new(cfg);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + cfg.duration;
    let progress = if cfg.progress {
        let done = done.clone();
        let total = cfg.duration.as_secs();
        Some(tokio::spawn(async move {
            let mut last = 0;
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            iv.tick().await;
            loop {
                iv.tick().await;
                let now = done.load(Ordering::Relaxed);
                eprint!(
                    "\r  [{:>3}/{total} s] {:>8} msg/s   ",
                    started.elapsed().as_secs(),
                    now - last
                );
                last = now;
            }
        }))
    } else {
        None
    };
    let handles: Vec<_> = (0..cfg.clients)
        .map(|i| tokio::spawn(client(cfg.clone(), i, deadline, done.clone())))
        .collect();
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let (mut connects, mut closes, mut errors) = (0, (0, 0), 0);
    for h in handles {
        let c = h.await.map_err(|e| format!("a client task failed: {e}"))?;
        latency.add(&c.latency).map_err(|e| e.to_string())?;
        connects += c.connects;
        closes.0 += c.closes.0;
        closes.1 += c.closes.1;
        errors += c.errors;
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    Ok(LoadResult {
        messages: latency.len(),
        elapsed: started.elapsed(),
        latency_us: latency,
        connects,
        closes,
        errors,
    })
}
