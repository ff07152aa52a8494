//! The churn benchmark's verdict: what leakscope's `/api/snapshot` says about the connections
//! the clients made (`crate::churn`), leaky ones found by peer address, totals compared as
//! deltas between a snapshot before and one after the load.

use std::collections::HashMap;

use serde_json::Value;

use crate::churn::{BYTES_ROUTE, FORWARDER_ROUTE, LeakyConn};

/// The snapshot's exact totals this benchmark compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// `totals.connections_opened`.
    pub opened: u64,
    /// `totals.connections_closed`.
    pub closed: u64,
    /// `totals.orphan_tasks`.
    pub orphan_tasks: u64,
    /// `totals.connections_leaking_memory`.
    pub leaking: u64,
    /// `totals.connections_evicted`.
    pub evicted: u64,
    /// `totals.connections_untracked`.
    pub untracked: u64,
    /// `totals.open_connections`.
    pub open: u64,
}

/// One entry of `connections[]`.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// The route (or `http` for a connection that never upgraded).
    pub label: String,
    /// The client's address.
    pub peer: String,
    /// `closed` or `open`.
    pub state: String,
    /// Orphan tasks of this connection.
    pub orphan_tasks: u64,
    /// Retained bytes.
    pub retained_bytes: u64,
    /// Flagged as leaking memory.
    pub leaking_memory: bool,
}

impl Conn {
    fn flagged(&self) -> bool {
        self.leaking_memory || self.orphan_tasks > 0
    }
}

impl Snap {
    /// (listed connections leaking memory, orphan tasks of listed connections).
    fn listed_flags(&self) -> (u64, u64) {
        let leaking = self.conns.iter().filter(|c| c.leaking_memory).count();
        (
            leaking as u64,
            self.conns.iter().map(|c| c.orphan_tasks).sum(),
        )
    }
}

/// The parts of a snapshot the verdict needs.
#[derive(Debug, Clone, Default)]
pub struct Snap {
    /// `mode`.
    pub mode: String,
    /// `grace_ms`.
    pub grace_ms: u64,
    /// `retained_bytes_threshold`.
    pub threshold: u64,
    /// `totals`.
    pub totals: Totals,
    /// `connections[]`.
    pub conns: Vec<Conn>,
}

/// Parses `/api/snapshot`'s JSON.
pub fn parse(body: &str) -> Result<Snap, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("snapshot: {e}"))?;
    let n = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_u64);
    let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let need = |p: &str| n(&v, p).ok_or(format!("snapshot: no number at {p}"));
    let totals = Totals {
        opened: need("/totals/connections_opened")?,
        closed: need("/totals/connections_closed")?,
        orphan_tasks: need("/totals/orphan_tasks")?,
        leaking: need("/totals/connections_leaking_memory")?,
        evicted: n(&v, "/totals/connections_evicted").unwrap_or(0),
        untracked: n(&v, "/totals/connections_untracked").unwrap_or(0),
        open: n(&v, "/totals/open_connections").unwrap_or(0),
    };
    let conns = v
        .get("connections")
        .and_then(Value::as_array)
        .ok_or("snapshot: no connections[]")?
        .iter()
        .map(|c| Conn {
            label: s(c, "/label").unwrap_or_default(),
            peer: s(c, "/peer").unwrap_or_default(),
            state: s(c, "/state").unwrap_or_default(),
            orphan_tasks: n(c, "/orphan_tasks").unwrap_or(0),
            retained_bytes: n(c, "/retained_bytes").unwrap_or(0),
            leaking_memory: c.get("leaking_memory").and_then(Value::as_bool) == Some(true),
        })
        .collect();
    Ok(Snap {
        mode: s(&v, "/mode").unwrap_or_default(),
        grace_ms: need("/grace_ms")?,
        threshold: n(&v, "/retained_bytes_threshold").unwrap_or(0),
        totals,
        conns,
    })
}

/// Per-route figures for the leaky connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Leaky {
    /// Completed by the client.
    pub made: u64,
    /// Found in `connections[]` (by label and peer).
    pub listed: u64,
    /// Listed and flagged `leaking_memory`.
    pub leaking: u64,
    /// Listed with `orphan_tasks >= 1`.
    pub orphaned: u64,
    /// Flagged (bytes: leaking memory; forwarder: orphaned), listed or not: the listed flagged
    /// ones plus the unlisted ones the totals have room for (an upper bound).
    pub counted: u64,
}

/// Everything the verdict found.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// `/ws/leaky/bytes`.
    pub bytes: Leaky,
    /// `/ws/leaky/forwarder`.
    pub forwarder: Leaky,
    /// Listed connections not on a leaky route (the clean ones).
    pub clean_listed: u64,
    /// ... of which flagged (orphan tasks or leaking memory).
    pub clean_flagged: u64,
    /// A few of them, for the report.
    pub clean_flagged_examples: Vec<String>,
    /// TCP connections the client made (the server's expected connections).
    pub client_connections: u64,
    /// `after - before` of the totals.
    pub delta: Totals,
}

/// One named check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held.
    pub ok: bool,
    /// The numbers behind it.
    pub detail: String,
}

fn leaky_figures(after: &Snap, made: &[&LeakyConn], route: &str) -> Leaky {
    let mut by_peer: HashMap<&str, Vec<&Conn>> = HashMap::new();
    for c in after.conns.iter().filter(|c| c.label == route) {
        by_peer.entry(c.peer.as_str()).or_default().push(c);
    }
    let mut f = Leaky {
        made: made.len() as u64,
        ..Leaky::default()
    };
    for l in made {
        // A reused port could list two entries: any flagged one counts.
        let Some(entries) = by_peer.get(l.peer.as_str()) else {
            continue;
        };
        f.listed += 1;
        f.leaking += u64::from(entries.iter().any(|c| c.leaking_memory));
        f.orphaned += u64::from(entries.iter().any(|c| c.orphan_tasks >= 1));
    }
    f
}

/// Compares the snapshots with what the client did.
pub fn figures(
    before: &Snap,
    after: &Snap,
    client_connections: u64,
    leaky: &[LeakyConn],
) -> Figures {
    let of =
        |route: &str| -> Vec<&LeakyConn> { leaky.iter().filter(|l| l.route == route).collect() };
    let (b, a) = (&before.totals, &after.totals);
    let d = |x: u64, y: u64| y.saturating_sub(x);
    let clean: Vec<&Conn> = after
        .conns
        .iter()
        .filter(|c| c.label != BYTES_ROUTE && c.label != FORWARDER_ROUTE)
        .collect();
    let flagged: Vec<&&Conn> = clean.iter().filter(|c| c.flagged()).collect();
    let mut bytes = leaky_figures(after, &of(BYTES_ROUTE), BYTES_ROUTE);
    let mut forwarder = leaky_figures(after, &of(FORWARDER_ROUTE), FORWARDER_ROUTE);
    // What the totals count beyond the listed connections: room for unlisted leaky ones.
    let ((l0, o0), (l1, o1)) = (before.listed_flags(), after.listed_flags());
    let leak_room = d(b.leaking, a.leaking).saturating_sub(d(l0, l1));
    let orphan_room = d(b.orphan_tasks, a.orphan_tasks).saturating_sub(d(o0, o1));
    bytes.counted = bytes.leaking + (bytes.made - bytes.listed).min(leak_room);
    forwarder.counted = forwarder.orphaned + (forwarder.made - forwarder.listed).min(orphan_room);
    Figures {
        bytes,
        forwarder,
        clean_listed: clean.len() as u64,
        clean_flagged: flagged.len() as u64,
        clean_flagged_examples: flagged
            .iter()
            .take(5)
            .map(|c| {
                format!(
                    "{} {} ({}): {} orphan tasks, {} retained bytes",
                    c.label, c.peer, c.state, c.orphan_tasks, c.retained_bytes
                )
            })
            .collect(),
        client_connections,
        delta: Totals {
            opened: d(b.opened, a.opened),
            closed: d(b.closed, a.closed),
            orphan_tasks: d(b.orphan_tasks, a.orphan_tasks),
            leaking: d(b.leaking, a.leaking),
            evicted: d(b.evicted, a.evicted),
            untracked: d(b.untracked, a.untracked),
            open: d(b.open, a.open),
        },
    }
}

/// The pass/fail checks. A leaky connection missing from `connections[]` (details evicted)
/// passes when the totals count it. Forwarder connections may also keep bytes (the orphan holds the
/// socket's sink half): `connections_leaking_memory` must count every bytes connection plus
/// exactly the forwarder connections flagged, within the unlisted forwarders.
pub fn checks(f: &Figures, client_errors: u64) -> Vec<Check> {
    let (b, w, t) = (&f.bytes, &f.forwarder, &f.delta);
    let check = |name, ok, detail: String| Check { name, ok, detail };
    let lo = b.made + w.leaking;
    let hi = lo + (w.made - w.listed);
    let range = if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}..={hi}")
    };
    vec![
        check(
            "client errors",
            client_errors == 0,
            format!("{client_errors} failed connections (totals cannot be exact with failures)"),
        ),
        check(
            "leaky-bytes flagged leaking_memory",
            b.made > 0 && b.leaking == b.listed && b.counted == b.made,
            format!(
                "{} of {} listed; {} of {} made listed or counted in totals",
                b.leaking, b.listed, b.counted, b.made
            ),
        ),
        check(
            "forwarder with orphan_tasks >= 1",
            w.made > 0 && w.orphaned == w.listed && w.counted == w.made,
            format!(
                "{} of {} listed; {} of {} made listed or counted in totals",
                w.orphaned, w.listed, w.counted, w.made
            ),
        ),
        check(
            "clean connections flagged",
            f.clean_flagged == 0,
            format!("{} of {} listed", f.clean_flagged, f.clean_listed),
        ),
        check(
            "totals.connections_opened",
            t.opened == f.client_connections,
            format!("+{} (client made {})", t.opened, f.client_connections),
        ),
        check(
            "totals.connections_closed",
            t.closed == f.client_connections,
            format!("+{} (client made {})", t.closed, f.client_connections),
        ),
        check(
            "totals.orphan_tasks",
            t.orphan_tasks == w.made,
            format!(
                "+{} (expected {}: one per forwarder)",
                t.orphan_tasks, w.made
            ),
        ),
        check(
            "totals.connections_leaking_memory",
            (lo..=hi).contains(&t.leaking),
            format!(
                "+{} (expected {range}: {} bytes + {} forwarder flagged of {} listed)",
                t.leaking, b.made, w.leaking, w.listed
            ),
        ),
    ]
}

#[cfg(test)]
mod tests;
