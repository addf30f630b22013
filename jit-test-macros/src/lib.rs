//! The `#[jit_test]` attribute of [jit-test](https://docs.rs/jit-test). Use it through
//! `jit_test::jit_test`; this crate holds no runtime logic, only the parsing, checking and
//! expansion of the attribute.

mod args;
mod ctxt;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Makes a function an integration test that receives fresh, least-privilege, short-lived
/// credentials, revokes them afterwards whatever the test did, and proves them dead.
///
/// ```text
/// use jit_test::jit_test;
/// use jit_test_providers::postgres::PgGrant;
/// use jit_test_providers::token::TokenGrant;
///
/// /// A customer can place an order, and cannot delete one.
/// #[jit_test(scope = "token:read:orders, pg:select:public.orders, pg:insert:public.orders", ttl = "30s")]
/// async fn customer_places_order(token: TokenGrant, pg: PgGrant) -> anyhow::Result<()> {
///     let db = pg.connect().await?;
///     // ...
///     Ok(())
/// }
/// ```
///
/// # The function
///
/// - `async fn` (run on a fresh Tokio runtime of its own) or plain `fn`.
/// - One parameter per scheme of the scope, written `name: CredentialType` (`mut name`
///   is allowed; other patterns, `self` and generics are not). Each receives exactly the
///   permissions of its scheme. At most 6.
/// - Returns `()` or a `Result` whose error is `Debug`, as `#[test]` functions do.
/// - Keeps its other attributes: doc comments, `#[ignore]`, `#[should_panic]`, lints. Do
///   not add `#[test]` or `#[tokio::test]`: `#[jit_test]` already makes it a test.
///
/// # Arguments
///
/// | argument | value | default |
/// |---|---|---|
/// | `scope` | the permissions to grant: `"scheme:action:resource, ..."`, checked at compile time | required |
/// | `deny` | permissions the credentials must not hold, same syntax, schemes of `scope` only | none |
/// | `setup` | path of an `async fn()` (returning `()` or a `Result`) run before anything is granted, e.g. a migration: a grant that names a table needs the table | none |
/// | `reason` | why the test needs the access, for the policy's approvers and the audit log | none |
/// | `ttl` | the credentials' lifetime, e.g. `"30s"`, `"2m"` | `ttl` in `jit-test.toml`, else 30 s |
/// | `timeout` | how long the body may run, e.g. `"2m"` | `timeout` in `jit-test.toml`, else 60 s |
/// | `flavor` | runtime of an `async fn`: `"current_thread"` or `"multi_thread"` | `"current_thread"` |
/// | `worker_threads` | workers of a `"multi_thread"` runtime, e.g. `2` | the number of CPUs |
/// | `crate` | path of the `jit_test` crate if renamed, e.g. `"my_jit_test"` | `::jit_test` |
///
/// # Checked at compile time
///
/// The scope's syntax, the durations, unknown or repeated arguments, and the function's
/// shape are reported as errors at the offending token. The types are checked too: every
/// scheme of the scope needs a parameter, every parameter's scheme needs permissions in
/// the scope, and no two parameters may share a scheme. Whether a provider accepts the
/// permissions is checked when the test runs, before anything is granted.
///
/// # What it expands to
///
/// A `#[test]` function of the same name (after the other attributes) holding the original
/// function, the scheme checks, and one call to `jit_test`'s runner, in spirit:
///
/// ```text
/// #[::core::prelude::v1::test]
/// fn customer_places_order() {
///     async fn customer_places_order(token: TokenGrant, pg: PgGrant) -> anyhow::Result<()> { ... }
///     ::jit_test::__private::run_async(
///         ::jit_test::__private::Test::new(concat!(module_path!(), "::", "customer_places_order"))
///             .scope("token:read:orders, pg:select:public.orders, pg:insert:public.orders")
///             .ttl(::jit_test::__private::Duration::from_millis(30000)),
///         |(token, pg): (TokenGrant, PgGrant)| Box::pin(customer_places_order(token, pg)),
///     );
/// }
/// ```
///
/// The closure captures nothing, so it is a plain function pointer and the boxed future
/// has one type per output: the runner is compiled once per credential types and
/// output, not once per test, and each test adds little more than its own function to
/// the crate (see `BENCHMARKS.md`, compile time).
#[proc_macro_attribute]
pub fn jit_test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::jit_test(args.into(), item.into()).into()
}
