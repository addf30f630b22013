//! [`Credentials`]: the tuple of credential types a test takes, acquired one scheme at a
//! time.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use jit_test_scope::Scope;

use super::broker::{Broker, LeaseRequest};
use super::error::LifecycleError;
use super::lease::AnyLease;
use super::registry::provider;
use crate::provider::{Credential, scheme_of};

/// What the broker passes around while acquiring one test's credentials.
pub struct Acquisition<'a> {
    pub(crate) broker: &'a Broker,
    pub(crate) test: &'a str,
    pub(crate) scope: &'a Scope,
    pub(crate) deny: &'a Scope,
    pub(crate) ttl: Duration,
    pub(crate) reason: Option<&'a str>,
    pub(crate) trial: bool,
    pub(crate) leases: Vec<Box<dyn AnyLease>>,
}

impl Acquisition<'_> {
    /// Grants the permissions of `C`'s scheme and returns the credential.
    pub async fn take<C: Credential>(&mut self) -> Result<C, LifecycleError> {
        let scheme = scheme_of::<C>();
        let provider = provider::<C::Provider>().map_err(|source| LifecycleError::Provider {
            test: self.test.to_owned(),
            scheme: scheme.to_owned(),
            step: "setup",
            source,
        })?;
        let ask = LeaseRequest {
            test: self.test.to_owned(),
            permissions: self.scope.of_scheme(scheme),
            deny: self.deny.of_scheme(scheme),
            ttl: self.ttl,
            reason: self.reason.map(str::to_owned),
            trial: self.trial,
        };
        let mut lease = self.broker.acquire(&provider, ask).await?;
        let credential = lease.take_credential().expect("fresh lease");
        self.leases.push(Box::new(lease));
        Ok(credential)
    }
}

/// The acquisition of one credential, boxed.
pub type Taking<'a, C> = Pin<Box<dyn Future<Output = Result<C, LifecycleError>> + 'a>>;

/// Acquires credential `C` ([`Acquisition::take`]), boxed: what the credential tuples
/// call for each element. Everything below it (the broker's grant, the lease and its
/// watchdog, the provider's futures) is then code of this one function per credential
/// type, which a provider crate compiles once for every crate of tests with
/// [`precompile!`](crate::precompile).
pub fn take<'a, 'b, C: Credential>(acq: &'a mut Acquisition<'b>) -> Taking<'a, C> {
    Box::pin(acq.take::<C>())
}

/// Compiles the lifecycle's code for these credential types in the crate that invokes it:
/// a provider crate, for its own credential types.
///
/// Debug builds reuse generic code a dependency has already compiled for the same types,
/// so each crate of tests then compiles only its tests, not the broker's grant, lease and
/// watchdog code for every provider it uses again (`jit-test-providers` does this for
/// each of its providers). Without it everything works the same, compiled in each crate
/// of tests.
///
/// ```
/// # use jit_test::{Credential, Provider};
/// # macro_rules! provider { ($grant:ident, $provider:ident, $scheme:literal) => {
/// # struct $grant;
/// # struct $provider;
/// # impl Credential for $grant { type Provider = $provider; }
/// # impl Provider for $provider {
/// #     const SCHEME: &'static str = $scheme;
/// #     type Credential = $grant;
/// #     type Lease = ();
/// #     fn from_config(_: &jit_test::Config) -> Result<Self, jit_test::ProviderError> { Ok($provider) }
/// #     fn validate(_: &jit_test::Permission) -> Result<(), String> { Ok(()) }
/// #     async fn grant(&self, _: &jit_test::GrantRequest) -> Result<jit_test::Granted<Self>, jit_test::ProviderError> { unimplemented!() }
/// #     async fn revoke(&self, _: &()) -> Result<(), jit_test::ProviderError> { Ok(()) }
/// #     async fn prove_dead(&self, _: &()) -> Result<jit_test::Proof, jit_test::ProviderError> { unimplemented!() }
/// #     fn classify(_: &(dyn std::error::Error + 'static)) -> Option<jit_test::ErrorClass> { None }
/// #     async fn reap(&self, _: std::time::Duration) -> Result<Vec<String>, jit_test::ProviderError> { Ok(Vec::new()) }
/// # }
/// # } }
/// # provider!(MyGrant, MyProvider, "my");
/// # provider!(OtherGrant, OtherProvider, "other");
/// jit_test::precompile!(MyGrant);
/// // or several at once
/// jit_test::precompile!(MyGrant, OtherGrant);
/// ```
#[macro_export]
macro_rules! precompile {
    ($($credential:ty),+ $(,)?) => {
        $(
            const _: () = {
                #[used]
                static TAKE: for<'a, 'b> fn(
                    &'a mut $crate::Acquisition<'b>,
                ) -> $crate::__private::Taking<'a, $credential> =
                    $crate::__private::take::<$credential>;
            };
        )+
    };
}

/// The credentials a test takes: a tuple of [`Credential`] types, one per scheme.
pub trait Credentials: Sized + Send + 'static {
    /// The schemes, in parameter order.
    fn schemes() -> Vec<&'static str>;
    /// Acquires each credential in turn.
    fn acquire(acq: &mut Acquisition<'_>) -> impl Future<Output = Result<Self, LifecycleError>>;
}

macro_rules! credentials_tuple {
    ($($c:ident),+) => {
        impl<$($c: Credential),+> Credentials for ($($c,)+) {
            fn schemes() -> Vec<&'static str> {
                vec![$(scheme_of::<$c>()),+]
            }
            async fn acquire(acq: &mut Acquisition<'_>) -> Result<Self, LifecycleError> {
                Ok(($(take::<$c>(acq).await?,)+))
            }
        }
    };
}
credentials_tuple!(A);
credentials_tuple!(A, B);
credentials_tuple!(A, B, C);
credentials_tuple!(A, B, C, D);
credentials_tuple!(A, B, C, D, E);
credentials_tuple!(A, B, C, D, E, F);

/// A test's credentials with their types erased, so that the runner is compiled once, in
/// jit-test, whatever the tests take: the schemes, and how to acquire them.
pub(crate) struct Takes {
    pub(crate) schemes: Vec<&'static str>,
    pub(crate) acquire: Acquire,
}

/// Acquires a test's credentials, as a `Box<dyn Any>` holding the tuple.
pub(crate) type Acquire = for<'a, 'b> fn(&'a mut Acquisition<'b>) -> AcquireAny<'a>;

/// The acquisition of a test's credentials, erased.
pub(crate) type AcquireAny<'a> =
    Pin<Box<dyn Future<Output = Result<Box<dyn Any + Send>, LifecycleError>> + 'a>>;

impl Takes {
    /// What a test taking `C` takes.
    pub(crate) fn of<C: Credentials>() -> Takes {
        Takes {
            schemes: C::schemes(),
            acquire: acquire_any::<C>,
        }
    }
}

fn acquire_any<'a, 'b, C: Credentials>(acq: &'a mut Acquisition<'b>) -> AcquireAny<'a> {
    Box::pin(async move {
        let credentials = C::acquire(acq).await?;
        Ok(Box::new(credentials) as Box<dyn Any + Send>)
    })
}
