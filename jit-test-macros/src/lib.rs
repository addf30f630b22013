//! `#[jit_test]`. (placeholder)
use proc_macro::TokenStream;

/// Placeholder.
#[proc_macro_attribute]
pub fn jit_test(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
