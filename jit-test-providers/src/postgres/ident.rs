//! Identifiers and literals: validation against PostgreSQL's rules, and quoting.
//!
//! DDL takes no bind parameters, so every name and value that reaches a statement goes
//! through [`quote_ident`] or [`quote_literal`]; nothing from a scope is ever pasted into
//! SQL unquoted.

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); longer ones are truncated
/// silently by the server, so they are rejected here.
pub const MAX_IDENT_BYTES: usize = 63;

/// Quotes an identifier for SQL: `orders` → `"orders"`, `a"b` → `"a""b"`.
///
/// The result always names exactly `name`, whatever it contains.
///
/// # Panics
///
/// If `name` contains a NUL character, which no PostgreSQL identifier can hold.
pub fn quote_ident(name: &str) -> String {
    assert!(!name.contains('\0'), "an identifier cannot contain NUL");
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Quotes a qualified name: `("app", "orders")` → `"app"."orders"`.
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Quotes a string literal for SQL in the escape-string form, which means the same
/// whatever `standard_conforming_strings` is: `it's` → `E'it''s'`, `a\b` → `E'a\\b'`.
///
/// # Panics
///
/// If `value` contains a NUL character, which no PostgreSQL text value can hold.
pub fn quote_literal(value: &str) -> String {
    assert!(!value.contains('\0'), "a text literal cannot contain NUL");
    let mut quoted = String::with_capacity(value.len() + 3);
    quoted.push_str("E'");
    for c in value.chars() {
        match c {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Checks a name written in a scope against PostgreSQL's rules for an unquoted
/// identifier and returns it as PostgreSQL reads it: folded to lower case.
///
/// Rules: 1 to 63 bytes; a letter or `_` first; then letters, digits, `_` or `$`.
/// Unquoted identifiers are case-insensitive in PostgreSQL, so `Orders` names the table
/// `orders`; tables created with quoted mixed-case names cannot be named in a scope.
pub fn validate_ident(name: &str, what: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err(format!("the {what} name is empty"));
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(format!(
            "the {what} name `{name}` is {} bytes long; PostgreSQL identifiers have at most {MAX_IDENT_BYTES}",
            name.len()
        ));
    }
    let mut chars = name.chars();
    let first = chars.next().expect("not empty");
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!(
            "the {what} name `{name}` must start with a letter or `_`"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$'))
    {
        return Err(format!(
            "the {what} name `{name}` contains {bad:?}; PostgreSQL identifiers hold letters, digits, `_` and `$`"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_double_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_ident("orders"), "\"orders\"");
        assert_eq!(quote_ident("Orders"), "\"Orders\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("\""), "\"\"\"\"");
        assert_eq!(
            quote_ident("x\"; DROP ROLE postgres; --"),
            "\"x\"\"; DROP ROLE postgres; --\""
        );
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("schön"), "\"schön\"");
        assert_eq!(quote_qualified("app", "t\"x"), "\"app\".\"t\"\"x\"");
    }

    #[test]
    fn literals_use_the_escape_form_with_quotes_and_backslashes_doubled() {
        assert_eq!(quote_literal("abc"), "E'abc'");
        assert_eq!(quote_literal("it's"), "E'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_literal("\\'"), "E'\\\\'''");
        assert_eq!(
            quote_literal("'; DROP ROLE x; --"),
            "E'''; DROP ROLE x; --'"
        );
        assert_eq!(quote_literal(""), "E''");
        assert_eq!(quote_literal("{\"a\": \"b\"}"), "E'{\"a\": \"b\"}'");
    }

    #[test]
    #[should_panic(expected = "NUL")]
    fn nul_cannot_be_quoted() {
        quote_literal("a\0b");
    }

    #[test]
    fn quoted_identifiers_never_leave_the_quotes() {
        // Whatever the input, the quoted form is `"` + pairs or non-quote chars + `"`.
        for input in ["", "\"", "\"\"", "a\"", "\"a", "a\"\"b", "x\" OR \"1"] {
            let q = quote_ident(input);
            let inner = &q[1..q.len() - 1];
            assert!(q.starts_with('"') && q.ends_with('"'));
            assert!(!inner.replace("\"\"", "").contains('"'), "{q}");
            assert_eq!(inner.replace("\"\"", "\""), input);
        }
    }

    #[test]
    fn validation_follows_postgres_rules_and_folds_case() {
        assert_eq!(validate_ident("orders", "table").unwrap(), "orders");
        assert_eq!(validate_ident("Orders_2$", "table").unwrap(), "orders_2$");
        assert_eq!(validate_ident("_x", "table").unwrap(), "_x");
        assert!(validate_ident("", "table").unwrap_err().contains("empty"));
        assert!(
            validate_ident("2x", "table")
                .unwrap_err()
                .contains("start with")
        );
        assert!(
            validate_ident("$x", "table")
                .unwrap_err()
                .contains("start with")
        );
        assert!(validate_ident("a-b", "table").unwrap_err().contains("'-'"));
        assert!(validate_ident("a\"b", "table").is_err());
        assert!(validate_ident("a b", "table").is_err());
        assert!(validate_ident("schön", "table").is_err());
        let long = "a".repeat(64);
        assert!(validate_ident(&long, "table").unwrap_err().contains("63"));
        assert!(validate_ident(&long[..63], "table").is_ok());
    }
}
