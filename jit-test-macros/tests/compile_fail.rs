//! Misuses of `#[jit_test]` fail to compile with a clear message at the right place.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p jit-test-macros
//! --test compile_fail`, then read every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
