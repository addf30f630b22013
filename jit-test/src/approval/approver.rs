//! The [`Approver`] trait, its [`Chain`] and the default approver, [`MaxTtl`].

use std::sync::Arc;
use std::time::Duration;

use jit_test_scope::Permission;

/// What a test asks for, as an approver sees it.
#[derive(Clone, Copy, Debug)]
pub struct AccessRequest<'a> {
    /// Full name of the test.
    pub test: &'a str,
    /// The run id.
    pub run_id: &'a str,
    /// The provider's scheme.
    pub scheme: &'a str,
    /// The permissions asked for.
    pub permissions: &'a [Permission],
    /// The lifetime asked for.
    pub ttl: Duration,
    /// Why the test needs the access (`#[jit_test(reason = "...")]`), if given.
    pub reason: Option<&'a str>,
    /// True for the least-privilege finder's runs with a permission removed: a subset of
    /// a request already approved. Approvers that keep records (the baseline) skip them.
    pub trial: bool,
}

/// An approver's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Grant it.
    Approve,
    /// Refuse it, for this reason (shown in the test failure and the audit log).
    Deny(String),
    /// No opinion: ask the next approver in the chain.
    Pass,
}

/// Decides on access requests before anything is granted: policy as code.
pub trait Approver: Send + Sync {
    /// A short name for the audit log, e.g. `max-ttl`.
    fn name(&self) -> &str;
    /// Reviews one request.
    fn review(&self, request: &AccessRequest<'_>) -> Decision;
}

/// The default approver: allows any request whose ttl is at most the limit.
#[derive(Clone, Copy, Debug)]
pub struct MaxTtl(pub Duration);

impl Approver for MaxTtl {
    fn name(&self) -> &str {
        "max-ttl"
    }

    fn review(&self, request: &AccessRequest<'_>) -> Decision {
        if request.ttl <= self.0 {
            Decision::Approve
        } else {
            Decision::Deny(format!(
                "ttl {} exceeds the maximum of {} (set max_ttl in jit-test.toml or JIT_TEST_MAX_TTL)",
                humantime::format_duration(request.ttl),
                humantime::format_duration(self.0)
            ))
        }
    }
}

/// Approvers asked in order: the first that approves or denies decides. A request that
/// every approver passes on is denied: nothing is granted without an approval.
#[derive(Clone, Default)]
pub struct Chain(pub Vec<Arc<dyn Approver>>);

impl Chain {
    /// Reviews `request`; returns the decision and the name of the approver that made it.
    pub fn decide(&self, request: &AccessRequest<'_>) -> (Decision, String) {
        for approver in &self.0 {
            match approver.review(request) {
                Decision::Pass => continue,
                decision => return (decision, approver.name().to_owned()),
            }
        }
        (
            Decision::Deny("no approver in the chain approved the request".to_owned()),
            "chain".to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Never;
    impl Approver for Never {
        fn name(&self) -> &str {
            "never"
        }
        fn review(&self, _: &AccessRequest<'_>) -> Decision {
            Decision::Pass
        }
    }

    fn request(ttl: u64) -> AccessRequest<'static> {
        AccessRequest {
            test: "t",
            run_id: "r",
            scheme: "token",
            permissions: &[],
            ttl: Duration::from_secs(ttl),
            reason: None,
            trial: false,
        }
    }

    #[test]
    fn max_ttl_denies_longer_requests_with_the_setting_to_change() {
        let chain = Chain(vec![Arc::new(MaxTtl(Duration::from_secs(60)))]);
        assert_eq!(chain.decide(&request(60)).0, Decision::Approve);
        match chain.decide(&request(61)).0 {
            Decision::Deny(reason) => assert!(reason.contains("max_ttl"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_chain_where_everyone_passes_denies() {
        let chain = Chain(vec![Arc::new(Never)]);
        assert!(matches!(chain.decide(&request(1)).0, Decision::Deny(_)));
    }
}
