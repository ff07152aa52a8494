//! `GET /fixes`: leakscope's `docs/fixes.md` (the fix for each leak pattern a signature or an
//! orphan names), embedded at build time and rendered once. `dashboard/docs/fixes.md` is a
//! symlink to the repository's `docs/fixes.md`: `cargo package` stores the file it points to,
//! so the packaged crate embeds the same text.

use std::sync::OnceLock;

use askama::Template;
use axum::response::Html;

use super::{Ctx, markdown};
use crate::error::DashResult;

/// The document, as written.
const FIXES_MD: &str = include_str!("../../docs/fixes.md");

#[derive(Template)]
#[template(path = "fixes.html")]
struct FixesPage {
    ctx: Ctx,
    /// The rendered document: escaped by [`markdown::to_html`].
    doc: &'static str,
}

/// The document as HTML, rendered on first use.
fn doc() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| markdown::to_html(FIXES_MD))
}

/// `GET /fixes`. Each section's heading has its anchor as id (`FixPattern::anchor`), so
/// `fixes#<anchor>` opens it.
pub(crate) async fn fixes(ctx: Ctx) -> DashResult<Html<String>> {
    ctx.params(&[])?;
    Ok(Html(FixesPage { ctx, doc: doc() }.render()?))
}

#[cfg(test)]
mod tests {
    use leakscope::FixPattern;

    use super::{FIXES_MD, doc};

    #[test]
    fn every_pattern_has_its_section() {
        // Not the symlink's own text (a checkout without symlinks): the document.
        assert!(FIXES_MD.starts_with("# "), "{FIXES_MD:.80}");
        for p in FixPattern::ALL {
            let id = format!("<h2 id=\"{}\">", p.anchor());
            assert!(doc().contains(&id), "no {id} in the fixes page");
        }
        assert!(doc().contains("<pre class=\"code\"><code class=\"language-rust\">"));
        assert!(doc().contains("broadcast::Sender&lt;String&gt;"));
    }
}
