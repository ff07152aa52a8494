//! Bearer-token access control and the response headers every route gets.
//!
//! With a token configured, every route requires `Authorization: Bearer <token>` or
//! `?token=<token>` (browsers cannot add a header to a link or an `EventSource`). A page opened
//! with `?token=` carries it on to its links, fetches and live stream.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::Shared;

/// Set on a request authorised by `?token=`: the `token=...` pair (URL-encoded) that pages
/// append to their own links.
#[derive(Debug, Clone)]
pub(crate) struct TokenQuery(pub(crate) String);

/// Whether the token a client sent is the expected one, in constant time, length included:
/// the loop runs over every byte the client sent whatever the expected token is, comparing
/// against the expected bytes cyclically, and the length difference is part of the result.
/// Its time depends only on the length of what the client sent, never on where the two differ
/// or on the expected token's length. An empty expected token matches nothing.
fn same(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    if expected.is_empty() {
        return false;
    }
    let mut diff = given.len() ^ expected.len();
    let mut j = 0;
    for &g in given {
        diff |= usize::from(g ^ expected[j]);
        // Back to the first expected byte after the last one, without a branch or a division.
        j = (j + 1) * usize::from(j + 1 < expected.len());
    }
    // Keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn query_token(req: &Request) -> Option<String> {
    let q = req.uri().query()?;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// Rejects requests without the configured token with 401.
pub(crate) async fn require_token(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(expected) = shared.token.as_deref() else {
        return next.run(req).await;
    };
    if bearer(&req).is_some_and(|t| same(t, expected)) {
        return next.run(req).await;
    }
    if let Some(t) = query_token(&req)
        && same(&t, expected)
    {
        let pair: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &t)
            .finish();
        req.extensions_mut().insert(TokenQuery(pair));
        return next.run(req).await;
    }
    let mut res = (
        StatusCode::UNAUTHORIZED,
        "leakscope dashboard: a bearer token is required: send `Authorization: Bearer <token>` \
         or add `?token=<token>` to the URL (the token is LEAKSCOPE_DASHBOARD_TOKEN)\n",
    )
        .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"leakscope\""),
    );
    res
}

/// Adds `nosniff`; `Referrer-Policy: same-origin` (a `?token=` in a page's URL never leaves for
/// another origin through the Referer header, and a same-origin `POST` keeps its `Origin`
/// header, which `no-referrer` would turn into `null`); a strict content security policy on
/// pages; and `no-store` unless a route chose its caching.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; \
                 img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn compares_tokens() {
        assert!(same("abc", "abc"));
        assert!(same("s3cret tok", "s3cret tok"));
        assert!(!same("abc", "abd"));
        assert!(!same("xbc", "abc"));
        assert!(!same("abc", "abcd"), "a prefix");
        assert!(!same("abcd", "abc"), "longer");
        assert!(!same("abcabc", "abc"), "the expected token repeated");
        assert!(!same("", "a"));
        assert!(!same("", ""), "an empty token matches nothing");
        assert!(!same("a", ""));
        // Same length, one bit apart, anywhere.
        let t = "0123456789abcdef0123456789abcdef";
        for i in 0..t.len() {
            let mut b = t.as_bytes().to_vec();
            b[i] ^= 1;
            assert!(!same(std::str::from_utf8(&b).unwrap(), t), "byte {i}");
        }
        // Every byte matches cyclically: only the length difference tells them apart.
        assert!(!same(&"a".repeat(256), "a"));
        assert!(!same("a", &"a".repeat(257)));
    }
}
