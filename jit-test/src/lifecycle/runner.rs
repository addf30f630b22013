//! Running one test body under the lifecycle: [`Test`] and [`run`].
//!
//! Provider work (grant, watchdog, revoke, proof) runs on one process-wide background
//! runtime, so admin connections are made once per process and watchdogs fire even when
//! a test body blocks its thread. Each body runs on a thread and runtime of its own,
//! built fresh for the test, under a timeout; the credentials are released whatever the
//! body does: pass, fail, panic or hang.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use jit_test_scope::Scope;

use super::broker::Broker;
use super::credentials::{Acquire, Acquisition, Credentials, Takes};
use super::error::LifecycleError;
use super::hook;
use super::lease::{AnyLease, Released};
use super::registry::broker_runtime;
use crate::config::{Config, check_ttl};
use crate::minimize;

/// The flavour of the runtime a test body runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    /// One thread (the default, like `#[tokio::test]`).
    #[default]
    CurrentThread,
    /// A multi-threaded runtime with this many workers (0: one per CPU).
    MultiThread(usize),
}

/// What a test body returns: `()` or a `Result` (as `#[test]` accepts).
pub trait Outcome {
    /// `Err` with the message to fail the test with.
    fn into_result(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<T, E: std::fmt::Debug> Outcome for Result<T, E> {
    fn into_result(self) -> Result<(), String> {
        self.map(drop).map_err(|e| format!("Error: {e:?}"))
    }
}

/// One test to run under the lifecycle. Built by `#[jit_test]`; use it directly for
/// `harness = false` or another test framework.
#[derive(Clone, Debug)]
pub struct Test {
    name: String,
    scope: String,
    deny: String,
    reason: Option<String>,
    ttl: Option<Duration>,
    timeout: Option<Duration>,
    flavor: Flavor,
    minimize: Option<bool>,
    setup: Option<Setup>,
}

/// Work to do before anything is granted (a migration, say), on a runtime of its own.
#[derive(Clone)]
struct Setup(Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Setup(..)")
    }
}

/// A test body with its runtime set up: takes the credentials (the tuple, boxed), reports
/// the outcome. Erased, so that the runner is compiled once, here.
type Body = dyn Fn(Box<dyn Any + Send>) -> Result<(), String> + Send + Sync;

/// The credentials of type `C` out of their box.
fn unbox<C: Credentials>(credentials: Box<dyn Any + Send>) -> C {
    *credentials
        .downcast::<C>()
        .expect("the acquisition made this type")
}

enum BodyEnd {
    Returned(Result<(), String>),
    Panicked(Box<dyn Any + Send>),
}

/// One pass of the lifecycle: how the body ended (`None`: timed out) and what the
/// release found.
struct Attempt {
    end: Option<BodyEnd>,
    problems: Vec<String>,
    /// What a failure message should mention: expiry during the test, privileges held
    /// beyond the scope.
    notes: Vec<String>,
}

impl Attempt {
    /// The body's verdict alone, as the minimizer needs it.
    fn body_result(&self) -> Result<(), String> {
        match &self.end {
            None => Err("timed out".to_owned()),
            Some(BodyEnd::Returned(result)) => result.clone(),
            Some(BodyEnd::Panicked(payload)) => Err(panic_message(payload.as_ref())),
        }
    }
}

/// The settings of one test, resolved.
struct Resolved {
    scope: Scope,
    deny: Scope,
    ttl: Duration,
    timeout: Duration,
}

impl Test {
    /// A test named `name` (shown in failures and the audit log).
    pub fn new(name: impl Into<String>) -> Test {
        Test {
            name: name.into(),
            scope: String::new(),
            deny: String::new(),
            reason: None,
            ttl: None,
            timeout: None,
            flavor: Flavor::default(),
            minimize: None,
            setup: None,
        }
    }

    /// The permissions to grant, e.g. `"token:read:orders, pg:select:public.orders"`.
    pub fn scope(mut self, scope: impl Into<String>) -> Test {
        self.scope = scope.into();
        self
    }

    /// Permissions the principals must not hold (checked by providers that can).
    pub fn deny(mut self, deny: impl Into<String>) -> Test {
        self.deny = deny.into();
        self
    }

    /// Why the test needs the access, for approvers and the audit log.
    pub fn reason(mut self, reason: impl Into<String>) -> Test {
        self.reason = Some(reason.into());
        self
    }

    /// The credentials' lifetime (default: `ttl` in the configuration, 30 s).
    pub fn ttl(mut self, ttl: Duration) -> Test {
        self.ttl = Some(ttl);
        self
    }

    /// How long the body may run (default: `timeout` in the configuration, 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Test {
        self.timeout = Some(timeout);
        self
    }

    /// The runtime flavour of an async body.
    pub fn flavor(mut self, flavor: Flavor) -> Test {
        self.flavor = flavor;
        self
    }

    /// Whether to look for unneeded permissions after a pass (default: whether
    /// `JIT_TEST_MINIMIZE` is on). See [`crate::minimize`].
    pub fn minimize(mut self, minimize: bool) -> Test {
        self.minimize = Some(minimize);
        self
    }

    /// Runs `setup` (an async fn, e.g. a migration with an admin connection) before
    /// anything is granted, once per test: a grant that names a table needs the table.
    /// Its failure fails the test with the setup's error.
    pub fn setup<F, Fut>(mut self, setup: F) -> Test
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future,
        Fut::Output: Outcome,
    {
        self.setup = Some(Setup(Arc::new(move || {
            block_on_outcome(Flavor::CurrentThread, setup())
        })));
        self
    }

    /// Runs an async body on a fresh runtime of its own. The body is `Fn` so that the
    /// least-privilege finder (`JIT_TEST_MINIMIZE=1`) can run it again.
    #[track_caller]
    pub fn run<C, F, Fut>(self, body: F)
    where
        C: Credentials,
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future,
        Fut::Output: Outcome,
    {
        let flavor = self.flavor;
        self.execute(
            Takes::of::<C>(),
            Arc::new(move |credentials| block_on_outcome(flavor, body(unbox(credentials)))),
        )
    }

    /// Runs a blocking body.
    #[track_caller]
    pub fn run_blocking<C, F, O>(self, body: F)
    where
        C: Credentials,
        F: Fn(C) -> O + Send + Sync + 'static,
        O: Outcome,
    {
        self.execute(
            Takes::of::<C>(),
            Arc::new(move |credentials| body(unbox(credentials)).into_result()),
        )
    }

    #[track_caller]
    fn fail(&self, message: impl std::fmt::Display) -> ! {
        panic!("jit-test: {message}")
    }

    fn resolve(&self, config: &Config, schemes: &[&'static str]) -> Result<Resolved, String> {
        let parse = |text: &str, what: &str| {
            Scope::parse(text).map_err(|e| format!("test {}: bad {what}: {e}", self.name))
        };
        let scope = parse(&self.scope, "scope")?;
        let deny = if self.deny.is_empty() {
            Scope::default()
        } else {
            parse(&self.deny, "deny")?
        };
        self.check_schemes(&scope, schemes)?;
        let ttl = self.ttl.unwrap_or(config.ttl);
        check_ttl(ttl, "this test's ttl", config.max_ttl, "max_ttl")
            .map_err(|e| format!("test {}: {e}", self.name))?;
        Ok(Resolved {
            scope,
            deny,
            ttl,
            timeout: self.timeout.unwrap_or(config.timeout),
        })
    }

    #[track_caller]
    fn execute(self, takes: Takes, body: Arc<Body>) {
        let broker = Broker::global();
        if broker.config().summary {
            crate::record::summary::at_exit();
        }
        let plan = match self.resolve(broker.config(), &takes.schemes) {
            Ok(plan) => plan,
            Err(message) => self.fail(message),
        };
        if let Some(Setup(setup)) = &self.setup
            && let Err(message) = setup()
        {
            self.fail(format!("test {}: setup failed: {message}", self.name));
        }
        let attempt = match self.attempt(broker, &plan, &plan.scope, takes.acquire, &body) {
            Ok(attempt) => attempt,
            Err(setup) => self.fail(setup),
        };
        let minimize = self.minimize.unwrap_or(broker.config().minimize);
        if minimize && matches!(attempt.end, Some(BodyEnd::Returned(Ok(())))) {
            let verdict = minimize::minimize(&plan.scope, |reduced| {
                self.attempt(broker, &plan, reduced, takes.acquire, &body)
                    .and_then(|a| a.body_result())
            });
            minimize::publish(&self.name, &verdict);
            broker.record_minimized(&self.name, &verdict);
        }
        self.conclude(attempt, plan.timeout);
    }

    /// Acquires credentials for `scope`, runs the body on its own thread under the
    /// timeout, releases everything. `Err` when the credentials could not be had.
    fn attempt(
        &self,
        broker: &'static Broker,
        plan: &Resolved,
        scope: &Scope,
        acquire: Acquire,
        body: &Arc<Body>,
    ) -> Result<Attempt, String> {
        let mut acquisition = Acquisition {
            broker,
            test: &self.name,
            scope,
            deny: &plan.deny,
            ttl: plan.ttl,
            reason: self.reason.as_deref(),
            trial: scope != &plan.scope,
            leases: Vec::new(),
        };
        let acquired = broker_runtime().block_on(acquire(&mut acquisition));
        let leases = std::mem::take(&mut acquisition.leases);
        let credentials = match acquired {
            Ok(credentials) => credentials,
            Err(e) => return Err(format!("{e}{}", render_failures(&release_all(leases)))),
        };

        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        let body = Arc::clone(body);
        let test = self.name.clone();
        std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || {
                hook::install(move |asserted| {
                    let detail = format!("{}: {}", asserted.expression, asserted.class);
                    broker.record_assertion(&test, asserted.scheme, detail);
                });
                let end = match catch_unwind(AssertUnwindSafe(|| body(credentials))) {
                    Ok(result) => BodyEnd::Returned(result),
                    Err(payload) => BodyEnd::Panicked(payload),
                };
                let _ = tx.send(end);
            })
            .expect("cannot spawn the test body's thread");
        let end = rx.recv_timeout(plan.timeout).ok();
        let ran = started.elapsed();

        let mut attempt = Attempt {
            end,
            problems: Vec::new(),
            notes: Vec::new(),
        };
        for outcome in release_all(leases) {
            let released = match outcome {
                Ok(released) => released,
                Err(e) => {
                    attempt.problems.push(e.to_string());
                    continue;
                }
            };
            let info = &released.info;
            if !info.beyond_scope.is_empty() {
                attempt.notes.push(format!(
                    "note: the {} principal {} also held, beyond its scope: {}",
                    info.scheme,
                    info.principal,
                    info.beyond_scope.join(", ")
                ));
            }
            if released.expired_during_test {
                attempt.notes.push(format!(
                    "note: the {} credential ({}) expired during the test, {} after it was \
                     granted (ttl {}); the body ran {}. Failures after that point come from \
                     the expiry, not from a missing permission",
                    info.scheme,
                    info.principal,
                    millis(info.lifetime()),
                    humantime::format_duration(info.ttl),
                    millis(ran),
                ));
            }
        }
        Ok(attempt)
    }

    /// Passes, fails or re-raises the body's panic, with the lifecycle's findings.
    #[track_caller]
    fn conclude(&self, attempt: Attempt, timeout: Duration) {
        let lifecycle = attempt.problems.join("\n");
        let notes = attempt.notes.join("\n");
        let clean = attempt.problems.is_empty();
        match attempt.end {
            None => self.fail(format!(
                "test {} timed out after {}; its credentials were revoked{}",
                self.name,
                humantime::format_duration(timeout),
                render(&[lifecycle])
            )),
            Some(BodyEnd::Returned(Ok(()))) if clean => {}
            Some(BodyEnd::Returned(Ok(()))) => self.fail(lifecycle),
            Some(BodyEnd::Returned(Err(message))) => {
                panic!("{message}{}", render(&[notes, lifecycle]))
            }
            Some(BodyEnd::Panicked(payload)) if clean && notes.is_empty() => resume_unwind(payload),
            Some(BodyEnd::Panicked(payload)) => panic!(
                "{}{}",
                panic_message(payload.as_ref()),
                render(&[notes, lifecycle])
            ),
        }
    }

    fn check_schemes(&self, scope: &Scope, taken: &[&'static str]) -> Result<(), String> {
        let name = &self.name;
        for scheme in scope.schemes() {
            if !taken.contains(&scheme) {
                return Err(format!(
                    "test {name}: the scope grants `{scheme}` permissions, but no parameter takes a `{scheme}` credential"
                ));
            }
        }
        for (i, scheme) in taken.iter().enumerate() {
            if taken[..i].contains(scheme) {
                return Err(format!(
                    "test {name}: two parameters take a `{scheme}` credential; use one"
                ));
            }
            if !scope.schemes().contains(scheme) {
                return Err(format!(
                    "test {name}: a parameter takes a `{scheme}` credential, but the scope has no `{scheme}` permissions"
                ));
            }
        }
        Ok(())
    }
}

/// A duration rounded to milliseconds, for messages.
fn millis(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
}

/// Runs `outcome` to completion on a new runtime of the given flavour. The future is
/// boxed, so that the runtime code is compiled once, not once per test.
fn block_on_outcome<Fut>(flavor: Flavor, outcome: Fut) -> Result<(), String>
where
    Fut: Future,
    Fut::Output: Outcome,
{
    block_on_fresh_runtime(flavor, Box::pin(async move { outcome.await.into_result() }))
}

/// Runs `future` to completion on a new runtime of the given flavour.
fn block_on_fresh_runtime(
    flavor: Flavor,
    future: Pin<Box<dyn Future<Output = Result<(), String>> + '_>>,
) -> Result<(), String> {
    let mut builder = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread(workers) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if workers > 0 {
                b.worker_threads(workers);
            }
            b
        }
    };
    let runtime = builder
        .enable_all()
        .build()
        .expect("cannot build the test's runtime");
    runtime.block_on(future)
}

fn release_all(leases: Vec<Box<dyn AnyLease>>) -> Vec<Result<Released, LifecycleError>> {
    broker_runtime().block_on(async {
        let mut outcomes = Vec::with_capacity(leases.len());
        for lease in leases {
            outcomes.push(lease.release().await);
        }
        outcomes
    })
}

fn render_failures(outcomes: &[Result<Released, LifecycleError>]) -> String {
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err().map(ToString::to_string))
        .collect();
    render(&[failures.join("\n")])
}

fn render(sections: &[String]) -> String {
    sections
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| format!("\n{s}"))
        .collect()
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the test panicked".to_owned())
}

/// The future of an async test body, boxed by `#[jit_test]` so that the code that runs it
/// is compiled once per credential tuple and output type, not once per test.
pub type BoxedBody<O> = Pin<Box<dyn Future<Output = O>>>;

/// `#[jit_test]`'s entry for an async body. `body` is a function pointer (the macro's
/// closure captures nothing): each test adds only that closure and its own future to the
/// user's crate; [`Test::run`]'s machinery is instantiated once per `(C, O)`.
#[track_caller]
pub fn run_async<C: Credentials, O: Outcome + 'static>(test: Test, body: fn(C) -> BoxedBody<O>) {
    test.run(body)
}

/// `#[jit_test]`'s entry for a plain `fn` body, as [`run_async`] is for an async one.
#[track_caller]
pub fn run_sync<C: Credentials, O: Outcome + 'static>(test: Test, body: fn(C) -> O) {
    test.run_blocking(body)
}

/// Runs `body` with credentials for `scope` under the full lifecycle, without the macro.
/// The test is named after the current thread (libtest names it after the test).
///
/// A single credential is a one-element tuple: `|(token,): (TokenGrant,)| async move { ... }`.
#[track_caller]
pub fn run<C, F, Fut>(scope: &str, body: F)
where
    C: Credentials,
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: Future,
    Fut::Output: Outcome,
{
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    Test::new(name).scope(scope).run(body)
}
