//! The report as one self-contained HTML file: `assets/report.html` (inline CSS and script,
//! nothing fetched) with the report's JSON embedded in a `<script type="application/json">`
//! element, which the inline script renders with `textContent` only.

use super::ReportError;

/// The viewer, with [`MARKER`] where the JSON goes.
const TEMPLATE: &str = include_str!("../../assets/report.html");
/// Stands for the JSON in [`TEMPLATE`], once.
const MARKER: &str = "__LEAKSCOPE_REPORT_JSON__";

/// The viewer with `json` embedded. `json` must be JSON: `<`, `>` and `&`, which JSON allows
/// only inside strings, become `\u003c`, `\u003e` and `\u0026` (the same string to
/// `JSON.parse`), so no text in the data can end the script element or open a comment; so do
/// U+2028 and U+2029.
pub(crate) fn render(json: &str) -> String {
    let mut escaped = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    TEMPLATE.replacen(MARKER, &escaped, 1)
}

/// The self-contained HTML viewer of a report: `report_json` is the JSON of `GET
/// /api/report` (or of a report file), as saved. The result is one file with inline CSS and
/// script that renders the report offline (no server, no network: its content security policy
/// allows nothing to be fetched): what [`write_report`](crate::write_report) writes beside
/// the JSON. An error when the text is not a leakscope report's JSON.
pub fn report_html(report_json: &str) -> Result<String, ReportError> {
    let value: serde_json::Value = serde_json::from_str(report_json).map_err(|e| {
        ReportError::NotAReport(format!(
            "leakscope report: not JSON ({e}): expected the JSON of /api/report or of a report \
             file (LEAKSCOPE_REPORT)"
        ))
    })?;
    if !value
        .get("snapshot")
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(ReportError::NotAReport(
            "leakscope report: JSON without a \"snapshot\" object: expected the JSON of \
             /api/report or of a report file (LEAKSCOPE_REPORT)"
                .to_owned(),
        ));
    }
    Ok(render(report_json))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded JSON: the text of the `<script type="application/json" id="report">`.
    fn embedded(html: &str) -> &str {
        let open = "<script type=\"application/json\" id=\"report\">";
        let start = html.find(open).expect("the data element") + open.len();
        let len = html[start..].find("</script>").expect("its end");
        &html[start..start + len]
    }

    #[test]
    fn the_template_holds_the_marker_once_and_fetches_nothing() {
        assert_eq!(TEMPLATE.matches(MARKER).count(), 1);
        for never in [
            "http:",
            "https:",
            "//cdn",
            "src=",
            "href=",
            "url(",
            "@import",
            "innerHTML",
        ] {
            assert!(
                !TEMPLATE.to_ascii_lowercase().contains(never),
                "the viewer must fetch nothing and write data as text: found {never:?}"
            );
        }
        assert!(TEMPLATE.contains("Content-Security-Policy"));
        assert!(TEMPLATE.contains("default-src 'none'"));
    }

    #[test]
    fn a_hostile_route_name_cannot_break_out_of_the_data() {
        let label = "</script><script>alert(1)</script><!-- & \u{2028}";
        let json = serde_json::json!({
            "generated_at_ms": 1,
            "snapshot": {"connections": [{"id": 7, "label": label}]},
        })
        .to_string();
        let html = report_html(&json).expect("a report");
        assert_eq!(
            html.matches("<script").count(),
            2,
            "only the template's two"
        );
        assert!(!html.contains("alert(1)</script>"));
        assert!(!embedded(&html).contains('<') && !embedded(&html).contains('>'));
        let back: serde_json::Value = serde_json::from_str(embedded(&html)).expect("still JSON");
        assert_eq!(back["snapshot"]["connections"][0]["label"], label);
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(&json).unwrap()
        );
    }

    #[test]
    fn only_a_report_is_rendered() {
        let e = report_html("{\"snapshot\": ").expect_err("not JSON");
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = report_html("[1, 2]").expect_err("not a report");
        assert!(e.to_string().contains("without a \"snapshot\""), "{e}");
        assert!(report_html("{\"snapshot\": {}}").is_ok());
    }
}
