//! A small Markdown-to-HTML renderer for the documents the dashboard embeds (`docs/fixes.md`):
//! `#` headings with GitHub's anchors as ids, paragraphs, `-` lists, fenced code blocks, and
//! inline code, `**bold**`, `*emphasis*` and `[links](url)`. Every character of the text is
//! escaped; only `http(s)` links become links (a relative one points into the repository, not
//! the dashboard, so its text stays and its target goes).

use std::collections::HashSet;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, appended to `out`.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// GitHub's anchor of a heading: lowercase, letters, digits, `-` and `_` kept, spaces to `-`,
/// everything else dropped (what `FixPattern::anchor` and `cargo xtask tidy` assume).
pub(crate) fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Inline markup of one paragraph, heading or list item.
fn inline(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if c == '`'
            && let Some(end) = after.find('`')
        {
            out.push_str("<code>");
            escape(&after[..end], out);
            out.push_str("</code>");
            rest = &after[end + 1..];
            continue;
        }
        if let Some(inner) = rest.strip_prefix("**")
            && let Some(end) = inner.find("**")
            && end > 0
        {
            out.push_str("<strong>");
            inline(&inner[..end], out);
            out.push_str("</strong>");
            rest = &inner[end + 2..];
            continue;
        }
        if c == '*'
            && !after.starts_with([' ', '*'])
            && let Some(end) = after.find('*')
            && end > 0
        {
            out.push_str("<em>");
            inline(&after[..end], out);
            out.push_str("</em>");
            rest = &after[end + 1..];
            continue;
        }
        if c == '['
            && let Some(close) = after.find("](")
            && !after[..close].contains(['[', ']'])
            && let Some(end) = after[close + 2..].find(')')
        {
            let (label, url) = (&after[..close], &after[close + 2..close + 2 + end]);
            if url.starts_with("https://") || url.starts_with("http://") {
                out.push_str("<a href=\"");
                escape(url, out);
                out.push_str("\" rel=\"noreferrer\">");
                inline(label, out);
                out.push_str("</a>");
            } else {
                inline(label, out);
            }
            rest = &after[close + 2 + end + 1..];
            continue;
        }
        escape(&rest[..c.len_utf8()], out);
        rest = after;
    }
}

/// What is being collected between blank lines.
enum Open {
    Nothing,
    Paragraph(String),
    /// The items so far; the last one still takes continuation lines.
    List(Vec<String>),
    Code,
}

/// Closes a paragraph or a list (a code block closes at its fence only).
fn flush(open: &mut Open, out: &mut String) {
    match std::mem::replace(open, Open::Nothing) {
        Open::Paragraph(text) => {
            out.push_str("<p>");
            inline(&text, out);
            out.push_str("</p>\n");
        }
        Open::List(items) => {
            out.push_str("<ul>\n");
            for item in items {
                out.push_str("<li>");
                inline(&item, out);
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        Open::Code => out.push_str("</code></pre>\n"),
        Open::Nothing => {}
    }
}

/// `text` joined to `more` with one space.
fn join(text: &mut String, more: &str) {
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(more.trim());
}

/// `md` as HTML.
pub(crate) fn to_html(md: &str) -> String {
    let mut out = String::with_capacity(md.len() * 5 / 4);
    let mut open = Open::Nothing;
    let mut ids: HashSet<String> = HashSet::new();
    for line in md.lines() {
        if matches!(open, Open::Code) {
            if line.trim_start().starts_with("```") {
                flush(&mut open, &mut out);
            } else {
                escape(line, &mut out);
                out.push('\n');
            }
            continue;
        }
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            flush(&mut open, &mut out);
            let lang = anchor(lang);
            if lang.is_empty() {
                out.push_str("<pre class=\"code\"><code>");
            } else {
                out.push_str("<pre class=\"code\"><code class=\"language-");
                out.push_str(&lang);
                out.push_str("\">");
            }
            open = Open::Code;
            continue;
        }
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            flush(&mut open, &mut out);
            let text = line[hashes..].trim();
            // GitHub's rule for a repeated heading: `-1`, `-2`, ...
            let base = anchor(&text.replace('`', ""));
            let mut id = base.clone();
            let mut n = 0;
            while !ids.insert(id.clone()) {
                n += 1;
                id = format!("{base}-{n}");
            }
            out.push_str(&format!("<h{hashes} id=\""));
            escape(&id, &mut out);
            out.push_str("\">");
            inline(text, &mut out);
            out.push_str(&format!("</h{hashes}>\n"));
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut open, &mut out);
            continue;
        }
        let item = line.strip_prefix("- ").or_else(|| line.strip_prefix("* "));
        match (&mut open, item) {
            (Open::List(items), Some(text)) => items.push(text.trim().to_owned()),
            (Open::List(items), None) if line.starts_with(' ') => {
                if let Some(last) = items.last_mut() {
                    join(last, line);
                }
            }
            (Open::Paragraph(text), None) => join(text, line),
            (_, Some(text)) => {
                flush(&mut open, &mut out);
                open = Open::List(vec![text.trim().to_owned()]);
            }
            (_, None) => {
                flush(&mut open, &mut out);
                open = Open::Paragraph(line.trim().to_owned());
            }
        }
    }
    flush(&mut open, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::{anchor, to_html};

    #[test]
    fn renders_the_subset_and_escapes_everything() {
        let md = "# Title <b>\n\nSome `Arc<T>` and **bold** *em* text,\na [link](https://example.com/?a=1&b=\"2\") and [a file](../x.rs).\n\n## A JoinSet that outlives the connection\n\n- one <i>\n  continued\n- two\n\n```rust\nfn f() -> Vec<u8> { \"</code></pre><script>\" }\n```\n\n## Title <b>\n";
        let html = to_html(md);
        assert!(
            html.contains("<h1 id=\"title-b\">Title &lt;b&gt;</h1>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<p>Some <code>Arc&lt;T&gt;</code> and <strong>bold</strong> <em>em</em> text, a \
                 <a href=\"https://example.com/?a=1&amp;b=&quot;2&quot;\" rel=\"noreferrer\">link</a> \
                 and a file.</p>"
            ),
            "{html}"
        );
        assert!(html.contains(
            "<h2 id=\"a-joinset-that-outlives-the-connection\">A JoinSet that outlives the connection</h2>"
        ));
        assert!(html.contains("<ul>\n<li>one &lt;i&gt; continued</li>\n<li>two</li>\n</ul>"));
        assert!(html.contains(
            "<pre class=\"code\"><code class=\"language-rust\">fn f() -&gt; Vec&lt;u8&gt; { &quot;&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;&quot; }\n</code></pre>"
        ), "{html}");
        assert!(
            html.contains("<h2 id=\"title-b-1\">"),
            "a repeated heading: {html}"
        );
        assert!(!html.contains("<script") && !html.contains("<b>") && !html.contains("<i>"));
    }

    #[test]
    fn odd_input_stays_text() {
        for md in [
            "```",
            "`",
            "**",
            "*",
            "[",
            "[x](",
            "[x](javascript:alert(1))",
            "#",
            "#######  x",
            "- ",
            "*a",
            "a*",
            "é`ü",
            "```\nunclosed <code>",
        ] {
            let html = to_html(md);
            assert!(
                !html.contains("<script") && !html.contains("href=\"javascript"),
                "{md:?}: {html}"
            );
            assert!(!html.contains("unclosed <code>"), "{md:?}: {html}");
        }
        // The URL ends at the first `)`; a non-http one is dropped, its text kept.
        assert_eq!(to_html("[x](javascript:alert(1))"), "<p>x)</p>\n");
        assert_eq!(
            to_html("```\nunclosed <code>"),
            "<pre class=\"code\"><code>unclosed &lt;code&gt;\n</code></pre>\n"
        );
        assert_eq!(
            anchor(" Parked on a oneshot or Notify "),
            "parked-on-a-oneshot-or-notify"
        );
        assert_eq!(anchor("What `x::y` does!"), "what-xy-does");
    }
}
