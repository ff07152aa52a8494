//! Formatting for humans and the rows shared by the pages and the live stream.

use std::collections::HashMap;

use leakscope::{ConnState, ConnectionInfo, Snapshot, TaskInfo};
use serde::Serialize;

/// How many orphan rows the overview and the live stream show (the rest are counted).
pub(crate) const ORPHAN_ROWS: usize = 100;

/// `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`, `3 d 04 h`.
pub(crate) fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {:02} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `12.3 s ago`, or `-` for `None`.
pub(crate) fn ago(now_ms: u64, at_ms: Option<u64>) -> String {
    match at_ms {
        Some(t) => format!("{} ago", duration_ms(now_ms.saturating_sub(t))),
        None => "-".to_owned(),
    }
}

/// How long a task lived: from spawn to its end, or to `now_ms` while alive.
pub(crate) fn lifetime(t: &TaskInfo, now_ms: u64) -> String {
    let end = t.ended_at_ms.unwrap_or(now_ms);
    duration_ms(end.saturating_sub(t.spawned_at_ms))
}

/// How long a task outlived its socket's close, or `-`.
pub(crate) fn outlived(t: &TaskInfo) -> String {
    t.outlived_close_ms.map_or("-".to_owned(), duration_ms)
}

/// A connection's state as the pages name it (and style it): `open`, `closed`, or `leaking`
/// for a closed connection that [`ConnectionInfo::is_leaking`] (a red row).
pub(crate) fn conn_state(c: &ConnectionInfo) -> &'static str {
    match c.state {
        ConnState::Open => "open",
        ConnState::Closed if c.is_leaking() => "leaking",
        ConnState::Closed => "closed",
    }
}

/// `zombie: peer left 3.2 s ago, never read` for a connection closed as a zombie (its peer
/// left by FIN or RST while nobody read the socket), else `None`.
pub(crate) fn zombie_text(now_ms: u64, c: &ConnectionInfo) -> Option<String> {
    if !c.zombie {
        return None;
    }
    Some(match c.zombie_since_ms.or(c.closed_at_ms) {
        Some(t) => format!("zombie: peer left {}, never read", ago(now_ms, Some(t))),
        None => "zombie: peer left, never read".to_owned(),
    })
}

/// `not read for 12.3 s` for an open connection with live tasks whose socket nobody reads
/// (`ConnectionInfo::not_read_for_ms`), else `None`.
pub(crate) fn unread_text(c: &ConnectionInfo) -> Option<String> {
    c.not_read_for_ms
        .map(|ms| format!("not read for {}", duration_ms(ms)))
}

/// A task's state in words, as every page shows it: [`TaskInfo::state_text`], except for a
/// shared global (alive past its connection's grace period, started lazily by it: not an
/// orphan), which says what it is.
pub(crate) fn task_state(t: &TaskInfo) -> String {
    if t.shared && !t.orphan {
        "shared global (started by this connection)".to_owned()
    } else {
        t.state_text()
    }
}

/// A spawn location without the cargo home prefix of dependencies:
/// `/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/axum-0.8.9/src/x.rs:1:2` becomes
/// `axum-0.8.9/src/x.rs:1:2`. Workspace paths are unchanged.
pub(crate) fn location(loc: &str) -> String {
    for marker in ["/registry/src/", "/git/checkouts/"] {
        if let Some(i) = loc.find(marker) {
            let rest = &loc[i + marker.len()..];
            if let Some(j) = rest.find('/') {
                return rest[j + 1..].to_owned();
            }
        }
    }
    loc.to_owned()
}

/// One orphan task with its connection, as the overview table and the live stream show it.
#[derive(Debug, Clone, Serialize, Hash)]
pub(crate) struct OrphanRow {
    pub task_id: u64,
    pub conn_id: u64,
    pub label: String,
    pub peer: String,
    pub name: String,
    pub spawned_at: String,
    /// Milliseconds since the connection's socket closed.
    pub since_close_ms: u64,
    /// Parked since the close, or still running (`TaskInfo::activity_text`), or `-`.
    pub activity: String,
}

impl OrphanRow {
    /// [`OrphanRow::since_close_ms`] for humans.
    pub(crate) fn since_close(&self) -> String {
        duration_ms(self.since_close_ms)
    }
}

/// Connections by id, for joining tasks to their connection.
pub(crate) fn conn_index(s: &Snapshot) -> HashMap<u64, &ConnectionInfo> {
    s.connections.iter().map(|c| (c.id, c)).collect()
}

/// The first `limit` orphans (the snapshot lists the longest-outlived first) and how many
/// orphan tasks the snapshot lists in all.
pub(crate) fn orphan_rows(s: &Snapshot, limit: usize) -> (Vec<OrphanRow>, u64) {
    let mut total = 0u64;
    let mut wanted = Vec::new();
    for t in s.orphans() {
        total += 1;
        if wanted.len() < limit {
            wanted.push(t);
        }
    }
    // A summary lists only the first orphans; the totals count all (evicted ones too).
    let total = total.max(s.totals.orphan_tasks);
    if wanted.is_empty() {
        return (Vec::new(), total);
    }
    let conns = conn_index(s);
    let rows = wanted
        .into_iter()
        .map(|t| {
            let c = conns.get(&t.conn_id);
            OrphanRow {
                task_id: t.id,
                conn_id: t.conn_id,
                label: c.map_or_else(|| "(evicted)".to_owned(), |c| c.label.to_string()),
                peer: c.and_then(|c| c.peer.as_deref()).unwrap_or("-").to_owned(),
                name: t.name.to_string(),
                spawned_at: location(&t.spawned_at),
                since_close_ms: t.outlived_close_ms.unwrap_or(0),
                activity: t.activity_text().unwrap_or_else(|| "-".to_owned()),
            }
        })
        .collect();
    (rows, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 * 1024 * 1024), "12.0 MiB");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_340), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(duration_ms(7_380_000), "2 h 03 min");
        assert_eq!(duration_ms(273_600_000), "3 d 04 h");
        assert_eq!(ago(5_000, Some(4_000)), "1.0 s ago");
        assert_eq!(ago(5_000, None), "-");
        let mut c = crate::testing::connection(7);
        assert_eq!((zombie_text(9_000, &c), unread_text(&c)), (None, None));
        c.zombie = true;
        c.zombie_since_ms = Some(5_800);
        c.not_read_for_ms = Some(12_340);
        assert_eq!(
            zombie_text(9_000, &c).as_deref(),
            Some("zombie: peer left 3.2 s ago, never read")
        );
        assert_eq!(unread_text(&c).as_deref(), Some("not read for 12.3 s"));
        assert_eq!(
            location(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/axum-0.8.9/src/a.rs:1:2"
            ),
            "axum-0.8.9/src/a.rs:1:2"
        );
        assert_eq!(
            location("examples/x/src/a.rs:3:4"),
            "examples/x/src/a.rs:3:4"
        );
    }
}
