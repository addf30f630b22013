//! Policy as code: the `[policy]` section of `jit-test.toml`.
//!
//! ```toml
//! [policy]
//! max_ttl = "5m"                      # no test may ask for longer
//! require_reason = false              # whether #[jit_test(reason = "...")] is required
//! approvers = ["baseline", "policy", "max-ttl"]   # the approval chain, in order (this is the default)
//! baseline = "jit-baseline.toml"      # the committed baseline (default: beside jit-test.toml,
//!                                     # else in the workspace root)
//!
//! [[policy.rules]]
//! tests = "orders::*"                 # glob on the test's module path
//! allow = ["pg:select:public.*", "token:*:orders"]   # permission globs
//! forbid = ["pg:delete:*"]
//! max_ttl = "1m"
//! require_reason = true
//! ```
//!
//! The `policy` approver looks at the rules whose `tests` glob matches the test: a
//! permission matching a `forbid` pattern, a ttl above a `max_ttl`, or a missing reason
//! denies the request, naming the rule's file and line. When some matching rule has an
//! `allow` list, every permission must match one of them. A request no rule matches is
//! passed to the next approver.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::approver::{AccessRequest, Approver, Decision};
use crate::config::{Config, ConfigError, parse_duration};

/// `*` matches any run of characters, `?` any one; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    policy: Option<Section>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Section {
    max_ttl: Option<String>,
    #[serde(default)]
    require_reason: bool,
    approvers: Option<Vec<String>>,
    baseline: Option<PathBuf>,
    #[serde(default)]
    rules: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    tests: String,
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    forbid: Vec<String>,
    max_ttl: Option<String>,
    #[serde(default)]
    require_reason: bool,
}

/// One `[[policy.rules]]` entry.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Where it is written, `file:line`.
    pub location: String,
    /// Glob on the test name.
    pub tests: String,
    /// Permission globs a matching test may request (`None`: no restriction).
    pub allow: Option<Vec<String>>,
    /// Permission globs a matching test may never request.
    pub forbid: Vec<String>,
    /// The longest ttl for a matching test.
    pub max_ttl: Option<Duration>,
    /// Whether a matching test must give a reason.
    pub require_reason: bool,
}

/// The parsed `[policy]` section.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The longest ttl for any test.
    pub max_ttl: Option<Duration>,
    /// Whether every test must give a reason.
    pub require_reason: bool,
    /// Names of the approvers in the chain, in order.
    pub approvers: Vec<String>,
    /// The baseline file.
    pub baseline: PathBuf,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// The default approval chain.
pub const DEFAULT_APPROVERS: [&str; 3] = ["baseline", "policy", "max-ttl"];

impl Policy {
    /// Reads `[policy]` from the configuration file (defaults where there is none).
    /// Unknown keys and bad values are errors naming the key and the file.
    pub fn load(config: &Config) -> Result<Policy, ConfigError> {
        let Some(path) = &config.file else {
            return Ok(Policy::defaults(&crate::config::workspace_root()));
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())))?;
        Policy::parse(&text, path)
    }

    fn defaults(dir: &Path) -> Policy {
        Policy {
            approvers: DEFAULT_APPROVERS.map(str::to_owned).to_vec(),
            baseline: dir.join("jit-baseline.toml"),
            ..Policy::default()
        }
    }

    /// Parses the `[policy]` section of `text`, the contents of the file at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, ConfigError> {
        let at = |what: String| ConfigError::new(format!("{}: {what}", path.display()));
        let doc: Document = toml::from_str(text).map_err(|e| at(e.to_string()))?;
        let section = doc.policy.unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut policy = Policy::defaults(dir);
        let duration = |value: &Option<String>, key: &str| {
            value
                .as_deref()
                .map(|v| parse_duration(v, key).map_err(|e| at(e.to_string())))
                .transpose()
        };
        policy.max_ttl = duration(&section.max_ttl, "policy.max_ttl")?;
        policy.require_reason = section.require_reason;
        if let Some(approvers) = section.approvers {
            if let Some(unknown) = approvers
                .iter()
                .find(|a| !DEFAULT_APPROVERS.contains(&a.as_str()))
            {
                return Err(at(format!(
                    "policy.approvers: unknown approver {unknown:?}; known: {}",
                    DEFAULT_APPROVERS.join(", ")
                )));
            }
            policy.approvers = approvers;
        }
        if let Some(baseline) = section.baseline {
            policy.baseline = dir.join(baseline);
        }
        for spanned in section.rules {
            let line = text[..spanned.span().start].matches('\n').count() + 1;
            let raw = spanned.into_inner();
            let location = format!("{}:{line}", path.display());
            for pattern in raw.allow.iter().flatten().chain(&raw.forbid) {
                if pattern.chars().any(|c| c.is_whitespace() || c == ',') {
                    return Err(at(format!(
                        "line {line}: permission pattern {pattern:?} must be one permission, without spaces or commas"
                    )));
                }
            }
            policy.rules.push(Rule {
                max_ttl: duration(&raw.max_ttl, "policy.rules.max_ttl")?,
                location,
                tests: raw.tests,
                allow: raw.allow,
                forbid: raw.forbid,
                require_reason: raw.require_reason,
            });
        }
        Ok(policy)
    }
}

impl Approver for Policy {
    fn name(&self) -> &str {
        "policy"
    }

    fn review(&self, request: &AccessRequest<'_>) -> Decision {
        let rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| glob_match(&r.tests, request.test))
            .collect();
        let permissions: Vec<String> = request
            .permissions
            .iter()
            .map(ToString::to_string)
            .collect();
        if request.trial {
            // A least-privilege trial asks for less than the test itself: decided already.
            return Decision::Pass;
        }
        if let Some(max) = self.max_ttl
            && request.ttl > max
        {
            return Decision::Deny(format!(
                "ttl {} exceeds policy.max_ttl {}",
                humantime::format_duration(request.ttl),
                humantime::format_duration(max)
            ));
        }
        let needs_reason = self.require_reason || rules.iter().any(|r| r.require_reason);
        if needs_reason && request.reason.is_none_or(|r| r.trim().is_empty()) {
            let source = rules
                .iter()
                .find(|r| r.require_reason)
                .map_or("policy.require_reason".to_owned(), |r| {
                    format!("the rule at {}", r.location)
                });
            return Decision::Deny(format!(
                "{source} requires a reason: add reason = \"...\" to #[jit_test]"
            ));
        }
        for rule in &rules {
            if let Some(max) = rule.max_ttl
                && request.ttl > max
            {
                return Decision::Deny(format!(
                    "ttl {} exceeds max_ttl {} of the rule at {}",
                    humantime::format_duration(request.ttl),
                    humantime::format_duration(max),
                    rule.location
                ));
            }
            for permission in &permissions {
                if let Some(pattern) = rule.forbid.iter().find(|f| glob_match(f, permission)) {
                    return Decision::Deny(format!(
                        "{permission} is forbidden by `{pattern}` in the rule at {}",
                        rule.location
                    ));
                }
            }
        }
        let allow_lists: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.allow.is_some())
            .collect();
        if !allow_lists.is_empty() {
            for permission in &permissions {
                let allowed = allow_lists
                    .iter()
                    .flat_map(|r| r.allow.iter().flatten())
                    .any(|a| glob_match(a, permission));
                if !allowed {
                    let at: Vec<&str> = allow_lists.iter().map(|r| r.location.as_str()).collect();
                    return Decision::Deny(format!(
                        "{permission} is not in the allow list of the rules at {}",
                        at.join(", ")
                    ));
                }
            }
        }
        if rules.is_empty() {
            Decision::Pass
        } else {
            Decision::Approve
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_test_scope::Scope;

    const FILE: &str = r#"
ttl = "10s"

[policy]
max_ttl = "5m"

[[policy.rules]]
tests = "orders::*"
allow = ["pg:select:public.*", "token:*:orders"]
forbid = ["pg:select:public.secrets"]
max_ttl = "1m"

[[policy.rules]]
tests = "admin::*"
require_reason = true
"#;

    fn policy() -> Policy {
        Policy::parse(FILE, Path::new("/ws/jit-test.toml")).unwrap()
    }

    fn review(test: &str, scope: &str, ttl: u64, reason: Option<&str>) -> Decision {
        let permissions = Scope::parse(scope).unwrap().permissions;
        policy().review(&AccessRequest {
            test,
            run_id: "r",
            scheme: "pg",
            permissions: &permissions,
            ttl: Duration::from_secs(ttl),
            reason,
            trial: false,
        })
    }

    fn denial(decision: Decision) -> String {
        match decision {
            Decision::Deny(reason) => reason,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("orders::*", "orders::a::b"));
        assert!(glob_match("pg:*:public.orders", "pg:select:public.orders"));
        assert!(!glob_match("pg:select:public.*", "pg:delete:public.orders"));
        assert!(glob_match("a?c*", "abcdef") && !glob_match("a?c", "ac"));
    }

    #[test]
    fn allowed_requests_are_approved_and_unmatched_ones_passed_on() {
        assert_eq!(
            review("orders::list", "pg:select:public.orders", 30, None),
            Decision::Approve
        );
        assert_eq!(
            review("other::t", "pg:delete:public.orders", 30, None),
            Decision::Pass
        );
    }

    #[test]
    fn denials_name_the_rule_file_and_line() {
        let forbidden = denial(review("orders::x", "pg:select:public.secrets", 30, None));
        assert!(forbidden.contains("/ws/jit-test.toml:7"), "{forbidden}");
        let outside = denial(review("orders::x", "pg:delete:public.orders", 30, None));
        assert!(
            outside.contains("not in the allow list") && outside.contains(":7"),
            "{outside}"
        );
        let long = denial(review("orders::x", "pg:select:public.orders", 120, None));
        assert!(long.contains("max_ttl 1m"), "{long}");
        let global = denial(review("other::x", "pg:select:public.orders", 600, None));
        assert!(global.contains("policy.max_ttl"), "{global}");
    }

    #[test]
    fn reasons_are_required_where_a_rule_says_so() {
        let missing = denial(review("admin::drop", "pg:select:public.t", 30, None));
        assert!(
            missing.contains(":13") && missing.contains("reason"),
            "{missing}"
        );
        assert_eq!(
            review("admin::drop", "pg:select:public.t", 30, Some("cleanup")),
            Decision::Approve
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let path = Path::new("jit-test.toml");
        let unknown = Policy::parse("[policy]\nmax_tll = \"1m\"", path)
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("max_tll"), "{unknown}");
        let bad = Policy::parse("[policy]\nmax_ttl = \"soon\"", path)
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("policy.max_ttl") && bad.contains("soon"),
            "{bad}"
        );
        let rule = Policy::parse("[[policy.rules]]\ntests = \"*\"\nallw = []", path)
            .unwrap_err()
            .to_string();
        assert!(rule.contains("allw"), "{rule}");
        let approver = Policy::parse("[policy]\napprovers = [\"boss\"]", path)
            .unwrap_err()
            .to_string();
        assert!(approver.contains("boss"), "{approver}");
    }
}
