//! The least-privilege finder, tried for real on the body of the over-privileged test in
//! `orders_api.rs`: it must report `token:write:orders` unneeded and `token:read:orders`
//! needed, the minimal set that test documents.

mod common;

use jit_test::Test;
use jit_test::minimize::{self, Verdict};
use jit_test_providers::token::TokenGrant;

const TEST: &str = "least_privilege::over_privileged_listing";

#[test]
fn the_minimizer_finds_the_unneeded_write_permission() -> std::io::Result<()> {
    // Runs the body with the full scope, then again without each permission in turn.
    Test::new(TEST)
        .scope("token:read:orders, token:write:orders")
        .minimize(true)
        .run(|(token,): (TokenGrant,)| common::lists_orders(token));

    let results = minimize::results()?;
    let Some(Verdict::Findings(findings)) = results.get(TEST) else {
        panic!("no findings for {TEST}: {results:?}");
    };
    let needed: Vec<(&str, bool)> = findings
        .iter()
        .map(|f| (f.permission.as_str(), f.needed))
        .collect();
    assert_eq!(
        needed,
        [("token:read:orders", true), ("token:write:orders", false)]
    );
    Ok(())
}
