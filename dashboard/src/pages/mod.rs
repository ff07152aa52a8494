//! The HTML pages. Every URL they contain is relative, so the dashboard works at `/` and
//! nested under any prefix (`/_leakscope`).

mod detail;
mod overview;
mod timeline;

pub(crate) use detail::{connection, task, task_dump};
pub(crate) use overview::overview;

use axum::http::Uri;

use crate::auth::TokenQuery;

/// Where the page is, for building relative links, and the token to carry on.
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
}

impl Ctx {
    /// `original` is the URL the client asked for; `inner` the path this router saw (without
    /// the prefix it is nested under).
    pub(crate) fn new(original: &Uri, inner: &Uri, token: Option<&TokenQuery>) -> Ctx {
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
        }
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
