//! The report as Markdown (`report.md`): everything taken from the log is escaped.

use std::fmt::Write as _;

use super::model::{LeaseReport, RunReport};
use super::text::{format_millis, plural};

impl RunReport {
    /// The report as Markdown: a summary, the problems, a table of tests and the reaps.
    /// Everything taken from the log is escaped.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# jit-test run report\n");
        let _ = writeln!(md, "{}\n", md_text(&self.summary_line()));
        let _ = writeln!(md, "| | |\n|---|---|");
        let runs = if self.runs.is_empty() {
            "(none)".to_owned()
        } else {
            self.runs
                .iter()
                .map(|r| md_code(r, true))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(md, "| Run | {runs} |");
        let _ = writeln!(md, "| Audit log | {} |", md_code(&self.log, true));
        if let (Some(from), Some(to)) = (&self.started_at, &self.ended_at) {
            let span = match (self.start_ms, self.end_ms) {
                (Some(a), Some(b)) => format!(" ({})", format_millis(b.saturating_sub(a))),
                _ => String::new(),
            };
            let _ = writeln!(md, "| Time | {} → {}{span} |", md_text(from), md_text(to));
        }
        let _ = writeln!(md, "| Tests | {} |", self.tests.len());
        let clean = self.leases().filter(|l| !l.status.is_problem()).count();
        let _ = writeln!(
            md,
            "| Leases | {} granted, {clean} ended cleanly |",
            self.leases_granted()
        );
        let _ = writeln!(md, "| Denials asserted | {} |", self.denials_asserted());
        let chain = if self.chain.intact {
            format!("verified, {}", plural(self.chain.lines, "line", "lines"))
        } else {
            format!(
                "**damaged** ({} read)",
                plural(self.chain.lines, "line", "lines")
            )
        };
        let _ = writeln!(md, "| Audit chain | {chain} |\n");

        let _ = writeln!(md, "## Problems\n");
        let problems = self.problems();
        if problems.is_empty() {
            let _ = writeln!(md, "None.\n");
        }
        for problem in &problems {
            let _ = writeln!(md, "- {}", md_text(problem));
        }
        if !problems.is_empty() {
            md.push('\n');
        }

        let _ = writeln!(md, "## Tests\n");
        if self.tests.is_empty() {
            let _ = writeln!(md, "No tests in this log.\n");
        } else {
            let _ = writeln!(
                md,
                "| Test | Scheme | Permissions | TTL | Held | Denials asserted | Status |"
            );
            let _ = writeln!(md, "|---|---|---|---:|---:|---:|---|");
            for test in &self.tests {
                let held: Vec<String> = test.leases.iter().map(LeaseReport::held_text).collect();
                let name = if self.runs.len() > 1 {
                    format!(
                        "{} (run {})",
                        md_code(&test.name, true),
                        md_code(&test.run, true)
                    )
                } else {
                    md_code(&test.name, true)
                };
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    md_text(&test.schemes.join(", ")),
                    test.permissions
                        .iter()
                        .map(|p| md_code(p, true))
                        .collect::<Vec<_>>()
                        .join(", "),
                    md_text(test.ttl.as_deref().unwrap_or("—")),
                    if held.is_empty() {
                        "—".to_owned()
                    } else {
                        held.join(", ")
                    },
                    test.denials_asserted,
                    if test.flags.is_empty() {
                        "ok".to_owned()
                    } else {
                        let labels: Vec<&str> = test.flags.iter().map(|f| f.label()).collect();
                        md_text(&labels.join(", "))
                    }
                );
            }
            md.push('\n');
        }

        if self.hosts.iter().any(|h| !h.host.is_empty()) {
            let _ = writeln!(md, "## Hosts\n");
            let _ = writeln!(md, "| Host | Shards | Tests | Leases | Events | Span |");
            let _ = writeln!(md, "|---|---|---:|---:|---:|---|");
            for host in &self.hosts {
                let span = match (host.start_ms, host.end_ms) {
                    (Some(from), Some(to)) => format_millis(to.saturating_sub(from)),
                    _ => "—".to_owned(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {span} |",
                    md_code(&host.host, true),
                    md_text(&host.shards.join(", ")),
                    host.tests,
                    host.leases,
                    host.events
                );
            }
            md.push('\n');
        }

        if !self.reaps.is_empty() {
            let _ = writeln!(md, "## Reaped leftovers\n");
            for reap in &self.reaps {
                let _ = writeln!(
                    md,
                    "- {} ({}) at {}",
                    md_code(&reap.principal, false),
                    md_text(&reap.scheme),
                    md_text(&reap.ts)
                );
            }
            md.push('\n');
        }
        if !self.signing_keys.is_empty() {
            let _ = writeln!(md, "## Signing keys\n");
            let _ = writeln!(
                md,
                "Each append of this run was sealed by one of these Ed25519 keys. Keep this \
                 list: `jit-test verify` later checks the seals, but only this list tells \
                 whether they were made by these keys.\n"
            );
            for key in &self.signing_keys {
                let _ = writeln!(
                    md,
                    "- {} (run {}, process {})",
                    md_code(&key.public_key, false),
                    md_code(&key.run, false),
                    key.pid
                );
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "_Generated {} from {}._",
            md_text(&self.generated_at),
            md_code(&self.log, false)
        );
        md
    }
}

/// Plain Markdown text: every character Markdown or inline HTML could act on is
/// backslash-escaped (but `_` inside a word, which cannot start emphasis, is left as it is,
/// so `jit_7f3a` stays readable), line breaks become spaces.
fn md_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let intraword = c == '_'
            && i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        match c {
            '_' if intraword => out.push(c),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '$' | '#' | '!'
            | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span holding `text` literally: a backtick fence longer than any run of
/// backticks in it, line breaks as spaces, and in a table cell `|` as `\|` (which GFM
/// turns back into `|`).
fn md_code(text: &str, in_table: bool) -> String {
    let mut body: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if in_table {
        body = body.replace('|', "\\|");
    }
    if body.is_empty() {
        return "(none)".to_owned();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_text_and_code() {
        assert_eq!(md_text("a_b <i>|x|"), "a_b \\<i\\>\\|x\\|");
        assert_eq!(md_text("_a_ b_ __c"), "\\_a\\_ b\\_ \\_\\_c");
        assert_eq!(md_code("a::b", true), "`a::b`");
        assert_eq!(md_code("x`y|z", true), "``x`y\\|z``");
        assert_eq!(md_code("`x", false), "`` `x ``");
        assert_eq!(md_text("two\nlines"), "two lines");
    }
}
