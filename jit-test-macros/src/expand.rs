//! Checking the test function and generating the test.

use std::time::Duration;

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, Pat, Type};

use crate::args::{self, Args, Flavor};
use crate::ctxt::Ctxt;
use crate::item::TestFn;

/// The most credentials one test can take (`jit_test::Credentials` is implemented for
/// tuples up to this length).
const MAX_PARAMS: usize = 6;

/// One parameter of the test function: a credential.
struct Param {
    ident: Ident,
    ty: Type,
}

/// `#[jit_test(args)] item` → the test, or on any error the function unchanged plus the
/// errors, so that IDEs keep seeing the function.
pub fn jit_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let args = args::parse(&mut cx, args);
    let Ok(mut func) = syn::parse2::<TestFn>(item.clone()) else {
        cx.error(
            Span::call_site(),
            "#[jit_test] goes on a function: `async fn name(token: TokenGrant)` or `fn name(token: TokenGrant)`",
        );
        return with_errors(item, cx);
    };
    let params = check_fn(&mut cx, &func, args.as_ref());
    match (args, params) {
        (Some(args), Some(params)) if cx.len() == 0 => generate(&func, &args, &params),
        _ => {
            // Drop the test attributes we complained about, so they add no errors of their own.
            func.attrs.retain(|attr| test_attribute(attr).is_none());
            with_errors(func.into_token_stream(), cx)
        }
    }
}

fn with_errors(item: TokenStream, cx: Ctxt) -> TokenStream {
    let errors = cx.check().err().map(|e| e.to_compile_error());
    quote! {
        #item
        #errors
    }
}

/// `Some("tokio::test")` if `attr` makes a test by itself (any path ending in `test`).
fn test_attribute(attr: &Attribute) -> Option<String> {
    let last = attr.path().segments.last()?;
    if !last.ident.to_string().ends_with("test") {
        return None;
    }
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    Some(segments.join("::"))
}

/// Checks what `#[jit_test]` can wrap; returns the parameters if all of them are usable.
fn check_fn(cx: &mut Ctxt, func: &TestFn, args: Option<&Args>) -> Option<Vec<Param>> {
    for attr in &func.attrs {
        if let Some(path) = test_attribute(attr) {
            cx.error_spanned_by(
                attr,
                format!("`#[jit_test]` already makes this a test; remove `#[{path}]`"),
            );
        }
    }
    let sig = &func.sig;
    if let Some(token) = &sig.constness {
        cx.error(token.span, "a test cannot be a `const fn`: remove `const`");
    }
    if let syn::Safety::Unsafe(token) = &sig.safety {
        cx.error(
            token.span,
            "a test cannot be an `unsafe fn`: use an `unsafe` block inside it",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a test cannot have an ABI: remove it");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a test cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            "a #[jit_test] function cannot be generic: name each credential type",
        );
    }
    if let (
        None,
        Some(Args {
            flavor: (_, Some(span)),
            ..
        }),
    ) = (&sig.asyncness, args)
    {
        cx.error(
            *span,
            "`flavor` chooses the runtime of an `async fn`; this function is not async: remove `flavor` or make it `async fn`",
        );
    }

    let mut params = Vec::new();
    let mut all_usable = true;
    for input in &sig.inputs {
        match param(input) {
            Ok(p) => params.push(p),
            Err(e) => {
                cx.syn_error(e);
                all_usable = false;
            }
        }
    }
    if sig.inputs.is_empty() {
        cx.error(
            sig.ident.span(),
            format!(
                "`{}` takes no credential: add a parameter such as `token: TokenGrant` for each scheme of the scope",
                sig.ident
            ),
        );
    }
    if sig.inputs.len() > MAX_PARAMS {
        cx.error_spanned_by(
            &sig.inputs,
            format!(
                "a test takes at most {MAX_PARAMS} credentials (one per scheme), this one takes {}",
                sig.inputs.len()
            ),
        );
    }
    all_usable.then_some(params)
}

/// A parameter `name: Type` (or `mut name: Type`).
fn param(input: &FnArg) -> syn::Result<Param> {
    let typed = match input {
        FnArg::Receiver(receiver) => {
            return Err(syn::Error::new_spanned(
                receiver,
                "#[jit_test] goes on a free function, not a method: remove `self`",
            ));
        }
        FnArg::Typed(typed) => typed,
    };
    match typed.pat.as_ref() {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Ok(Param {
            ident: p.ident.clone(),
            ty: (*typed.ty).clone(),
        }),
        Pat::Wild(_) => Err(syn::Error::new_spanned(
            &typed.pat,
            "name this credential parameter, e.g. `_token` if the test does not use it",
        )),
        pat => Err(syn::Error::new_spanned(
            pat,
            "write each credential parameter as `name: CredentialType`; patterns are not supported here",
        )),
    }
}

fn generate(func: &TestFn, args: &Args, params: &[Param]) -> TokenStream {
    let attrs = &func.attrs;
    let vis = &func.vis;
    let name = &func.sig.ident;
    let krate = &args.krate;
    let private = quote!(#krate::__private);

    // The function itself, inside the test: private, without the test's attributes.
    // Credentials are passed by value by design: the test owns them while it runs.
    let (sig, body) = (&func.sig, &func.body);
    let inner = quote!(#[allow(clippy::needless_pass_by_value)] #sig { #body });

    // The closure's bindings do not clash with the function's name (`fn pg(pg: PgGrant)`).
    let bindings: Vec<Ident> = params
        .iter()
        .map(|p| {
            let mut ident = p.ident.clone();
            ident.set_span(Span::mixed_site());
            ident
        })
        .collect();
    let types: Vec<&Type> = params.iter().map(|p| &p.ty).collect();
    // The closure captures nothing, so it is a function pointer: the runtime code is
    // compiled once per credential types and output, not once per test.
    let call = quote!(#name(#(#bindings),*));
    let (run, call) = if func.sig.asyncness.is_some() {
        (quote!(run_async), quote!(::std::boxed::Box::pin(#call)))
    } else {
        (quote!(run_sync), call)
    };
    let scope = &args.scope;
    let deny = args.deny.as_ref().map(|deny| quote!(.deny(#deny)));
    let reason = args.reason.as_ref().map(|reason| quote!(.reason(#reason)));
    let setup = args.setup.as_ref().map(|setup| quote!(.setup(#setup)));
    let ttl = args.ttl.map(|d| {
        let d = duration(&private, d);
        quote!(.ttl(#d))
    });
    let timeout = args.timeout.map(|d| {
        let d = duration(&private, d);
        quote!(.timeout(#d))
    });
    let flavor = match args.flavor.0 {
        Flavor::CurrentThread => None,
        Flavor::MultiThread(workers) => {
            // 0 asks the runner for one worker per CPU, as tokio does.
            let workers = Literal::usize_unsuffixed(workers.unwrap_or(0));
            Some(quote!(.flavor(#private::Flavor::MultiThread(#workers))))
        }
    };
    let checks = scheme_checks(&private, args, params);
    let test_name = name.to_string();

    // The checks stand beside the test rather than in it: without `--test` a `#[test]`
    // function is removed with its contents, and `cargo check` or trybuild would skip them.
    let cfgs = attrs.iter().filter(|attr| attr.path().is_ident("cfg"));

    quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() {
            #inner
            #private::#run(
                #private::Test::new(::core::concat!(::core::module_path!(), "::", #test_name))
                    .scope(#scope)
                    #deny
                    #reason
                    #setup
                    #ttl
                    #timeout
                    #flavor,
                |(#(#bindings,)*): (#(#types,)*)| #call,
            );
        }
        #(#cfgs)*
        #checks
    }
}

/// `Duration::from_millis(n)`, or `Duration::new(s, ns)` when it is not whole milliseconds.
fn duration(private: &TokenStream, d: Duration) -> TokenStream {
    match u64::try_from(d.as_millis()) {
        Ok(ms) if Duration::from_millis(ms) == d => {
            let ms = Literal::u64_unsuffixed(ms);
            quote!(#private::Duration::from_millis(#ms))
        }
        _ => {
            let (secs, nanos) = (
                Literal::u64_unsuffixed(d.as_secs()),
                Literal::u32_unsuffixed(d.subsec_nanos()),
            );
            quote!(#private::Duration::new(#secs, #nanos))
        }
    }
}

/// Compile-time checks that the parameters' schemes match the scope's. With as many
/// parameters as schemes, the match is one-to-one exactly when every parameter's scheme
/// is in the scope and no two parameters share one: those are checked in constants, one
/// each, so that every mismatch is reported at the parameter's type. Other counts are
/// reported here at once, at no cost to the compiler.
fn scheme_checks(private: &TokenStream, args: &Args, params: &[Param]) -> TokenStream {
    let scope_schemes = &args.schemes;
    let listed = scope_schemes
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if params.len() < scope_schemes.len() {
        let message = format!(
            "the scope grants permissions of {} schemes ({listed}), but the function takes {} \
             credential(s): add one parameter per scheme, e.g. `token: TokenGrant`",
            scope_schemes.len(),
            params.len()
        );
        return syn::Error::new(args.scope.span(), message).to_compile_error();
    }
    if params.len() > scope_schemes.len() {
        let extra = &params[scope_schemes.len()];
        let message = format!(
            "the function takes {} credentials, but the scope grants permissions of only {} \
             scheme(s) ({listed}): each parameter takes all of one scheme's permissions; \
             remove `{}` or add permissions of its scheme",
            params.len(),
            scope_schemes.len(),
            extra.ident
        );
        return syn::Error::new(extra.ty.span(), message).to_compile_error();
    }
    let scheme_of = |p: &Param| {
        let ty = &p.ty;
        quote_spanned!(ty.span()=> #private::scheme_of::<#ty>())
    };
    let scope_text = args.scope.value();
    let mut checks = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let message = literal(&format!(
            "parameter `{}` takes a credential whose scheme has no permissions in the scope {scope_text:?}: \
             change its type, or add permissions of its scheme to the scope",
            p.ident
        ));
        let scheme = scheme_of(p);
        checks.push(quote_spanned! {p.ty.span()=>
            const _: () = ::core::assert!(#private::contains(&[#(#scope_schemes),*], #scheme), #message);
        });
        for earlier in &params[..i] {
            let message = literal(&format!(
                "parameters `{}` and `{}` take credentials of the same scheme: \
                 one parameter per scheme receives all of that scheme's permissions",
                earlier.ident, p.ident
            ));
            let earlier = scheme_of(earlier);
            checks.push(quote_spanned! {p.ty.span()=>
                const _: () = ::core::assert!(!#private::contains(&[#earlier], #scheme), #message);
            });
        }
    }
    quote!(const _: () = { #(#checks)* };)
}

/// A string literal for an `assert!` message (a format string, so braces are doubled).
fn literal(message: &str) -> Literal {
    Literal::string(&message.replace('{', "{{").replace('}', "}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        jit_test(args, item).to_string()
    }

    #[test]
    fn user_attributes_come_first_and_test_last() {
        let out = expand(
            quote!(scope = "token:read:orders", ttl = "30s"),
            quote! {
                /// doc
                #[ignore]
                async fn places_order(token: TokenGrant) {}
            },
        );
        let doc = out.find("doc").unwrap();
        let ignore = out.find("# [ignore]").unwrap();
        let test = out.find("# [:: core :: prelude :: v1 :: test]").unwrap();
        assert!(doc < ignore && ignore < test, "{out}");
        assert!(out.contains("__private :: run_async ("), "{out}");
        assert!(out.contains("Box :: pin (places_order ("), "{out}");
        assert!(out.contains("Duration :: from_millis (30000)"), "{out}");
    }

    #[test]
    fn plain_fn_runs_blocking_and_durations_keep_their_precision() {
        let out = expand(
            quote!(scope = "token:read:orders", timeout = "1500us"),
            quote!(
                fn reads(token: TokenGrant) {}
            ),
        );
        assert!(out.contains("__private :: run_sync ("), "{out}");
        assert!(out.contains("Duration :: new (0 , 1500000)"), "{out}");
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand(
            quote!(tll = "30s"),
            quote!(
                async fn reads(token: TokenGrant) {}
            ),
        );
        assert!(
            out.starts_with("async fn reads (token : TokenGrant) { }"),
            "{out}"
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("prelude :: v1 :: test"), "{out}");
    }

    #[test]
    fn misspelt_arguments_get_a_suggestion() {
        assert_eq!(args::edit_distance("tll", "ttl"), 1);
        assert_eq!(args::edit_distance("worker_thread", "worker_threads"), 1);
        assert!(args::edit_distance("scope", "crate") > 2);
        assert_eq!(args::edit_distance("flavour", "flavor"), 1);
        assert_eq!(args::edit_distance("scope", "scope"), 0);
    }
}
