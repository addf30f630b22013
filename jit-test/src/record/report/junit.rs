//! The report as JUnit XML (`jit-test report --junit <file>`), for CI systems that show
//! test results: one `testcase` per test, its host, permissions, leases and the
//! permissions the minimizer found unneeded as properties, and a `failure` for each
//! problem.

use std::fmt::Write;

use super::model::{Flag, RunReport, TestReport};

/// Escapes `text` for an XML attribute or text node.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn property(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "        <property name=\"{}\" value=\"{}\"/>",
        xml(name),
        xml(value)
    );
}

/// `module::path::name` split into JUnit's class name and name.
fn split_name(name: &str) -> (&str, &str) {
    name.rsplit_once("::").unwrap_or(("jit-test", name))
}

fn testcase(out: &mut String, test: &TestReport) {
    let (class, name) = split_name(&test.name);
    let _ = writeln!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\">",
        xml(class),
        xml(name)
    );
    out.push_str("      <properties>\n");
    property(out, "run", &test.run);
    property(out, "host", &test.host);
    if let Some(shard) = &test.shard {
        property(out, "shard", shard);
    }
    for permission in &test.permissions {
        property(out, "permission", permission);
    }
    for lease in &test.leases {
        let prefix = format!("lease.{}", lease.id);
        property(out, &prefix, &lease.principal);
        property(out, &format!("{prefix}.scheme"), &lease.scheme);
        property(
            out,
            &format!("{prefix}.permissions"),
            &lease.permissions.join(", "),
        );
        property(
            out,
            &format!("{prefix}.status"),
            &format!("{:?}", lease.status).to_lowercase(),
        );
        if let Some(held) = lease.held_ms {
            property(out, &format!("{prefix}.held_ms"), &held.to_string());
        }
    }
    if let Some(verdict) = &test.minimizer {
        for permission in &verdict.unneeded {
            property(out, "unneeded", permission);
        }
    }
    out.push_str("      </properties>\n");
    for flag in &test.flags {
        if let Flag::Problem(kind) = flag {
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}: {}\"/>",
                xml(kind.label()),
                xml(&test.name),
                xml(kind.label())
            );
        }
    }
    out.push_str("    </testcase>\n");
}

impl RunReport {
    /// The report as JUnit XML: one `testsuite` per run, one `testcase` per test with
    /// its run, host, shard, permissions and each lease (principal, scheme, permissions,
    /// status, time held) as properties, and a `failure` per problem of the test.
    pub fn to_junit(&self) -> String {
        let failing = |t: &TestReport| t.flags.iter().any(|f| matches!(f, Flag::Problem(_)));
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failures = self.tests.iter().filter(|t| failing(t)).count();
        let _ = writeln!(
            out,
            "<testsuites name=\"jit-test\" tests=\"{}\" failures=\"{failures}\">",
            self.tests.len()
        );
        for run in &self.runs {
            let tests: Vec<&TestReport> = self.tests.iter().filter(|t| &t.run == run).collect();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
                xml(run),
                tests.len(),
                tests.iter().filter(|t| failing(t)).count()
            );
            for test in tests {
                testcase(&mut out, test);
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_control_characters_replaced() {
        assert_eq!(
            xml("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}"
        );
        assert_eq!(split_name("m::n::t"), ("m::n", "t"));
        assert_eq!(split_name("t"), ("jit-test", "t"));
    }
}
