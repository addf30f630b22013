//! The attribute's arguments: parsed into [`Args`] and checked, with every problem
//! recorded in the [`Ctxt`].

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::{Expr, Lit, LitInt, LitStr, Token};

use crate::ctxt::Ctxt;
// The crate the runtime re-exports: the macro accepts exactly the scopes the runtime does.
use jit_test_scope::Scope;

/// The arguments `#[jit_test]` accepts, in the order the documentation lists them.
const KNOWN: [&str; 9] = [
    "scope",
    "deny",
    "reason",
    "setup",
    "ttl",
    "timeout",
    "flavor",
    "worker_threads",
    "crate",
];

/// The runtime flavour asked for.
pub enum Flavor {
    CurrentThread,
    /// With the number of workers, if given.
    MultiThread(Option<usize>),
}

/// The checked arguments of one `#[jit_test(...)]`.
pub struct Args {
    /// The scope, as written.
    pub scope: LitStr,
    /// Its schemes, in order of first appearance.
    pub schemes: Vec<String>,
    /// The `deny` scope, as written.
    pub deny: Option<LitStr>,
    /// Why the test needs the access, for approvers and the audit log.
    pub reason: Option<LitStr>,
    /// An async fn to run before anything is granted.
    pub setup: Option<syn::Path>,
    pub ttl: Option<Duration>,
    pub timeout: Option<Duration>,
    /// The flavour, and the span of the `flavor` argument if one was written.
    pub flavor: (Flavor, Option<Span>),
    /// The path of the `jit_test` crate in generated code.
    pub krate: syn::Path,
}

/// What was written, before the arguments are checked against each other.
#[derive(Default)]
struct Raw {
    scope: Option<(LitStr, Scope)>,
    deny: Option<(LitStr, Scope)>,
    reason: Option<LitStr>,
    setup: Option<syn::Path>,
    ttl: Option<Duration>,
    timeout: Option<Duration>,
    flavor: Option<(bool, Span)>,
    worker_threads: Option<(usize, Span)>,
    krate: Option<syn::Path>,
    /// Names seen, to report duplicates.
    seen: Vec<String>,
    /// Whether an unknown argument was seen (perhaps a misspelt `flavor`).
    unknown: bool,
}

/// Parses the tokens inside `#[jit_test(...)]`. Returns `None` if any argument is wrong
/// (the reasons are in `cx`).
pub fn parse(cx: &mut Ctxt, tokens: TokenStream) -> Option<Args> {
    let errors_before = cx.len();
    let mut raw = Raw::default();
    let parser = syn::meta::parser(|meta| {
        let name = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let key = meta.path.clone();
        // Read the value first, so that parsing goes on after a wrong argument.
        let value = if meta.input.peek(Token![=]) {
            meta.input.parse::<Token![=]>()?;
            Some(meta.input.parse::<Expr>()?)
        } else {
            if meta.input.peek(syn::token::Paren) {
                meta.input.parse::<proc_macro2::TokenTree>()?;
            }
            None
        };
        if !KNOWN.contains(&name.as_str()) {
            let known: Vec<String> = KNOWN.iter().map(|k| format!("`{k}`")).collect();
            let hint = KNOWN
                .iter()
                .find(|k| edit_distance(k, &name) <= 2)
                .map(|k| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            cx.error_spanned_by(
                &key,
                format!(
                    "unknown argument `{}` of #[jit_test]: {hint}expected one of {}",
                    path_text(&key),
                    known.join(", ")
                ),
            );
            raw.unknown = true;
            return Ok(());
        }
        if raw.seen.contains(&name) {
            cx.error_spanned_by(&key, format!("duplicate argument `{name}`: give it once"));
            return Ok(());
        }
        raw.seen.push(name.clone());
        let Some(value) = value else {
            cx.error_spanned_by(&key, format!("`{name}` needs a value: {}", example(&name)));
            return Ok(());
        };
        raw.set(cx, &name, &value);
        Ok(())
    });
    if let Err(e) = parser.parse2(tokens) {
        cx.syn_error(e);
        return None;
    }
    raw.finish(cx, errors_before)
}

fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

/// The Levenshtein distance, to suggest a known argument for a misspelt one.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn example(name: &str) -> &'static str {
    match name {
        "scope" => "`scope = \"token:read:orders\"`",
        "deny" => "`deny = \"pg:delete:public.orders\"`",
        "reason" => "`reason = \"reads orders to check the invoice totals\"`",
        "setup" => "`setup = \"migrate\"` (an async fn taking nothing)",
        "ttl" => "`ttl = \"30s\"`",
        "timeout" => "`timeout = \"2m\"`",
        "flavor" => "`flavor = \"multi_thread\"` or `flavor = \"current_thread\"`",
        "worker_threads" => "`worker_threads = 2`",
        _ => "`crate = \"my_jit_test\"`",
    }
}

/// The string literal `value`, or an error that says what to write.
fn string(cx: &mut Ctxt, name: &str, value: &Expr) -> Option<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit.clone()),
        _ => {
            cx.error_spanned_by(
                value,
                format!("`{name}` takes a string literal: {}", example(name)),
            );
            None
        }
    }
}

impl Raw {
    fn set(&mut self, cx: &mut Ctxt, name: &str, value: &Expr) {
        if name == "worker_threads" {
            self.worker_threads = worker_threads(cx, value).map(|n| (n, span_of(value)));
            return;
        }
        let Some(lit) = string(cx, name, value) else {
            return;
        };
        match name {
            "scope" => self.scope = parse_scope(cx, "scope", lit),
            "deny" => self.deny = parse_scope(cx, "deny", lit),
            "reason" if lit.value().trim().is_empty() => {
                cx.error(lit.span(), "`reason` is empty: say why the test needs the access");
            }
            "reason" => self.reason = Some(lit),
            "setup" => match lit.parse::<syn::Path>() {
                Ok(path) => self.setup = Some(path),
                Err(_) => cx.error(
                    lit.span(),
                    "`setup` takes the path of an async fn as a string, e.g. `setup = \"migrate\"`",
                ),
            },
            "ttl" => self.ttl = duration(cx, "ttl", &lit),
            "timeout" => self.timeout = duration(cx, "timeout", &lit),
            "flavor" => match lit.value().as_str() {
                "current_thread" => self.flavor = Some((false, lit.span())),
                "multi_thread" => self.flavor = Some((true, lit.span())),
                other => cx.error(
                    lit.span(),
                    format!(
                        "unknown flavor {other:?}: write `flavor = \"current_thread\"` (the default) or `flavor = \"multi_thread\"`"
                    ),
                ),
            },
            _ => match lit.parse::<syn::Path>() {
                Ok(path) => self.krate = Some(path),
                Err(_) => cx.error(
                    lit.span(),
                    "`crate` takes the path of the jit_test crate as a string, e.g. `crate = \"my_jit_test\"`",
                ),
            },
        }
    }

    fn finish(self, cx: &mut Ctxt, errors_before: usize) -> Option<Args> {
        let Some((scope, parsed)) = self.scope else {
            if !self.seen.iter().any(|s| s == "scope") {
                cx.error(
                    Span::call_site(),
                    "missing `scope`: write the permissions the test needs, e.g. \
                     `#[jit_test(scope = \"token:read:orders\")]`",
                );
            }
            return None;
        };
        if let Some((lit, deny)) = &self.deny {
            check_deny(cx, &parsed, lit, deny);
        }
        let flavor = match (self.flavor, self.worker_threads) {
            (Some((true, span)), workers) => {
                (Flavor::MultiThread(workers.map(|w| w.0)), Some(span))
            }
            (flavor, Some((_, span))) if !self.unknown => {
                cx.error(
                    span,
                    "`worker_threads` needs a multi-threaded runtime: add `flavor = \"multi_thread\"`",
                );
                (Flavor::CurrentThread, flavor.map(|f| f.1))
            }
            (flavor, _) => (Flavor::CurrentThread, flavor.map(|f| f.1)),
        };
        if cx.len() > errors_before {
            return None;
        }
        Some(Args {
            schemes: parsed.schemes().into_iter().map(str::to_owned).collect(),
            scope,
            deny: self.deny.map(|d| d.0),
            reason: self.reason,
            setup: self.setup,
            ttl: self.ttl,
            timeout: self.timeout,
            flavor,
            krate: self.krate.unwrap_or_else(|| syn::parse_quote!(::jit_test)),
        })
    }
}

fn span_of(value: &Expr) -> Span {
    syn::spanned::Spanned::span(value)
}

fn parse_scope(cx: &mut Ctxt, name: &str, lit: LitStr) -> Option<(LitStr, Scope)> {
    match Scope::parse(&lit.value()) {
        Ok(scope) => Some((lit, scope)),
        Err(e) => {
            cx.error(lit.span(), format!("invalid `{name}`: {e}"));
            None
        }
    }
}

/// `deny` only makes sense for schemes the test is granted, and must not take back a
/// permission that `scope` grants.
fn check_deny(cx: &mut Ctxt, scope: &Scope, lit: &LitStr, deny: &Scope) {
    let schemes = scope.schemes();
    for scheme in deny.schemes() {
        if !schemes.contains(&scheme) {
            cx.error(
                lit.span(),
                format!(
                    "`deny` lists `{scheme}` permissions, but the scope grants no `{scheme}` \
                     permissions, so nothing would check them: remove them from `deny`"
                ),
            );
        }
    }
    for p in &deny.permissions {
        if scope.permissions.contains(p) {
            cx.error(
                lit.span(),
                format!("`{p}` is both granted by `scope` and listed in `deny`: keep one"),
            );
        }
    }
}

fn duration(cx: &mut Ctxt, name: &str, lit: &LitStr) -> Option<Duration> {
    match humantime::parse_duration(lit.value().trim()) {
        Ok(d) if d.is_zero() => {
            cx.error(lit.span(), format!("`{name}` must be longer than zero"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            cx.error(
                lit.span(),
                format!("`{name}` is not a duration: {e}; write e.g. \"30s\", \"500ms\" or \"2m\""),
            );
            None
        }
    }
}

fn worker_threads(cx: &mut Ctxt, value: &Expr) -> Option<usize> {
    let parsed = match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => positive(int),
        _ => None,
    };
    if parsed.is_none() {
        cx.error_spanned_by(
            value,
            "`worker_threads` takes a whole number above zero, e.g. `worker_threads = 2`",
        );
    }
    parsed
}

fn positive(int: &LitInt) -> Option<usize> {
    int.base10_parse::<usize>().ok().filter(|n| *n > 0)
}
