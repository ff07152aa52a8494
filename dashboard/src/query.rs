//! Query-string parsing with clear 400 messages (instead of axum's generic rejection text).

use axum::http::StatusCode;

use crate::error::{DashError, shown};

/// A longer query string is refused (414): no page needs one, and what a page echoes of it
/// (a filter, its pagination links) stays small.
pub(crate) const MAX_QUERY: usize = 4096;

/// The decoded `key=value` pairs of a query string, checked against the keys a route accepts.
/// `token` (see [`crate::auth`]) is accepted everywhere and never returned.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `raw` (`None` when the URL has no `?`). Unknown and repeated keys are errors.
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Params, DashError> {
        let len = raw.map_or(0, str::len);
        if len > MAX_QUERY {
            return Err(DashError::new(
                StatusCode::URI_TOO_LONG,
                format!("the query string is {len} bytes; the dashboard takes at most {MAX_QUERY}"),
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if k == "token" {
                continue;
            }
            if !allowed.contains(&k.as_ref()) {
                let expected = if allowed.is_empty() {
                    "this page takes no query parameters".to_owned()
                } else {
                    format!("expected one of: {}", allowed.join(", "))
                };
                return Err(DashError::bad_request(format!(
                    "unknown query parameter {}; {expected}",
                    shown(&k)
                )));
            }
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(DashError::bad_request(format!(
                    "query parameter {} is given more than once",
                    shown(&k)
                )));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params { pairs })
    }

    /// The value of `key`, if given.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A whole number in `min..=max`, or `default` when absent (an empty value counts as absent).
    pub(crate) fn number(
        &self,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, DashError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(DashError::bad_request(format!(
                    "query parameter {key}={}: expected a whole number from {min} to {max}",
                    shown(v)
                ))),
            },
        }
    }

    /// An id (a whole number), if given: `Ok(None)` when absent, an error for any other value
    /// (an empty one too).
    pub(crate) fn id(&self, key: &str) -> Result<Option<u64>, DashError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                DashError::bad_request(format!(
                    "query parameter {key}={}: expected an id, a whole number (e.g. {key}=42)",
                    shown(v)
                ))
            }),
        }
    }

    /// A yes/no flag: `1`, `true` or empty mean yes, `0` or `false` no.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, DashError> {
        match self.get(key) {
            None | Some("0") | Some("false") => Ok(false),
            Some("") | Some("1") | Some("true") => Ok(true),
            Some(v) => Err(DashError::bad_request(format!(
                "query parameter {key}={}: expected 1 or 0",
                shown(v)
            ))),
        }
    }
}

/// Parses a path id (`/conn/{id}`, `/task/{id}`).
pub(crate) fn parse_id(what: &str, raw: &str) -> Result<u64, DashError> {
    raw.parse::<u64>().map_err(|_| {
        DashError::bad_request(format!(
            "{what} id {} is not a whole number (expected e.g. {what}/42)",
            shown(raw)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let p = Params::parse(
            Some("state=open&label=%2Fws+x&token=abc"),
            &["state", "label"],
        )
        .unwrap();
        assert_eq!(p.get("state"), Some("open"));
        assert_eq!(p.get("label"), Some("/ws x"));
        assert_eq!(p.get("token"), None);
        let e = Params::parse(Some("stat=open"), &["state"]).unwrap_err();
        assert!(e.message.contains("unknown query parameter \"stat\""));
        let e = Params::parse(Some("page=1&page=2"), &["page"]).unwrap_err();
        assert!(e.message.contains("more than once"));
        let p = Params::parse(Some("page=0"), &["page"]).unwrap();
        assert!(p.number("page", 1, 1, 10).is_err());
        assert_eq!(p.number("per_page", 50, 1, 500).unwrap(), 50);
        let p = Params::parse(Some("conn=7&x=&y=a"), &["conn", "x", "y"]).unwrap();
        assert_eq!(p.id("conn").unwrap(), Some(7));
        assert_eq!(p.id("none").unwrap(), None);
        assert!(p.id("x").unwrap_err().message.contains("expected an id"));
        assert!(p.id("y").is_err());
        assert!(parse_id("conn", "x1").is_err());
        let long = format!("label={}", "x".repeat(MAX_QUERY));
        let e = Params::parse(Some(&long), &["label"]).unwrap_err();
        assert_eq!(e.status, StatusCode::URI_TOO_LONG);
        let e = parse_id("conn", &"9".repeat(100_000)).unwrap_err();
        assert!(e.message.len() < 200, "{}", e.message);
        assert_eq!(parse_id("conn", "17").unwrap(), 17);
    }
}
