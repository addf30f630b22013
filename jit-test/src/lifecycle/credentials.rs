//! [`Credentials`]: the tuple of credential types a test takes, acquired one scheme at a
//! time.

use std::future::Future;
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
                Ok(($(acq.take::<$c>().await?,)+))
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
