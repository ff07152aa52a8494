//! Verdicts above single connections, for the snapshot: leak signatures (orphans grouped by
//! spawn site and route, shared globals told apart) and per-route slow leaks. `Judged::copy`
//! runs under the collector's lock (O(judged connections + their alive tasks)); `signatures`
//! and `routes` build the rows outside it.
//!
//! **Route rule.** A route's closed connections, once judged, are a *slow leak* when at least
//! [`ROUTE_MIN`] of them are listed, at least 80% of those still retain bytes, they retain at
//! least [`ROUTE_MIN_BYTES`] each on average, and the oldest third retains on average at least
//! half as much as the newest third: what each connection left stays, whatever its age.
//! Residue that does not grow with connections is held by the newest connections only (a
//! broadcast channel's bounded ring, once it wrapped) or by one connection (a map's grown
//! capacity), so a clean route does not get the verdict. Limits: only listed connections count
//! (evicted clean ones no longer do); a route needs [`ROUTE_MIN`] closed connections before it
//! is judged; a bounded buffer holding at least [`ROUTE_MIN_BYTES`] per connection looks like a
//! slow leak until it wraps around (then its oldest connections retain nothing and the verdict
//! clears).

use std::collections::HashMap;
use std::sync::Arc;

use super::sites::{SiteKey, SiteStats};
use super::state::{HashMap as IdMap, State};
use crate::ids::Site;
use crate::snapshot::{RouteInfo, Signature, SignatureKind, Verdict};

/// Judged connections a route needs before it gets a verdict.
pub(crate) const ROUTE_MIN: usize = 12;
/// Bytes each judged connection of a route must retain on average for the slow-leak verdict.
pub(crate) const ROUTE_MIN_BYTES: u64 = 1024;

/// One site on one route, as found now.
struct SigAgg {
    key: SiteKey,
    shared: bool,
    orphan_tasks: u64,
    conns: u64,
    retained: u64,
    stats: Option<SiteStats>,
    judged: u64,
}

/// A route: judged since start, and its listed judged connections as (closed at, retained).
type RouteAgg = (u64, Vec<(u64, u64)>);

/// A site's cheap key: one file string per site (rarely more than one, across codegen units:
/// `signatures` merges those by value).
fn addr(site: Site) -> (usize, u32, u32) {
    site.key()
}

/// What the verdicts need, copied under the lock.
#[derive(Default)]
pub(super) struct Judged {
    /// Shared sites: site address -> routes.
    shared: HashMap<(usize, u32, u32), Vec<Arc<str>>>,
    /// Connection id -> its alive tasks that are shared globals.
    pub(super) shared_alive: IdMap<u64, u64>,
    sigs: Vec<SigAgg>,
    routes: HashMap<Arc<str>, RouteAgg>,
}

impl Judged {
    /// Copies the verdict inputs: every connection past its grace period. With `signatures`
    /// off (summaries, lookups) the tasks are only looked at when some site is shared.
    pub(super) fn copy(
        st: &State,
        now: u64,
        grace: u64,
        tracking: bool,
        signatures: bool,
    ) -> Judged {
        let mut j = Judged::default();
        let want_tasks = signatures || st.sites.any_shared();
        // route -> site address -> index in `sigs`
        let mut index: HashMap<&str, IdMap<(usize, u32, u32), usize>> = HashMap::new();
        let mut seen: Vec<usize> = Vec::new();
        for c in st.conns.values() {
            let Some(closed) = c.closed_at_ms.filter(|&t| now.saturating_sub(t) > grace) else {
                continue;
            };
            let retained = if tracking { st.live_bytes(c) } else { 0 };
            let route = j
                .routes
                .entry(c.label.clone())
                .or_insert_with(|| (st.sites.judged_of(&c.label), Vec::new()));
            route.1.push((closed, retained));
            if c.alive_attached == 0 || !want_tasks {
                continue;
            }
            let sites = index.entry(&c.label).or_default();
            seen.clear();
            for t in c.alive_ids.iter().filter_map(|t| st.tasks.get(t)) {
                if t.detached {
                    continue;
                }
                let i = *sites.entry(addr(t.location)).or_insert_with(|| {
                    let key = (t.location, c.label.clone());
                    j.sigs.push(SigAgg {
                        shared: st.sites.is_shared(key.0, &key.1),
                        stats: st.sites.sites.get(&key).copied(),
                        judged: st.sites.judged_of(&key.1),
                        key,
                        orphan_tasks: 0,
                        conns: 0,
                        retained: 0,
                    });
                    j.sigs.len() - 1
                });
                let s = &mut j.sigs[i];
                s.orphan_tasks += 1;
                if !seen.contains(&i) {
                    seen.push(i);
                    s.conns += 1;
                    s.retained += retained;
                }
                if s.shared {
                    *j.shared_alive.entry(c.id.0).or_default() += 1;
                }
            }
        }
        for s in j.sigs.iter().filter(|s| s.shared) {
            let routes = j.shared.entry(addr(s.key.0)).or_default();
            if !routes.contains(&s.key.1) {
                routes.push(s.key.1.clone());
            }
        }
        if !signatures {
            j.sigs.clear();
        }
        j
    }

    /// Connections of `label` judged since start (0 for a route with none listed now).
    pub(super) fn judged_of(&self, label: &str) -> u64 {
        self.routes.get(label).map_or(0, |r| r.0)
    }

    /// Whether a task spawned at `site` by a connection of `label` is a shared global.
    pub(super) fn is_shared(&self, site: Site, label: &str) -> bool {
        self.shared
            .get(&addr(site))
            .is_some_and(|routes| routes.iter().any(|r| **r == *label))
    }

    /// The signatures: leaks first, then the largest.
    pub(super) fn signatures(&self) -> Vec<Signature> {
        let mut merged: Vec<SigAgg> = Vec::with_capacity(self.sigs.len());
        for s in &self.sigs {
            match merged.iter_mut().find(|m| m.key == s.key) {
                Some(m) => {
                    m.orphan_tasks += s.orphan_tasks;
                    m.conns += s.conns;
                    m.retained += s.retained;
                }
                None => merged.push(SigAgg {
                    key: s.key.clone(),
                    ..*s
                }),
            }
        }
        let mut out: Vec<Signature> = merged
            .iter()
            .map(|s| {
                let stats = s.stats;
                Signature {
                    kind: SignatureKind::Task,
                    site: s.key.0.to_string(),
                    label: s.key.1.to_string(),
                    verdict: if s.shared {
                        Verdict::Shared
                    } else {
                        Verdict::Leak
                    },
                    connections_leaked: stats.map_or(s.conns, |st| st.leaked),
                    connections_closed: s.judged,
                    orphan_tasks: s.orphan_tasks,
                    retained_bytes: s.retained,
                    bytes_per_connection: s.retained / s.conns.max(1),
                    first_seen_ms: stats.map_or(0, |st| st.first_seen_ms),
                    last_seen_ms: stats.map_or(0, |st| st.last_seen_ms),
                    started_by: stats.map(|st| st.first_conn.0),
                    fix: None,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (a.verdict != Verdict::Leak)
                .cmp(&(b.verdict != Verdict::Leak))
                .then(b.orphan_tasks.cmp(&a.orphan_tasks))
                .then(b.retained_bytes.cmp(&a.retained_bytes))
                .then(a.site.cmp(&b.site))
        });
        out
    }

    /// The routes with judged connections, slow leaks first.
    pub(super) fn routes(&self) -> Vec<RouteInfo> {
        let mut out: Vec<RouteInfo> = self
            .routes
            .iter()
            .map(|(label, (judged, conns))| route(label, *judged, conns))
            .collect();
        out.sort_by(|a, b| {
            (a.verdict != Verdict::Leak)
                .cmp(&(b.verdict != Verdict::Leak))
                .then(b.retained_bytes.cmp(&a.retained_bytes))
                .then(a.label.cmp(&b.label))
        });
        out
    }
}

/// One route's figures and verdict (see the module docs for the rule).
fn route(label: &str, judged: u64, conns: &[(u64, u64)]) -> RouteInfo {
    let mut by_age = conns.to_vec();
    by_age.sort_unstable();
    let n = by_age.len();
    let retaining = by_age.iter().filter(|(_, b)| *b > 0).count();
    let retained: u64 = by_age.iter().map(|(_, b)| b).sum();
    let third = (n / 3).max(1);
    let mean = |part: &[(u64, u64)]| part.iter().map(|(_, b)| b).sum::<u64>() / third as u64;
    let (oldest, newest) = (
        mean(&by_age[..third.min(n)]),
        mean(&by_age[n - third.min(n)..]),
    );
    let per = retained / (n as u64).max(1);
    let leak = n >= ROUTE_MIN
        && retaining * 10 >= n * 8
        && per >= ROUTE_MIN_BYTES
        && oldest * 2 >= newest
        && oldest > 0;
    RouteInfo {
        label: label.to_owned(),
        connections_closed: judged,
        connections_retaining: retaining as u64,
        retained_bytes: retained,
        retained_bytes_per_connection: per,
        verdict: if leak { Verdict::Leak } else { Verdict::Ok },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_that_keeps_a_little_per_connection_leaks_and_a_ring_does_not() {
        let steady: Vec<(u64, u64)> = (0..12).map(|i| (i, 6000 + i % 3)).collect();
        assert_eq!(route("/slow", 12, &steady).verdict, Verdict::Leak);
        assert_eq!(
            route("/slow", 12, &steady).retained_bytes_per_connection,
            6001
        );
        assert_eq!(
            route("/slow", 11, &steady[..11]).verdict,
            Verdict::Ok,
            "too few"
        );
        // A bounded ring: only the newest connections still hold their messages.
        let ring: Vec<(u64, u64)> = (0..30)
            .map(|i| (i, if i >= 24 { 900 } else { 0 }))
            .collect();
        assert_eq!(route("/ws", 30, &ring).verdict, Verdict::Ok);
        // Every connection holds a little, but the old ones lost theirs: decays, not a leak.
        let decaying: Vec<(u64, u64)> = (0..15).map(|i| (i, 100 + i * 400)).collect();
        assert_eq!(route("/ws", 15, &decaying).verdict, Verdict::Ok);
        // A ring of small chat messages that has not wrapped yet: below the floor.
        let small: Vec<(u64, u64)> = (0..20).map(|i| (i, 60)).collect();
        assert_eq!(route("/ws", 20, &small).verdict, Verdict::Ok);
    }
}
