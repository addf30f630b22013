//! `jit-test verify` on arbitrary bytes: reading and verifying an audit log never panics,
//! and every line read is counted.
#![no_main]

use std::sync::LazyLock;

use jit_test::audit::{HmacKey, read_from};
use libfuzzer_sys::fuzz_target;

/// A key, so that lines naming it are checked by HMAC too.
static KEY: LazyLock<HmacKey> =
    LazyLock::new(|| HmacKey::new(&[7; 32]).expect("32 bytes is long enough"));

fuzz_target!(|data: &[u8]| {
    let contents = read_from(data, Some(&KEY)).expect("reading from memory cannot fail");
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    let unterminated = usize::from(!data.is_empty() && !data.ends_with(b"\n"));
    assert_eq!(contents.verification.lines, newlines + unterminated);
    for problem in &contents.verification.problems {
        let _ = problem.to_string();
    }
});
