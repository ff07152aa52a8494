//! Allocation sites for the snapshot, from the live samples (`heap::sample`), built outside
//! the collector's lock: per connection (its top sites), and `"bytes"` signatures (retained
//! bytes of leaking connections and slow-leaking routes, grouped by site and route).

use std::collections::HashMap;
use std::sync::Arc;

use super::symbols::{self, Site};
use crate::heap::sample::{self, Sample};
use crate::ids::Tag;
use crate::snapshot::{
    AllocationSite, ConnectionInfo, RouteInfo, Signature, SignatureKind, Verdict,
};

/// Sites kept per connection.
const TOP: usize = 8;

/// (site, bytes, samples) of some samples, largest first.
fn group(samples: &[Sample]) -> Vec<(Arc<Site>, u64, u64)> {
    let mut by: HashMap<Arc<Site>, (u64, u64)> = HashMap::new();
    for s in samples {
        let Some(site) = symbols::site_of(s.frames()) else {
            continue;
        };
        let e = by.entry(site).or_default();
        e.0 += s.weight();
        e.1 += 1;
    }
    let mut out: Vec<_> = by.into_iter().map(|(s, (b, n))| (s, b, n)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.site.cmp(&b.0.site)));
    out
}

fn site_row(site: &Site, bytes: u64, samples: u64) -> AllocationSite {
    AllocationSite {
        site: site.site.clone(),
        function: site.function.clone(),
        bytes,
        samples,
    }
}

/// Fills `allocation_sites` of the rows `want` says (row index by tag).
pub(super) fn fill(rows: &mut [ConnectionInfo], want: &HashMap<Tag, usize>) {
    if want.is_empty() || sample::interval() == 0 {
        return;
    }
    let mut per_row: HashMap<usize, Vec<Sample>> = HashMap::new();
    for s in sample::live(|t| want.contains_key(&t)) {
        per_row.entry(want[&s.tag]).or_default().push(s);
    }
    for (i, samples) in per_row {
        rows[i].allocation_sites = group(&samples)
            .iter()
            .take(TOP)
            .map(|(site, b, n)| site_row(site, *b, *n))
            .collect();
    }
}

/// `"bytes"` signatures: the allocation sites of leaking connections' retained bytes and of
/// slow-leaking routes, per route, largest first.
pub(super) fn signatures(
    rows: &[ConnectionInfo],
    routes: &[RouteInfo],
    judged_of: impl Fn(&str) -> u64,
) -> Vec<Signature> {
    let slow = |label: &str| {
        routes
            .iter()
            .any(|r| r.label == label && r.verdict == Verdict::Leak)
    };
    let mut by: HashMap<(String, String), (u64, u64)> = HashMap::new();
    for c in rows.iter().filter(|c| c.retained_bytes > 0) {
        if !(c.leaking_memory || slow(&c.label)) {
            continue;
        }
        for a in &c.allocation_sites {
            let e = by.entry((a.site.clone(), c.label.to_string())).or_default();
            e.0 += a.bytes;
            e.1 += 1;
        }
    }
    let mut out: Vec<Signature> = by
        .into_iter()
        .map(|((site, label), (bytes, conns))| Signature {
            kind: SignatureKind::Bytes,
            connections_closed: judged_of(&label),
            site,
            label,
            verdict: Verdict::Leak,
            connections_leaked: conns,
            orphan_tasks: 0,
            retained_bytes: bytes,
            bytes_per_connection: bytes / conns.max(1),
            first_seen_ms: 0,
            last_seen_ms: 0,
            started_by: None,
            fix: None,
        })
        .collect();
    out.sort_by(|a, b| {
        b.retained_bytes
            .cmp(&a.retained_bytes)
            .then(a.site.cmp(&b.site))
    });
    out
}
