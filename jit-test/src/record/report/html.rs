//! The report as one self-contained HTML page (`report.html`) and as JSON
//! (`report.json`): the page embeds the JSON and renders it in the browser.

use serde::Serialize;

use super::model::RunReport;
use super::problems::Problem;

/// The page's template: inline CSS and JS, with two slots filled by [`RunReport::to_html`].
const TEMPLATE: &str = include_str!("report.html");
/// Where the report's JSON goes, inside `<script type="application/json">`.
const JSON_SLOT: &str = "/*{{REPORT_JSON}}*/";
/// Where the summary line goes, as HTML text, for readers without JavaScript.
const SUMMARY_SLOT: &str = "{{SUMMARY_TEXT}}";

impl RunReport {
    /// The report as one self-contained HTML page: inline CSS and JS, no external
    /// resources, the report's JSON embedded in `<script type="application/json"
    /// id="jit-report">` and rendered in the browser.
    pub fn to_html(&self) -> String {
        let json = serde_json::to_string(&self.view()).expect(SERIALIZES);
        fill(
            TEMPLATE,
            &[
                (JSON_SLOT, &script_safe_json(&json)),
                (SUMMARY_SLOT, &html_escape(&self.summary_line())),
            ],
        )
    }

    /// The report as pretty-printed JSON: every field of [`RunReport`], then `summary`
    /// ([`RunReport::summary_line`]) and `problems` (each with its `kind`, its `message`
    /// as in [`RunReport::problems`], and the index of its `test` in `tests`, if any).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.view()).expect(SERIALIZES)
    }

    fn view(&self) -> View<'_> {
        View {
            report: self,
            summary: self.summary_line(),
            problems: self.problem_list(),
        }
    }
}

/// Why serializing a report cannot fail: it holds only strings, numbers, options, lists
/// and unit enums, and no maps.
const SERIALIZES: &str = "a report is plain strings, numbers and lists";

/// What `report.json` and the page's embedded JSON hold.
#[derive(Serialize)]
struct View<'a> {
    #[serde(flatten)]
    report: &'a RunReport,
    summary: String,
    problems: Vec<Problem>,
}

/// Fills each slot once, where it stands in `template`; values are never searched for
/// slots, so data cannot inject into another slot.
fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut found: Vec<(usize, &str, &str)> = slots
        .iter()
        .filter_map(|&(slot, value)| template.find(slot).map(|at| (at, slot, value)))
        .collect();
    found.sort_by_key(|&(at, _, _)| at);
    let mut out =
        String::with_capacity(template.len() + found.iter().map(|f| f.2.len()).sum::<usize>());
    let mut from = 0;
    for (at, slot, value) in found {
        out.push_str(&template[from..at]);
        out.push_str(value);
        from = at + slot.len();
    }
    out.push_str(&template[from..]);
    out
}

/// JSON that can stand inside a `<script>` element: `<`, `>` and `&` (which occur only
/// inside strings) become `\u` escapes, so no `</script>` or `<!--` can appear; so do
/// U+2028 and U+2029.
fn script_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for HTML element content or a quoted attribute.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cannot_close_its_script_element() {
        let json = script_safe_json(r#"{"name":"</script><!--x-->&"}"#);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["name"], "</script><!--x-->&");
    }

    #[test]
    fn slots_are_filled_once_and_values_are_not_rescanned() {
        let out = fill("a[X]b[Y]c", &[("[Y]", "y[X]"), ("[X]", "x[Y]")]);
        assert_eq!(out, "ax[Y]by[X]c");
    }

    #[test]
    fn the_template_has_both_slots_and_loads_nothing() {
        assert_eq!(TEMPLATE.matches(JSON_SLOT).count(), 1);
        assert_eq!(TEMPLATE.matches(SUMMARY_SLOT).count(), 1);
        for external in ["http:", "https:", "//cdn", "src=", "@import", "url("] {
            assert!(!TEMPLATE.contains(external), "template contains {external}");
        }
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
