//! The per-route and per-spawn-site series of `/metrics`, with bounded cardinality: at most
//! [`MAX_ROUTES`] routes and [`MAX_SITES`] (route, site) pairs get their own series, the most
//! leaking first; the rest are summed into `route="other"` (and `site="other"`).
//!
//! Everything is read from one snapshot: open and leaking connections and orphan tasks from
//! its listed connections (a leaking connection folded into the totals beyond `max_leaking`
//! is in the process-wide series only), retained bytes, judged connections and the slow-leak
//! verdict from its routes, orphans per spawn site from its task signatures.

use std::collections::BTreeMap;
use std::fmt::Write;

use leakscope::{ConnState, SignatureKind, Snapshot, Verdict};

/// Routes with their own series; the others are summed into `route="other"`.
pub(super) const MAX_ROUTES: usize = 50;
/// (route, spawn site) pairs with their own series; the others are summed into
/// `route="other",site="other"`.
pub(super) const MAX_SITES: usize = 50;
/// The label value of the bucket that sums what is over the cap.
pub(super) const OTHER: &str = "other";

/// One route's numbers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Route {
    orphans: u64,
    leaking: u64,
    retained: u64,
    open: u64,
    closed: u64,
    /// A slow leak (`Verdict::Leak` on the route).
    leak: bool,
}

impl Route {
    fn add(&mut self, o: &Route) {
        self.orphans += o.orphans;
        self.leaking += o.leaking;
        self.retained += o.retained;
        self.open += o.open;
        self.closed += o.closed;
        self.leak |= o.leak;
    }

    /// Most leaking first: the order in which routes earn their own series.
    fn rank(&self) -> impl Ord + use<> {
        std::cmp::Reverse((
            self.orphans,
            self.leaking,
            self.leak,
            self.retained,
            self.open,
            self.closed,
        ))
    }
}

/// A per-route family: name (after `leakscope_route_`), type, help, value.
type Family = (&'static str, &'static str, &'static str, fn(&Route) -> u64);

/// The per-route families, in the order of the text. A public contract, like `METRICS`.
const FAMILIES: &[Family] = &[
    (
        "open_connections",
        "gauge",
        "Connections of the route whose socket is open.",
        |r| r.open,
    ),
    (
        "orphan_tasks",
        "gauge",
        "Orphan tasks of the route's listed connections.",
        |r| r.orphans,
    ),
    (
        "connections_leaking",
        "gauge",
        "Listed leaking connections of the route (orphan tasks or retained bytes).",
        |r| r.leaking,
    ),
    (
        "retained_bytes",
        "gauge",
        "Bytes the route's listed closed connections retain past their grace period.",
        |r| r.retained,
    ),
    (
        "connections_closed_total",
        "counter",
        "Connections of the route judged (closed, grace passed).",
        |r| r.closed,
    ),
    (
        "leaking",
        "gauge",
        "1 when the route's closed connections keep retaining bytes as a group (a slow leak).",
        |r| u64::from(r.leak),
    ),
];

/// Appends the per-route and per-site families to `out`.
pub(super) fn write(out: &mut String, s: &Snapshot) {
    let routes = capped_routes(s);
    for (name, kind, help, value) in FAMILIES {
        let _ = writeln!(out, "# HELP leakscope_route_{name} {help}");
        let _ = writeln!(out, "# TYPE leakscope_route_{name} {kind}");
        for (label, r) in &routes {
            let _ = writeln!(
                out,
                "leakscope_route_{name}{{route=\"{}\"}} {}",
                escape(label),
                value(r)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP leakscope_signature_orphan_tasks Orphan tasks per route and spawn site (leak signatures)."
    );
    let _ = writeln!(out, "# TYPE leakscope_signature_orphan_tasks gauge");
    for ((route, site), n) in capped_sites(s) {
        let _ = writeln!(
            out,
            "leakscope_signature_orphan_tasks{{route=\"{}\",site=\"{}\"}} {n}",
            escape(&route),
            escape(&site)
        );
    }
}

/// Every route of the snapshot, capped: sorted by label, `other` (if any) last.
fn capped_routes(s: &Snapshot) -> Vec<(String, Route)> {
    let mut all: BTreeMap<&str, Route> = BTreeMap::new();
    for c in &s.connections {
        let r = all.entry(&c.label).or_default();
        r.open += u64::from(c.state == ConnState::Open);
        r.orphans += c.orphan_tasks;
        r.leaking += u64::from(c.is_leaking());
    }
    for info in &s.routes {
        let r = all.entry(&info.label).or_default();
        r.retained += info.retained_bytes;
        r.closed += info.connections_closed;
        r.leak |= info.verdict == Verdict::Leak;
    }
    let mut ranked: Vec<(&str, Route)> = all.into_iter().collect();
    // Stable: equal ranks keep label order.
    ranked.sort_by_key(|(_, r)| r.rank());
    let over = ranked.split_off(ranked.len().min(MAX_ROUTES));
    let mut out: Vec<(String, Route)> =
        ranked.into_iter().map(|(l, r)| (l.to_owned(), r)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if !over.is_empty() {
        let mut other = Route::default();
        over.iter().for_each(|(_, r)| other.add(r));
        out.push((OTHER.to_owned(), other));
    }
    out
}

/// Orphans per (route, site) of the task leak signatures, capped: sorted by route and site,
/// `other` (if any) last.
fn capped_sites(s: &Snapshot) -> Vec<((String, String), u64)> {
    let mut all: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let sigs = s.signatures.iter().filter(|g| {
        g.kind == SignatureKind::Task && g.verdict == Verdict::Leak && g.orphan_tasks > 0
    });
    for g in sigs {
        *all.entry((&g.label, &g.site)).or_default() += g.orphan_tasks;
    }
    let mut ranked: Vec<((&str, &str), u64)> = all.into_iter().collect();
    ranked.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let over = ranked.split_off(ranked.len().min(MAX_SITES));
    let mut out: Vec<((String, String), u64)> = ranked
        .into_iter()
        .map(|((r, s), n)| ((r.to_owned(), s.to_owned()), n))
        .collect();
    out.sort();
    if !over.is_empty() {
        let n = over.iter().map(|(_, n)| n).sum();
        out.push(((OTHER.to_owned(), OTHER.to_owned()), n));
    }
    out
}

/// A label value in the Prometheus text format: backslash, double quote and line feed
/// escaped.
pub(super) fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    let mut out = String::with_capacity(v.len() + 8);
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests;
