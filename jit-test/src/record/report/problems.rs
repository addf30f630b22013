//! The report's problems: one list, worst first by [`ProblemKind`], each with its
//! message.

use serde::Serialize;

use crate::audit::ProblemKind;

use super::model::{LeaseStatus, RunReport};

/// One problem, as listed in the report.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Problem {
    kind: ProblemKind,
    /// The test's index in `tests`, if the problem belongs to one.
    test: Option<usize>,
    message: String,
}

impl Problem {
    /// A problem of `kind`, its message led by the kind's label.
    fn new(kind: ProblemKind, test: Option<usize>, message: &str) -> Problem {
        Problem {
            kind,
            test,
            message: format!("{}: {message}", kind.label()),
        }
    }
}

impl RunReport {
    pub(super) fn problem_list(&self) -> Vec<Problem> {
        let many_runs = self.runs.len() > 1;
        let mut out = Vec::new();
        for (index, test) in self.tests.iter().enumerate() {
            let name = if test.name.is_empty() {
                "(unnamed)"
            } else {
                &test.name
            };
            let of = if many_runs {
                format!("test {name} (run {})", test.run)
            } else {
                format!("test {name}")
            };
            let mut push =
                |kind, message: String| out.push(Problem::new(kind, Some(index), &message));
            for lease in &test.leases {
                let who = format!("{} principal {}", lease.scheme, lease.principal);
                if lease.leaked {
                    push(
                        ProblemKind::Leak,
                        format!("{who} of {of} still worked after revocation"),
                    );
                }
                for failure in &lease.revoke_failures {
                    let after = if lease.revoked_at.is_some() {
                        "; revoked later"
                    } else if lease.reaped {
                        "; reaped later"
                    } else {
                        "; never revoked or reaped"
                    };
                    push(
                        ProblemKind::RevokeFailed,
                        format!("{who} of {of}: {failure}{after}"),
                    );
                }
                match lease.status {
                    LeaseStatus::Unrevoked => push(
                        ProblemKind::Unrevoked,
                        format!("{who} of {of} was never revoked or reaped"),
                    ),
                    LeaseStatus::Unproven => push(
                        ProblemKind::Unproven,
                        format!("{who} of {of} was revoked but never proven dead"),
                    ),
                    _ => {}
                }
            }
            for denied in &test.approvals_denied {
                push(
                    ProblemKind::ApprovalDenied,
                    format!(
                        "{of} asked for {} ({}): by {}: {}",
                        denied.permissions.join(", "),
                        denied.scheme,
                        denied.approver.as_deref().unwrap_or("an approver"),
                        denied.reason
                    ),
                );
            }
            for failed in &test.grant_failures {
                push(
                    ProblemKind::GrantFailed,
                    format!(
                        "{of}, {} ({}): {}",
                        failed.permissions.join(", "),
                        failed.scheme,
                        failed.reason
                    ),
                );
            }
            for beyond in &test.beyond_scope {
                push(
                    ProblemKind::BeyondScope,
                    format!(
                        "{} principal {} of {of} holds privileges beyond its scope: {}",
                        beyond.scheme,
                        beyond.principal,
                        beyond.privileges.join(", ")
                    ),
                );
            }
        }
        for tear in &self.tears {
            let message = format!(
                "an append cut short by a crash ({} bytes at byte {}) was set aside in {}",
                tear.bytes, tear.offset, tear.kept
            );
            out.push(Problem::new(ProblemKind::Torn, None, &message));
        }
        for problem in &self.chain.problems {
            if problem.finding.kind() == ProblemKind::Chain {
                let message = problem.to_string();
                out.push(Problem::new(ProblemKind::Chain, None, &message));
            }
        }
        // Worst first (stable: within a kind, in the order of the log).
        out.sort_by_key(|p| p.kind);
        out
    }

    /// Everything wrong, one line each, worst first: leaks, a damaged audit chain, failed
    /// revocations, leases never revoked or never proven dead, privileges beyond scope,
    /// failed grants and refused approvals. Empty when all is well. An expiry during a test or a reaped
    /// leftover is not a problem by itself.
    pub fn problems(&self) -> Vec<String> {
        self.problem_list().into_iter().map(|p| p.message).collect()
    }
}
