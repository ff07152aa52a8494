//! Host names: the ones a dashboard without a bearer token answers (the defence against DNS
//! rebinding), and the list a user adds (`LEAKSCOPE_DASHBOARD_HOSTS`,
//! `RouterOptions::allowed_hosts`). Pure functions, no I/O.
//!
//! Loopback names are always accepted: `localhost` (and `localhost.`), an IPv4 literal in
//! `127.0.0.0/8`, `[::1]` and `[::ffff:127.x.y.z]`, with any port, in any case. A configured
//! entry is a host name or an IP literal (IPv6 in brackets), with an optional port: without one
//! it matches every port.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A host a user allowed besides the loopback ones, normalised: lower case, no trailing dot,
/// IP literals in their canonical form (IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// A configured host entry that is not a host name, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHost {
    /// The entry as given (trimmed).
    pub entry: String,
    /// Why it was refused, in words.
    pub reason: &'static str,
}

impl std::fmt::Display for BadHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "leakscope dashboard: allowed host {:?} is not a host name: {}; expected a name or \
             an IP address with an optional port, comma-separated (e.g. \
             LEAKSCOPE_DASHBOARD_HOSTS=dash.example.com,10.0.0.5:8080,[fd00::5])",
            crate::error::shown(&self.entry),
            self.reason
        )
    }
}

impl std::error::Error for BadHost {}

/// What a request's `Host` (or URI authority) is to the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostIs {
    /// A loopback name or a configured one.
    Allowed,
    /// A well-formed name that is neither.
    Foreign,
    /// Not `host[:port]`.
    Malformed,
}

/// `(host, port)` of `host[:port]`, IPv6 in brackets; `None` when malformed.
fn split(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let rest = &authority[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return None,
        };
        (&authority[..=end], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&p| p > 0)?)
        }
        Some(_) => return None,
    };
    (!host.is_empty()).then_some((host, port))
}

/// A host as compared: an IP literal in canonical form, or a name in lower case without its
/// trailing dot. `None` for characters no host name has.
fn normalise(host: &str) -> Option<String> {
    if let Some(inner) = host.strip_prefix('[') {
        let ip: Ipv6Addr = inner.strip_suffix(']')?.parse().ok()?;
        return Some(format!("[{ip}]"));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(ip.to_string());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then(|| name.to_ascii_lowercase())
}

/// Whether a normalised host is a loopback name.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return ip.is_loopback();
    }
    let v6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok());
    v6.is_some_and(|ip| ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
}

/// Checks a request's `Host` header value (or URI authority, without user info).
pub(crate) fn check(authority: &str, allowed: &[AllowedHost]) -> HostIs {
    let Some((host, port)) = split(authority) else {
        return HostIs::Malformed;
    };
    let Some(host) = normalise(host) else {
        return HostIs::Malformed;
    };
    let configured = || {
        allowed
            .iter()
            .any(|a| a.host == host && a.port.is_none_or(|p| Some(p) == port))
    };
    if is_loopback(&host) || configured() {
        HostIs::Allowed
    } else {
        HostIs::Foreign
    }
}

/// Parses one configured entry.
pub(crate) fn parse_entry(entry: &str) -> Result<AllowedHost, BadHost> {
    let entry = entry.trim();
    let bad = |reason| {
        Err(BadHost {
            entry: entry.to_owned(),
            reason,
        })
    };
    if entry.is_empty() {
        return bad("it is empty");
    }
    if entry.contains("://") {
        return bad("give the host name, not a URL");
    }
    if entry.contains('/') {
        return bad("a host name has no path");
    }
    if entry.contains('*') {
        return bad("wildcards are not supported: list every host name");
    }
    if entry.contains('@') {
        return bad("a host name has no user name");
    }
    if !entry.starts_with('[') && entry.matches(':').count() > 1 {
        return bad("put an IPv6 address in brackets, e.g. [fd00::5]:8080");
    }
    if !entry.is_ascii() {
        return bad("write an international name in its ASCII form (xn--...)");
    }
    let Some((host, port)) = split(entry) else {
        return bad("the port must be a number from 1 to 65535 after a single ':'");
    };
    if host.starts_with('[') {
        return match normalise(host) {
            Some(host) => Ok(AllowedHost { host, port }),
            None => bad("not an IPv6 address in brackets"),
        };
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<Ipv4Addr>().is_err() {
        return bad("not an IPv4 address (four numbers from 0 to 255)");
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = name.len() <= 253
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !labels_ok {
        return bad(
            "labels are 1 to 63 letters, digits, '-' or '_' between dots, \
             not starting or ending with '-'",
        );
    }
    match normalise(host) {
        Some(host) => Ok(AllowedHost { host, port }),
        None => bad("not a host name"),
    }
}

/// Parses a comma-separated list; blank entries (a trailing comma) are skipped.
pub(crate) fn parse_list(list: &str) -> Result<Vec<AllowedHost>, BadHost> {
    list.split(',')
        .filter(|e| !e.trim().is_empty())
        .map(parse_entry)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &str) -> Vec<AllowedHost> {
        parse_list(list).expect("valid list")
    }

    #[test]
    fn loopback_names_with_any_port_and_case() {
        for h in [
            "localhost",
            "LOCALHOST:6680",
            "localhost.",
            "LocalHost.:1",
            "127.0.0.1",
            "127.0.0.1:3000",
            "127.255.3.4:1",
            "[::1]",
            "[::1]:6680",
            "[0:0::1]:80",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert_eq!(check(h, &[]), HostIs::Allowed, "{h}");
        }
        for h in [
            "evil.example",
            "localhost.evil.example",
            "evil.localhost",
            "127.0.0.1.evil.example",
            "128.0.0.1",
            "10.0.0.1:80",
            "0.0.0.0",
            "[::]",
            "[::ffff:10.0.0.1]",
            "[fd00::1]:80",
            "localhost..",
        ] {
            assert_eq!(check(h, &[]), HostIs::Foreign, "{h}");
        }
        for h in [
            "",
            ":80",
            "localhost:",
            "localhost:0",
            "localhost:65536",
            "localhost:80:80",
            "localhost:+1",
            "[::1",
            "[::1]x",
            "[nope]",
            "local host",
            "a\u{e9}",
            "a/b",
            "a@b",
        ] {
            assert_eq!(check(h, &[]), HostIs::Malformed, "{h:?}");
        }
    }

    #[test]
    fn configured_names_match_case_insensitively_and_by_port() {
        let a = allowed(" Dash.Example.com , 10.0.0.5:8080,[FD00:0::5],box.,");
        let shown: Vec<String> = a.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["dash.example.com", "10.0.0.5:8080", "[fd00::5]", "box"]
        );
        for h in [
            "dash.example.com",
            "DASH.example.COM:443",
            "dash.example.com.",
            "10.0.0.5:8080",
            "[fd00::5]:1",
            "box",
        ] {
            assert_eq!(check(h, &a), HostIs::Allowed, "{h}");
        }
        for h in [
            "10.0.0.5",
            "10.0.0.5:8081",
            "example.com",
            "x.dash.example.com",
        ] {
            assert_eq!(check(h, &a), HostIs::Foreign, "{h}");
        }
    }

    #[test]
    fn malformed_entries_say_why() {
        let cases = [
            ("http://dash.example.com", "not a URL"),
            ("dash.example.com/x", "no path"),
            ("*.example.com", "wildcards"),
            ("user@host", "no user name"),
            ("fd00::5", "brackets"),
            ("[fd00::zz]", "not an IPv6 address"),
            ("300.1.2.3", "not an IPv4 address"),
            ("host:0", "port"),
            ("host:99999", "port"),
            ("host:", "port"),
            ("-bad.example", "labels"),
            ("a..b", "labels"),
            ("caf\u{e9}.example", "ASCII"),
            ("two words", "labels"),
        ];
        for (entry, why) in cases {
            let e = parse_entry(entry).expect_err(entry);
            assert!(e.to_string().contains(why), "{entry}: {e}");
            assert!(e.to_string().contains("LEAKSCOPE_DASHBOARD_HOSTS"), "{e}");
        }
        let e = parse_list("ok.example, bad host").expect_err("bad list");
        assert_eq!(e.entry, "bad host");
        assert!(parse_list("").expect("empty").is_empty());
        assert!(parse_list(" , ").expect("blank").is_empty());
    }
}
