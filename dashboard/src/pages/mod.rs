//! The HTML pages. Every URL they contain is relative, so the dashboard works at `/` and
//! nested under any prefix (`/_leakscope`). Each handler takes a [`Ctx`]: where the page is,
//! the token to carry on, and its query string.

mod connection;
mod fixes;
mod markdown;
mod overview;
mod task;
mod timeline;
mod verdicts;

pub(crate) use connection::connection;
pub(crate) use fixes::fixes;
pub(crate) use overview::overview;
pub(crate) use task::{task, task_dump};

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::Uri;
use axum::http::request::Parts;
use leakscope::{FixHint, TaskInfo};

use crate::auth::TokenQuery;
use crate::error::DashError;
use crate::query::Params;

/// Where the page is, for building relative links, and the token to carry on. An extractor:
/// the URL the client asked for, the path this router saw, the query and the `?token=`.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// From the page's directory to the dashboard's root directory: `""`, `"../"`, or
    /// `"_leakscope/"` for a nested overview served without a trailing slash.
    pub root: String,
    /// The overview page, relative.
    pub home: String,
    /// `?token=...` when the page was opened with one, else empty.
    pub q1: String,
    /// `&token=...` when the page was opened with one, else empty.
    pub qa: String,
    /// The raw token for hidden form fields, else empty.
    pub token: String,
    /// The raw query string, if the URL has a `?`.
    query: Option<String>,
}

impl Ctx {
    /// `original` is the URL the client asked for; `inner` the URL this router saw (without
    /// the prefix it is nested under).
    fn new(original: &Uri, inner: &Uri, token: Option<&TokenQuery>) -> Ctx {
        let (root, home) = links(original.path(), inner.path());
        let (q1, qa, token) = match token {
            Some(TokenQuery(pair)) => {
                let raw = form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                (format!("?{pair}"), format!("&{pair}"), raw)
            }
            None => Default::default(),
        };
        Ctx {
            root,
            home,
            q1,
            qa,
            token,
            query: inner.query().map(str::to_owned),
        }
    }

    /// The page's query parameters, checked against the keys it accepts.
    pub(crate) fn params(&self, allowed: &[&str]) -> Result<Params, DashError> {
        Params::parse(self.query.as_deref(), allowed)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Ctx, Infallible> {
        let original = parts.extensions.get::<OriginalUri>().map(|o| &o.0);
        let token = parts.extensions.get::<TokenQuery>();
        Ok(Ctx::new(original.unwrap_or(&parts.uri), &parts.uri, token))
    }
}

/// A label and a value, for the fact lists of the connection and task pages.
struct Fact {
    name: &'static str,
    value: String,
    class: &'static str,
}

impl Fact {
    /// Shown in red when `bad`.
    fn bad_if(mut self, bad: bool) -> Fact {
        if bad {
            self.class = "bad";
        }
        self
    }
}

fn fact(name: &'static str, value: impl Into<String>) -> Fact {
    Fact {
        name,
        value: value.into(),
        class: "",
    }
}

/// A leak's likely pattern in one sentence and the link to its section of the fixes page.
struct FixLink {
    summary: String,
    /// `fixes#<anchor>` from the page, with the token.
    href: String,
}

impl FixLink {
    fn new(h: &FixHint, ctx: &Ctx) -> FixLink {
        FixLink {
            summary: h.summary.clone(),
            href: format!("{}fixes{}#{}", ctx.root, ctx.q1, h.pattern.anchor()),
        }
    }
}

/// The row or badge class of a task: `orphan` (red), `shared` (a shared global, not red) or
/// none.
fn task_class(t: &TaskInfo) -> &'static str {
    if t.orphan {
        "orphan"
    } else if t.shared {
        "shared"
    } else {
        ""
    }
}

/// `(root, home)` for a page at `original` that this router sees as `inner`.
fn links(original: &str, inner: &str) -> (String, String) {
    let prefix = if inner == "/" {
        original.trim_end_matches('/')
    } else {
        original.strip_suffix(inner).unwrap_or("")
    };
    let dir = &original[..original.rfind('/').map_or(0, |i| i + 1)];
    let app_dir = format!("{prefix}/");
    let last = prefix.rsplit('/').next().unwrap_or("");
    match dir.strip_prefix(app_dir.as_str()) {
        Some(rest) => {
            let root = "../".repeat(rest.matches('/').count());
            let home = if prefix.is_empty() {
                if root.is_empty() {
                    "./".to_owned()
                } else {
                    root.clone()
                }
            } else {
                format!("{root}../{last}")
            };
            (root, home)
        }
        // The page is the prefix itself: a nested overview without a trailing slash.
        None => (format!("{last}/"), last.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::links;

    #[test]
    fn relative_links() {
        assert_eq!(links("/", "/"), ("".into(), "./".into()));
        assert_eq!(links("/conn/5", "/conn/5"), ("../".into(), "../".into()));
        assert_eq!(
            links("/_leakscope", "/"),
            ("_leakscope/".into(), "_leakscope".into())
        );
        assert_eq!(
            links("/_leakscope/conn/5", "/conn/5"),
            ("../".into(), "../../_leakscope".into())
        );
        assert_eq!(
            links("/debug/leakscope/task/9", "/task/9"),
            ("../".into(), "../../leakscope".into())
        );
    }
}
