//! The test function as written: attributes, visibility and signature parsed, the body
//! kept as tokens. Parsing every statement of every test, as `syn::ItemFn` does, is most
//! of the macro's time, and the body is only ever copied.

use proc_macro2::TokenStream;
use quote::{ToTokens, TokenStreamExt};
use syn::parse::{Parse, ParseStream};
use syn::token::Brace;
use syn::{Attribute, Signature, Visibility, braced};

/// A function item whose body is not parsed.
pub struct TestFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub brace: Brace,
    pub body: TokenStream,
}

impl Parse for TestFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<TestFn> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = braced!(content in input);
        let body = content.parse()?;
        Ok(TestFn {
            attrs,
            vis,
            sig,
            brace,
            body,
        })
    }
}

impl ToTokens for TestFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.append_all(&self.attrs);
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.brace
            .surround(tokens, |tokens| self.body.to_tokens(tokens));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn round_trips_with_the_body_untouched() {
        let item = quote! {
            /// doc
            #[ignore]
            pub async fn reads(token: TokenGrant) -> Result<(), E> { #![allow(unused)] let x = 1; x }
        };
        let parsed: TestFn = syn::parse2(item.clone()).unwrap();
        assert_eq!(parsed.sig.ident, "reads");
        assert_eq!(parsed.attrs.len(), 2);
        assert_eq!(parsed.into_token_stream().to_string(), item.to_string());
        assert!(
            syn::parse2::<TestFn>(quote!(
                struct S;
            ))
            .is_err()
        );
    }
}
