//! Who may read a dashboard that no bearer token guards, and which requests may change
//! something. The same rules wherever the router runs: nested in an app bound to `0.0.0.0` or
//! served standalone. Checked before the token (`auth`).
//!
//! - **Peers.** Without a token, only loopback peers are served (`127.0.0.0/8`, `::1`,
//!   `::ffff:127.x.y.z`), as axum's `ConnectInfo<SocketAddr>` tells them (or, in a test, a
//!   `MockConnectInfo<SocketAddr>` layer, as for axum's extractor). A request whose peer
//!   is unknown (the app was served without connect info) is refused with 403 and the three
//!   ways to fix it; so is one forwarded by a proxy (`Forwarded`, `X-Forwarded-For`,
//!   `X-Forwarded-Host`, `X-Real-IP`: the loopback peer is then the proxy, not the client).
//!   `allow_non_loopback` (`LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK`) serves every peer.
//! - **Host names.** Without a token, a request naming a host (`Host`, or the URI's authority in
//!   HTTP/2) must name a loopback one or a configured one ([`crate::hosts`]), else 421: a web
//!   page cannot read the dashboard through DNS rebinding. A request naming no host (HTTP/1.0
//!   without `Host`) is served: browsers, the only clients rebinding can drive, always send
//!   one. With a token any host name is served: the attacker's page does not know the token.
//! - **Same origin.** A request with a side effect (any method but `GET`, `HEAD` and `OPTIONS`:
//!   today the task dump's `POST` and saving the report) must come from the dashboard's own
//!   pages: `Sec-Fetch-Site` is `same-origin` or `none`, or, from a browser that does not send
//!   it, `Origin` (when sent) names the request's host. Else 403. Tools that send neither
//!   header (curl) are served.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{DashError, shown};
use crate::hosts::{self, AllowedHost, BadHost, HostIs};

/// Headers a reverse proxy adds: with one of them a loopback peer is the proxy.
const PROXY_HEADERS: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
];

/// What to do about a refused peer, in the 403 answers.
const PEER_FIXES: &str = "configure a bearer token (LEAKSCOPE_DASHBOARD_TOKEN, or \
     RouterOptions::bearer_token) and open the dashboard with ?token=<token>; or, on a network \
     you trust, serve every client without a token with LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK=1 \
     (RouterOptions::allow_non_loopback)";

/// The access rules of one router.
#[derive(Debug)]
pub(crate) struct Access {
    /// A bearer token guards every route (`auth` checks it).
    token: bool,
    /// Every peer is served without a token.
    any_peer: bool,
    /// Host names allowed besides the loopback ones.
    hosts: Vec<AllowedHost>,
    /// Configured entries that are not host names: ignored, and named in the 421 answer.
    ignored: Vec<BadHost>,
}

impl Access {
    /// The rules for these settings. `hosts` entries may each hold a comma-separated list; one
    /// that is not a host name is logged as an error and ignored (fewer names are allowed).
    pub(crate) fn new(token: bool, any_peer: bool, hosts: &[String]) -> Access {
        let mut access = Access {
            token,
            any_peer,
            hosts: Vec::new(),
            ignored: Vec::new(),
        };
        for entry in hosts.iter().flat_map(|h| h.split(',')) {
            if entry.trim().is_empty() {
                continue;
            }
            match hosts::parse_entry(entry) {
                Ok(h) => access.hosts.push(h),
                Err(e) => {
                    tracing::error!(target: "leakscope", "{e}; ignored");
                    access.ignored.push(e);
                }
            }
        }
        access
    }

    /// The rule in force, in one line (logged when the router is built).
    pub(crate) fn rule(&self) -> String {
        if self.token {
            return "leakscope dashboard: a bearer token guards every route (any peer, any Host \
                    name); requests with a side effect must come from its own pages"
                .to_owned();
        }
        let peers = if self.any_peer {
            "every peer is served (LEAKSCOPE_DASHBOARD_ALLOW_NON_LOOPBACK)".to_owned()
        } else {
            "only loopback peers are served, as axum's ConnectInfo<SocketAddr> tells them \
             (serve the app with into_make_service_with_connect_info::<SocketAddr>(); a request \
             without it is refused)"
                .to_owned()
        };
        format!(
            "leakscope dashboard: no bearer token: {peers}; Host names: {}",
            self.host_names()
        )
    }

    fn host_names(&self) -> String {
        let mut names = "localhost, 127.0.0.0/8, [::1]".to_owned();
        for h in &self.hosts {
            names.push_str(", ");
            names.push_str(&h.to_string());
        }
        names
    }

    /// Logs [`Access::rule`]: a warning when every peer is served without a token.
    pub(crate) fn log(&self) {
        if self.any_peer && !self.token {
            tracing::warn!(target: "leakscope", "{}", self.rule());
        } else {
            tracing::info!(target: "leakscope", "{}", self.rule());
        }
    }

    /// Why `req` is refused, if it is.
    fn check(&self, req: &Request) -> Result<(), DashError> {
        if !self.token {
            if !self.any_peer {
                peer(req)?;
            }
            self.host(req)?;
        }
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            same_origin(req)?;
        }
        Ok(())
    }

    fn host(&self, req: &Request) -> Result<(), DashError> {
        for value in req.headers().get_all(header::HOST) {
            let value = value.to_str().map_err(|_| malformed_host("(not text)"))?;
            self.one_host(value)?;
        }
        if let Some(a) = req.uri().authority() {
            let a = a.as_str();
            self.one_host(a.rsplit_once('@').map_or(a, |(_, h)| h))?;
        }
        Ok(())
    }

    fn one_host(&self, value: &str) -> Result<(), DashError> {
        match hosts::check(value, &self.hosts) {
            HostIs::Allowed => Ok(()),
            HostIs::Malformed => Err(malformed_host(&shown(value))),
            HostIs::Foreign => {
                let mut msg = format!(
                    "leakscope dashboard: refusing Host {}: without a bearer token the dashboard \
                     answers only these host names: {}, so that a web page cannot read it \
                     through DNS rebinding. Open it through one of them, add this one to \
                     LEAKSCOPE_DASHBOARD_HOSTS (comma-separated; RouterOptions::allowed_hosts), \
                     or configure a bearer token (LEAKSCOPE_DASHBOARD_TOKEN).",
                    shown(value),
                    self.host_names()
                );
                for bad in &self.ignored {
                    msg.push_str(&format!(
                        " Ignored entry {}: {}.",
                        shown(&bad.entry),
                        bad.reason
                    ));
                }
                Err(DashError::new(StatusCode::MISDIRECTED_REQUEST, msg))
            }
        }
    }
}

fn malformed_host(value: &str) -> DashError {
    DashError::bad_request(format!(
        "leakscope dashboard: the Host header {value} is not host[:port]"
    ))
}

/// Whether a peer is loopback: `127.0.0.0/8`, `::1`, or IPv4-mapped `::ffff:127.x.y.z` (what
/// a dual-stack `[::]` listener sees of an IPv4 loopback client). Other mapped addresses are
/// what they map.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Refuses a peer that is not loopback, unknown, or behind a proxy.
fn peer(req: &Request) -> Result<(), DashError> {
    // As axum's `ConnectInfo` extractor: the real one, else a test's `MockConnectInfo`.
    let ext = req.extensions();
    let addr = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0));
    let Some(addr) = addr else {
        return Err(DashError::new(
            StatusCode::FORBIDDEN,
            format!(
                "leakscope dashboard: refusing the request: without a bearer token only \
                 loopback clients are served, and this app does not tell the dashboard who the \
                 client is. Fix it in one of three ways: serve the app with connect info, \
                 axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()) \
                 (behind leakscope::axum::track_listener(listener), add .tap_io(|_| ()) from \
                 axum::serve::ListenerExt so that axum can tell the peer); or {PEER_FIXES}."
            ),
        ));
    };
    if !is_loopback(addr.ip()) {
        return Err(DashError::new(
            StatusCode::FORBIDDEN,
            format!(
                "leakscope dashboard: refusing a request from {}, which is not a loopback \
                 address: without a bearer token only loopback clients are served (the \
                 dashboard shows peers, routes and code locations). To open it from elsewhere, \
                 {PEER_FIXES}.",
                addr.ip()
            ),
        ));
    }
    if let Some(h) = PROXY_HEADERS
        .iter()
        .find(|h| req.headers().contains_key(**h))
    {
        return Err(DashError::new(
            StatusCode::FORBIDDEN,
            format!(
                "leakscope dashboard: refusing a request forwarded by a proxy (it carries \
                 {h}): the loopback peer is the proxy, not the client, and without a bearer \
                 token only loopback clients are served. Open the dashboard without the proxy, \
                 or {PEER_FIXES}."
            ),
        ));
    }
    Ok(())
}

/// The host a request names: its `Host` header, or the URI's authority (HTTP/2).
fn request_host(req: &Request) -> Option<&str> {
    match req.headers().get(header::HOST) {
        Some(h) => h.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

/// Refuses a request with a side effect that a page of another origin sent.
fn same_origin(req: &Request) -> Result<(), DashError> {
    let refuse = |why: String| {
        Err(DashError::new(
            StatusCode::FORBIDDEN,
            format!(
                "leakscope dashboard: refusing a {} from another site ({why}): a request that \
                 changes something (a task dump pauses the runtime) must come from the \
                 dashboard's own page. Open the page and press its button.",
                req.method()
            ),
        ))
    };
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none") {
            return Ok(());
        }
        return refuse(format!("Sec-Fetch-Site: {}", shown(site)));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, a)| a);
    match (origin_host, request_host(req)) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        (_, h) => refuse(format!(
            "Origin {} is not this dashboard's host {}",
            shown(origin),
            shown(h.unwrap_or("(none)"))
        )),
    }
}

/// Answers a refused request itself; passes the others on.
pub(crate) async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    match access.check(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_loopback_is_loopback_and_nothing_else_is() {
        for ip in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "192.0.2.2",
            "::",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "fd00::2",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_rule_in_one_line() {
        let strict = Access::new(false, false, &["dash.example.com, bad host".to_owned()]);
        let rule = strict.rule();
        assert!(rule.contains("only loopback peers"), "{rule}");
        assert!(
            rule.contains("into_make_service_with_connect_info"),
            "{rule}"
        );
        assert!(
            rule.contains("dash.example.com") && !rule.contains('\n'),
            "{rule}"
        );
        assert_eq!(strict.ignored.len(), 1);
        assert!(
            Access::new(false, true, &[])
                .rule()
                .contains("every peer is served")
        );
        assert!(
            Access::new(true, false, &[])
                .rule()
                .contains("bearer token")
        );
    }
}
