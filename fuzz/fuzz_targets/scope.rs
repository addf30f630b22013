//! The scope grammar on arbitrary text: parsing never panics, an error's offset lies in
//! the text, and what parses prints back to a scope that parses to the same permissions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match jit_test::Scope::parse(text) {
        Ok(scope) => {
            let printed = scope.to_string();
            let again = jit_test::Scope::parse(&printed).expect("a printed scope parses");
            assert_eq!(again, scope, "{printed}");
        }
        Err(e) => {
            assert!(e.offset <= text.len(), "{e:?} in {text:?}");
            let _ = e.to_string();
        }
    }
});
