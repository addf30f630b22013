//! The scope grammar: `scheme:action:resource` permissions, comma separated.
//!
//! ```text
//! scope      = permission *( "," permission )      ; whitespace allowed around items only
//! permission = scheme ":" action [ "(" arg *( "," arg ) ")" ] ":" resource
//! scheme     = lower *( lower / digit / "_" / "-" )
//! action     = lower *( lower / digit / "_" / "-" )
//! arg        = ( alpha / "_" ) *( alpha / digit / "_" / "$" )
//! resource   = 1*( alpha / digit / "_" / "." / "*" / ":" / "/" / "@" / "$" / "+" / "=" / ">" / "#" / "-" )
//! ```
//!
//! Quotes, semicolons, backslashes, whitespace inside a part and control characters are
//! rejected, so a permission can never smuggle syntax into a statement built from it.
//! This crate uses only `std`: the `#[jit_test]` macro checks scopes at compile time with
//! it, and the `jit-test` runtime re-exports it (`jit_test::Scope`, `jit_test::scope`).

use std::fmt;

/// One permission: `scheme:action(args):resource`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    /// The provider's scheme, e.g. `pg`.
    pub scheme: String,
    /// What may be done, e.g. `select`.
    pub action: String,
    /// Optional arguments of the action, e.g. the columns of `select(id,sku)`.
    pub args: Vec<String>,
    /// What it may be done to, e.g. `public.orders`. May contain `:`.
    pub resource: String,
}

/// A parsed scope: the permissions in the order written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The permissions, in the order written.
    pub permissions: Vec<Permission>,
}

/// Which part of a permission an error is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The scheme, before the first `:`.
    Scheme,
    /// The action, between the first and second `:`.
    Action,
    /// An argument inside the action's parentheses.
    Argument,
    /// The resource, after the second `:`.
    Resource,
}

/// Why a scope did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeErrorKind {
    /// The scope has no permissions at all.
    Empty,
    /// An item between commas is empty.
    EmptyItem,
    /// A part is empty.
    EmptyPart(Part),
    /// A character is not allowed where it stands.
    BadChar(char, Part),
    /// The item has fewer than three `:`-separated parts.
    MissingPart(Part),
    /// Parentheses are unbalanced.
    Unbalanced,
}

/// A scope that did not parse: which item, where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeError {
    /// 1-based number of the offending item.
    pub item: usize,
    /// Byte offset of the problem in the whole scope string.
    pub offset: usize,
    /// What is wrong.
    pub kind: ScopeErrorKind,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Scheme => "scheme",
            Part::Action => "action",
            Part::Argument => "action argument",
            Part::Resource => "resource",
        })
    }
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("permission {} (byte {})", self.item, self.offset);
        match &self.kind {
            ScopeErrorKind::Empty => {
                f.write_str("the scope is empty: write at least one `scheme:action:resource`")
            }
            ScopeErrorKind::EmptyItem => write!(f, "{at} is empty: remove the extra comma"),
            ScopeErrorKind::EmptyPart(part) => write!(f, "{at}: the {part} is empty"),
            ScopeErrorKind::BadChar(c, part) => write!(
                f,
                "{at}: character {c:?} is not allowed in the {part} (expected `scheme:action:resource`, see the scope grammar)"
            ),
            ScopeErrorKind::MissingPart(part) => write!(
                f,
                "{at} has no {part}: write it as `scheme:action:resource`"
            ),
            ScopeErrorKind::Unbalanced => write!(f, "{at}: unbalanced parentheses"),
        }
    }
}

impl std::error::Error for ScopeError {}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_lowercase() || (!first && (c.is_ascii_digit() || c == '_' || c == '-'))
}

fn is_arg_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!first && (c.is_ascii_digit() || c == '$'))
}

fn is_resource_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.*:/@$+=>#-".contains(c)
}

/// Checks that `text` (starting at byte `base`) is a non-empty run of allowed characters.
fn check(
    text: &str,
    base: usize,
    part: Part,
    allowed: impl Fn(char, bool) -> bool,
) -> Result<(), (usize, ScopeErrorKind)> {
    if text.is_empty() {
        return Err((base, ScopeErrorKind::EmptyPart(part)));
    }
    for (i, c) in text.char_indices() {
        if !allowed(c, i == 0) {
            return Err((base + i, ScopeErrorKind::BadChar(c, part)));
        }
    }
    Ok(())
}

impl Permission {
    /// Parses one permission; `base` is its byte offset in the enclosing scope.
    fn parse_at(text: &str, base: usize) -> Result<Permission, (usize, ScopeErrorKind)> {
        let Some(colon) = text.find(':') else {
            check(text, base, Part::Scheme, is_name_char)?;
            return Err((base + text.len(), ScopeErrorKind::MissingPart(Part::Action)));
        };
        let scheme = &text[..colon];
        check(scheme, base, Part::Scheme, is_name_char)?;
        let rest = &text[colon + 1..];
        let rest_base = base + colon + 1;
        let action_end = rest.find([':', '(']).unwrap_or(rest.len());
        let action = &rest[..action_end];
        check(action, rest_base, Part::Action, is_name_char)?;
        let mut args = Vec::new();
        let mut after = action_end;
        if rest[after..].starts_with('(') {
            let close = rest[after..]
                .find(')')
                .map(|i| after + i)
                .ok_or((rest_base + after, ScopeErrorKind::Unbalanced))?;
            let mut arg_base = after + 1;
            for arg in rest[after + 1..close].split(',') {
                check(arg, rest_base + arg_base, Part::Argument, is_arg_char)?;
                args.push(arg.to_owned());
                arg_base += arg.len() + 1;
            }
            after = close + 1;
        }
        match rest[after..].chars().next() {
            Some(':') => {}
            Some(c) => return Err((rest_base + after, ScopeErrorKind::BadChar(c, Part::Action))),
            None => {
                return Err((
                    rest_base + after,
                    ScopeErrorKind::MissingPart(Part::Resource),
                ));
            }
        }
        let resource = &rest[after + 1..];
        check(resource, rest_base + after + 1, Part::Resource, |c, _| {
            is_resource_char(c)
        })?;
        Ok(Permission {
            scheme: scheme.to_owned(),
            action: action.to_owned(),
            args,
            resource: resource.to_owned(),
        })
    }
}

impl std::str::FromStr for Permission {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Permission::parse_at(text, 0).map_err(|(offset, kind)| ScopeError {
            item: 1,
            offset,
            kind,
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.action)?;
        if !self.args.is_empty() {
            write!(f, "({})", self.args.join(","))?;
        }
        write!(f, ":{}", self.resource)
    }
}

/// Splits at commas outside parentheses, yielding each item with its byte offset.
fn split_items(text: &str) -> Result<Vec<(usize, &str)>, ScopeError> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                return Err(ScopeError {
                    item: items.len() + 1,
                    offset: i,
                    kind: ScopeErrorKind::Unbalanced,
                });
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push((start, &text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push((start, &text[start..]));
    Ok(items)
}

impl Scope {
    /// Parses a scope string such as `"pg:select:public.orders, token:read:orders"`.
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        if text.trim().is_empty() {
            return Err(ScopeError {
                item: 0,
                offset: 0,
                kind: ScopeErrorKind::Empty,
            });
        }
        let mut permissions = Vec::new();
        for (index, (offset, raw)) in split_items(text)?.into_iter().enumerate() {
            let leading = raw.len() - raw.trim_start().len();
            let item = raw.trim();
            let fail = |(at, kind)| ScopeError {
                item: index + 1,
                offset: at,
                kind,
            };
            if item.is_empty() {
                return Err(fail((offset, ScopeErrorKind::EmptyItem)));
            }
            permissions.push(Permission::parse_at(item, offset + leading).map_err(fail)?);
        }
        Ok(Scope { permissions })
    }

    /// The distinct schemes, in order of first appearance.
    pub fn schemes(&self) -> Vec<&str> {
        let mut schemes: Vec<&str> = Vec::new();
        for p in &self.permissions {
            if !schemes.contains(&p.scheme.as_str()) {
                schemes.push(&p.scheme);
            }
        }
        schemes
    }

    /// The permissions of one scheme.
    pub fn of_scheme(&self, scheme: &str) -> Vec<Permission> {
        self.permissions
            .iter()
            .filter(|p| p.scheme == scheme)
            .cloned()
            .collect()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.permissions.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::parse(text)
    }
}
