//! The history behind leak signatures: per route, how many connections were judged; per spawn
//! site and route, how many of them left an orphan from that site. Updated when a connection
//! is judged (close + grace), so it survives the connection's eviction.
//!
//! **Shared tasks.** A site that leaked for exactly one connection, once at least
//! [`SHARED_AFTER`] other connections of the same route were judged without leaking from it (in
//! whatever order they opened and closed), is a library's global started lazily by the first
//! connection that used it (a pool's reaper, a client's idle-connection task), not a
//! per-connection leak. A second leak from the site makes it a leak for good.
//!
//! Bounded: at most [`MAX_LABELS`] routes and [`MAX_SITES`] (site, route) pairs are
//! remembered; beyond that new ones are not (their orphans stay plain orphans) and a warning
//! says so.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ids::{ConnId, Site};

/// Other connections of a route judged clean of a site before its single leak counts as shared.
pub(crate) const SHARED_AFTER: u64 = 3;
pub(crate) const MAX_LABELS: usize = 1024;
pub(crate) const MAX_SITES: usize = 4096;

/// A spawn site on a route.
pub(crate) type SiteKey = (Site, Arc<str>);

/// One site's history on one route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SiteStats {
    /// Connections judged with an orphan from this site.
    pub leaked: u64,
    /// The first of them.
    pub first_conn: ConnId,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Sites {
    pub judged: HashMap<Arc<str>, u64>,
    pub sites: HashMap<SiteKey, SiteStats>,
    /// Whether a bound was hit (said once).
    pub full: bool,
}

impl Sites {
    /// A connection of route `label` was judged, with orphans from `leaked_from` (distinct
    /// sites). Returns `true` the first time a bound is hit.
    pub(crate) fn judged(
        &mut self,
        conn: ConnId,
        label: &Arc<str>,
        leaked_from: &[Site],
        now: u64,
    ) -> bool {
        let before = self.full;
        let labels = self.judged.len();
        if let Some(n) = self.judged.get_mut(label) {
            *n += 1;
        } else if labels < MAX_LABELS {
            self.judged.insert(label.clone(), 1);
        } else {
            self.full = true;
        }
        for &site in leaked_from {
            let key = (site, label.clone());
            let known = self.sites.len();
            if let Some(s) = self.sites.get_mut(&key) {
                s.leaked += 1;
                s.last_seen_ms = now;
            } else if known < MAX_SITES {
                let s = SiteStats {
                    leaked: 1,
                    first_conn: conn,
                    first_seen_ms: now,
                    last_seen_ms: now,
                };
                self.sites.insert(key, s);
            } else {
                self.full = true;
            }
        }
        self.full && !before
    }

    /// Whether any site is shared now (so summaries need to look at tasks).
    pub(crate) fn any_shared(&self) -> bool {
        self.sites
            .iter()
            .any(|((_, label), s)| shared(s, self.judged_of(label)))
    }

    /// Connections of `label` judged so far.
    pub(crate) fn judged_of(&self, label: &str) -> u64 {
        self.judged.get(label).copied().unwrap_or(0)
    }

    /// Whether orphans of `site` on route `label` are a shared (global) task.
    pub(crate) fn is_shared(&self, site: Site, label: &Arc<str>) -> bool {
        let Some(s) = self.sites.get(&(site, label.clone())) else {
            return false;
        };
        shared(s, self.judged_of(label))
    }
}

/// The rule: one leak, and at least [`SHARED_AFTER`] other judged connections of the route.
fn shared(s: &SiteStats, judged: u64) -> bool {
    s.leaked == 1 && judged.saturating_sub(s.leaked) >= SHARED_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leak_among_enough_clean_connections_is_shared_until_a_second_leak() {
        let site = Site::from(std::panic::Location::caller());
        let route: Arc<str> = "/r".into();
        let mut s = Sites::default();
        s.judged(ConnId(1), &route, &[site], 10);
        assert!(!s.is_shared(site, &route), "a leak until others are judged");
        for id in 2..4 {
            s.judged(ConnId(id), &route, &[], 10);
        }
        assert!(!s.is_shared(site, &route), "two clean are not enough");
        s.judged(ConnId(4), &route, &[], 10);
        assert!(s.is_shared(site, &route));
        s.judged(ConnId(5), &route, &[site], 11);
        assert!(!s.is_shared(site, &route), "a second leak: a leak for good");
        for id in 6..20 {
            s.judged(ConnId(id), &route, &[], 12);
        }
        assert!(!s.is_shared(site, &route));
    }
}
