//! Configuration: the [`Builder`], its defaults, and the `LEAKSCOPE_*` environment variables.

use std::time::Duration;

/// The effective configuration (durations serialize as `{secs, nanos}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Config {
    /// See [`Builder::grace`].
    pub grace: Duration,
    /// See [`Builder::retention`].
    pub retention: Duration,
    /// See [`Builder::max_closed_connections`].
    pub max_closed_connections: usize,
    /// See [`Builder::max_leaking_connections`].
    pub max_leaking_connections: usize,
    /// See [`Builder::max_ended_tasks_per_connection`].
    pub max_ended_tasks_per_connection: usize,
    /// See [`Builder::retained_bytes_threshold`].
    pub retained_bytes_threshold: u64,
    /// See [`Builder::max_tracked_connections`].
    pub max_tracked_connections: usize,
    /// See [`Builder::sample_bytes`].
    pub sample_bytes: u64,
    /// See [`Builder::unread_hint`].
    pub unread_hint: Duration,
    /// See [`Builder::tcp_keepalive`].
    pub tcp_keepalive: Option<Duration>,
    /// See [`Builder::zombie_scan`].
    pub zombie_scan: Duration,
    /// See [`Builder::events_per_connection`].
    pub events_per_connection: usize,
    /// See [`Builder::report`].
    pub report: Option<std::path::PathBuf>,
}

impl Config {
    /// By default, a task alive this long after its connection's socket closed is an orphan.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
    /// By default, a closed connection that leaks nothing is kept this long for the dashboard.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(60);
    /// By default, at most this many closed clean connections are kept.
    pub const DEFAULT_MAX_CLOSED_CONNECTIONS: usize = 1_000;
    /// By default, at most this many leaking connections (orphans or retained bytes) are kept with
    /// details; older ones are folded into the totals.
    pub const DEFAULT_MAX_LEAKING_CONNECTIONS: usize = 10_000;
    /// By default, the details of this many ended tasks are kept per connection.
    pub const DEFAULT_MAX_ENDED_TASKS_PER_CONNECTION: usize = 32;
    /// By default, a closed connection retaining more than this many bytes past its grace period
    /// is flagged as leaking memory.
    pub const DEFAULT_RETAINED_BYTES_THRESHOLD: u64 = 64 * 1024;
    /// By default, at most this many connections are tracked at once: open, awaiting their verdict
    /// (closed, within the grace period) or kept closed. Each slot costs 40 bytes of counters,
    /// allocated 4,096 at a time as needed (at most 10 MiB here).
    pub const DEFAULT_MAX_TRACKED_CONNECTIONS: usize = 1 << 18;
    /// By default, one allocation is sampled (with its call stack) per this many bytes on
    /// average, for the allocation sites of retained bytes.
    pub const DEFAULT_SAMPLE_BYTES: u64 = 512 * 1024;
    /// By default, an open connection with live tasks whose socket nobody has been reading
    /// for this long gets a "not read for N s" hint.
    pub const DEFAULT_UNREAD_HINT: Duration = Duration::from_secs(30);
    /// By default, the kernel's TCP table is read this often while sockets are watched for
    /// zombies (a zombie is found within about three scans of its peer's close).
    pub const DEFAULT_ZOMBIE_SCAN: Duration = Duration::from_millis(250);
    /// By default, the last this many `tracing` events emitted inside a connection are kept
    /// with it (with [`crate::layer`] installed).
    pub const DEFAULT_EVENTS_PER_CONNECTION: usize = 16;
    /// At most this many events are kept per connection, whatever is configured.
    pub const MAX_EVENTS_PER_CONNECTION: u64 = 1_024;
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace: Config::DEFAULT_GRACE,
            retention: Config::DEFAULT_RETENTION,
            max_closed_connections: Config::DEFAULT_MAX_CLOSED_CONNECTIONS,
            max_leaking_connections: Config::DEFAULT_MAX_LEAKING_CONNECTIONS,
            max_ended_tasks_per_connection: Config::DEFAULT_MAX_ENDED_TASKS_PER_CONNECTION,
            retained_bytes_threshold: Config::DEFAULT_RETAINED_BYTES_THRESHOLD,
            max_tracked_connections: Config::DEFAULT_MAX_TRACKED_CONNECTIONS,
            sample_bytes: Config::DEFAULT_SAMPLE_BYTES,
            unread_hint: Config::DEFAULT_UNREAD_HINT,
            tcp_keepalive: None,
            zombie_scan: Config::DEFAULT_ZOMBIE_SCAN,
            events_per_connection: Config::DEFAULT_EVENTS_PER_CONNECTION,
            report: None,
        }
    }
}

/// An error from configuring leakscope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// [`Builder::install`] was called after leakscope had already started.
    AlreadyInstalled,
    /// A value is out of its range.
    Invalid(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::AlreadyInstalled => f.write_str(
                "leakscope is already configured: call Builder::install once, before the first \
                 connection is tracked",
            ),
            ConfigError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Configures leakscope before the first connection is tracked.
///
/// ```
/// use std::time::Duration;
/// let cfg = leakscope::Builder::new().grace(Duration::from_millis(500)).config();
/// assert_eq!(cfg.grace, Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
    warnings: Vec<String>,
}

impl Builder {
    /// Defaults, ignoring the environment.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Defaults overridden by `LEAKSCOPE_GRACE_MS`, `LEAKSCOPE_RETENTION_MS`,
    /// `LEAKSCOPE_MAX_CLOSED`, `LEAKSCOPE_MAX_LEAKING`, `LEAKSCOPE_RETAINED_BYTES` and
    /// `LEAKSCOPE_MAX_TRACKED`, `LEAKSCOPE_SAMPLE_BYTES`, `LEAKSCOPE_UNREAD_HINT_MS` and
    /// `LEAKSCOPE_TCP_KEEPALIVE_SECS` (0: off), `LEAKSCOPE_ZOMBIE_SCAN_MS` (0: off),
    /// `LEAKSCOPE_EVENTS_PER_CONNECTION` (0: off) and `LEAKSCOPE_REPORT` (a path).
    /// A variable that does not parse is ignored with a warning (printed and shown in the
    /// snapshot); the default stays.
    pub fn from_env() -> Self {
        let mut b = Builder::new();
        b.apply_env(|k| std::env::var(k).ok());
        b
    }

    /// [`Builder::from_env`] with a custom lookup (for tests).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> &mut Self {
        let mut num = |key: &str, min: u64| -> Option<u64> {
            let raw = get(key)?;
            match raw.trim().parse::<u64>() {
                Ok(v) if v >= min => Some(v),
                _ => {
                    let msg = format!(
                        "{key}={raw:?} is not a whole number >= {min}; using the default instead"
                    );
                    eprintln!("leakscope: {msg}");
                    self.warnings.push(msg);
                    None
                }
            }
        };
        if let Some(v) = num("LEAKSCOPE_GRACE_MS", 0) {
            self.config.grace = Duration::from_millis(v);
        }
        if let Some(v) = num("LEAKSCOPE_RETENTION_MS", 0) {
            self.config.retention = Duration::from_millis(v);
        }
        if let Some(v) = num("LEAKSCOPE_MAX_CLOSED", 1) {
            self.config.max_closed_connections = v as usize;
        }
        if let Some(v) = num("LEAKSCOPE_MAX_LEAKING", 1) {
            self.config.max_leaking_connections = v as usize;
        }
        if let Some(v) = num("LEAKSCOPE_RETAINED_BYTES", 0) {
            self.config.retained_bytes_threshold = v;
        }
        if let Some(v) = num("LEAKSCOPE_SAMPLE_BYTES", 0) {
            self.config.sample_bytes = v;
        }
        if let Some(v) = num("LEAKSCOPE_UNREAD_HINT_MS", 1) {
            self.config.unread_hint = Duration::from_millis(v);
        }
        if let Some(v) = num("LEAKSCOPE_ZOMBIE_SCAN_MS", 0) {
            self.config.zombie_scan = Duration::from_millis(v);
        }
        if let Some(v) = num("LEAKSCOPE_TCP_KEEPALIVE_SECS", 0) {
            self.config.tcp_keepalive = (v > 0).then(|| Duration::from_secs(v));
        }
        if let Some(v) = num("LEAKSCOPE_MAX_TRACKED", 16) {
            self.config.max_tracked_connections = v.min(1 << 24) as usize;
        }
        if let Some(v) = num("LEAKSCOPE_EVENTS_PER_CONNECTION", 0) {
            self.config.events_per_connection = v.min(Config::MAX_EVENTS_PER_CONNECTION) as usize;
        }
        match get("LEAKSCOPE_REPORT") {
            Some(p) if p.trim().is_empty() => {
                let msg = "LEAKSCOPE_REPORT is set but empty: no report file will be written \
                           (give it a path, e.g. LEAKSCOPE_REPORT=leakscope-report.json)"
                    .to_owned();
                eprintln!("leakscope: {msg}");
                self.warnings.push(msg);
            }
            Some(p) => self.config.report = Some(p.into()),
            None => {}
        }
        self
    }

    /// How long a task may outlive its connection's socket before it is an orphan.
    /// By default, [`Config::DEFAULT_GRACE`].
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// How long a closed connection that leaks nothing stays visible.
    /// By default, [`Config::DEFAULT_RETENTION`].
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config.retention = retention;
        self
    }

    /// How many closed clean connections are kept at most.
    /// By default, [`Config::DEFAULT_MAX_CLOSED_CONNECTIONS`]. Values below 1 become 1.
    pub fn max_closed_connections(mut self, n: usize) -> Self {
        self.config.max_closed_connections = n.max(1);
        self
    }

    /// How many leaking connections keep their details; older ones are folded into totals.
    /// By default, [`Config::DEFAULT_MAX_LEAKING_CONNECTIONS`]. Values below 1 become 1.
    pub fn max_leaking_connections(mut self, n: usize) -> Self {
        self.config.max_leaking_connections = n.max(1);
        self
    }

    /// How many ended tasks keep their details per connection.
    /// By default, [`Config::DEFAULT_MAX_ENDED_TASKS_PER_CONNECTION`].
    pub fn max_ended_tasks_per_connection(mut self, n: usize) -> Self {
        self.config.max_ended_tasks_per_connection = n;
        self
    }

    /// Bytes a closed connection may keep live past its grace period before it is flagged as
    /// leaking memory. By default, [`Config::DEFAULT_RETAINED_BYTES_THRESHOLD`].
    pub fn retained_bytes_threshold(mut self, bytes: u64) -> Self {
        self.config.retained_bytes_threshold = bytes;
        self
    }

    /// How many connections are tracked at once (open, within their grace period, or kept
    /// closed). When every one is open or awaiting its verdict, new connections are counted
    /// but not tracked, and the snapshot warns. By default,
    /// [`Config::DEFAULT_MAX_TRACKED_CONNECTIONS`]; clamped to 16..=2^24.
    pub fn max_tracked_connections(mut self, n: usize) -> Self {
        self.config.max_tracked_connections = n.clamp(16, 1 << 24);
        self
    }

    /// Mean bytes between two sampled allocations (geometric by bytes, as jemalloc's
    /// `lg_prof_sample`): each sample keeps the block's owner and call stack while it is live,
    /// so a connection's retained bytes come with where they were allocated. 0 turns sampling
    /// off. By default, [`Config::DEFAULT_SAMPLE_BYTES`]. Install it before the threads that
    /// matter allocate: a thread draws its first countdown with the interval in force then.
    pub fn sample_bytes(mut self, bytes: u64) -> Self {
        self.config.sample_bytes = bytes;
        self
    }

    /// How long an open connection with live tasks may go without anyone reading its socket
    /// before the snapshot hints at it ("not read for N s": its peer may be gone while a task
    /// holds the socket). By default, [`Config::DEFAULT_UNREAD_HINT`].
    pub fn unread_hint(mut self, after: Duration) -> Self {
        self.config.unread_hint = after;
        self
    }

    /// Turns TCP keepalive on for the sockets leakscope holds (the `serve` listener wrapper,
    /// `io::track` of a TCP stream), probing after `idle` without traffic and every `idle`
    /// after that: a peer that vanished without FIN or RST (cable, VM gone) is then reset by
    /// the kernel and found as a zombie. Off by default. `LEAKSCOPE_TCP_KEEPALIVE_SECS`.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.config.tcp_keepalive = idle;
        self
    }

    /// How often the zombie watcher reads the kernel's TCP table while sockets are watched
    /// (see the README's "zombie sockets"): each scan costs kernel time in proportion to the
    /// host's TCP sockets (measured in docs/benchmarks.md); a zombie is found within about
    /// three scans of its peer's close. `Duration::ZERO` turns the watcher off. By default,
    /// [`Config::DEFAULT_ZOMBIE_SCAN`].
    pub fn zombie_scan(mut self, every: Duration) -> Self {
        self.config.zombie_scan = every;
        self
    }

    /// How many of the last `tracing` events its code emitted (its handler, its tasks, with
    /// [`crate::layer`] installed; `DEBUG` and above, not tokio's own) are kept with a
    /// connection: level, target, message and fields (each cut at 256 bytes), shown
    /// on its dashboard page and kept while a leaking connection is kept, so a red row comes
    /// with what the connection did before it closed. 0 turns it off; at most
    /// [`Config::MAX_EVENTS_PER_CONNECTION`]. By default,
    /// [`Config::DEFAULT_EVENTS_PER_CONNECTION`]. `LEAKSCOPE_EVENTS_PER_CONNECTION`.
    pub fn events_per_connection(mut self, n: usize) -> Self {
        self.config.events_per_connection = n.min(Config::MAX_EVENTS_PER_CONNECTION as usize);
        self
    }

    /// Where the post-mortem report goes: the JSON of `/api/report` at `path`, and beside it
    /// the same report as one self-contained HTML file (`path` with `.html`) that renders
    /// offline. `leakscope-dashboard` writes it when its server or router shuts down
    /// gracefully, and on demand (`POST /api/report/save`, `write_report`). `LEAKSCOPE_REPORT`.
    pub fn report(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.report = Some(path.into());
        self
    }

    /// The configuration this builder would install.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// Warnings collected while reading the environment.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Makes this the process-wide configuration. Call it once, before the first connection
    /// is tracked; afterwards it returns [`ConfigError::AlreadyInstalled`] and changes nothing.
    /// With the `enabled` feature off it does nothing and returns `Ok`.
    pub fn install(self) -> Result<(), ConfigError> {
        #[cfg(feature = "enabled")]
        {
            crate::collector::install(self.config, self.warnings)
        }
        #[cfg(not(feature = "enabled"))]
        {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_env_values_are_reported_and_defaults_kept() {
        let mut b = Builder::new();
        b.apply_env(|k| match k {
            "LEAKSCOPE_GRACE_MS" => Some("five".into()),
            "LEAKSCOPE_RETENTION_MS" => Some(" 250 ".into()),
            "LEAKSCOPE_MAX_CLOSED" => Some("0".into()),
            "LEAKSCOPE_REPORT" => Some(" ".into()),
            "LEAKSCOPE_EVENTS_PER_CONNECTION" => Some("100000".into()),
            _ => None,
        });
        let cfg = b.config();
        assert_eq!(cfg.grace, Config::DEFAULT_GRACE);
        assert_eq!(cfg.retention, Duration::from_millis(250));
        assert_eq!(
            cfg.max_closed_connections,
            Config::DEFAULT_MAX_CLOSED_CONNECTIONS
        );
        assert_eq!(b.warnings().len(), 3, "{:?}", b.warnings());
        assert!(b.warnings()[0].contains("LEAKSCOPE_GRACE_MS"));
        assert!(b.warnings()[2].contains("LEAKSCOPE_REPORT"));
        assert_eq!(cfg.report, None);
        assert_eq!(cfg.events_per_connection, 1_024, "clamped to the maximum");
        let mut b = Builder::new();
        b.apply_env(|k| (k == "LEAKSCOPE_REPORT").then(|| "out/r.json".into()));
        assert_eq!(b.config().report, Some("out/r.json".into()));
    }
}
