//! A test run under the lifecycle, as a process of its own, for end-to-end tests of
//! approval, baseline and minimization: `fixture <test-name> <scope>`.
//!
//! The body needs exactly `token:read:orders`: it checks that its token carries that
//! scope, and nothing else.

use jit_test::Test;
use jit_test_providers::token::TokenGrant;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(scope)) = (args.next(), args.next()) else {
        eprintln!("usage: fixture <test-name> <scope>");
        std::process::exit(2);
    };
    Test::new(name)
        .scope(scope)
        .run(|(token,): (TokenGrant,)| async move {
            assert!(
                token.has_scope("read:orders"),
                "the token lacks read:orders"
            );
        });
}
