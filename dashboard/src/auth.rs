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

/// Compares without stopping at the first differing byte.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    if let Some(t) = query_token(&req) {
        if same(&t, expected) {
            let pair: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("token", &t)
                .finish();
            req.extensions_mut().insert(TokenQuery(pair));
            return next.run(req).await;
        }
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

/// Adds `nosniff`, `no-referrer` (a `?token=` must not leak through the Referer header), a
/// strict content security policy on pages, and `no-store` unless a route chose its caching.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
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
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
