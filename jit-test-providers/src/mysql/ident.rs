//! Names and literals: validation against MariaDB's rules for unquoted identifiers, and
//! quoting.
//!
//! Account-management statements take no bind parameters, so every name and value that
//! reaches a statement goes through [`quote_ident`], [`quote_db_pattern`] or
//! [`quote_literal`]; nothing from a scope is ever pasted into SQL unquoted.

/// The longest database, table, column or routine name MariaDB accepts.
pub const MAX_IDENT_CHARS: usize = 64;

/// Quotes an identifier with backticks: `orders` → `` `orders` ``, `` a`b `` →
/// `` `a``b` ``. The result always names exactly `name`.
///
/// # Panics
///
/// If `name` contains a NUL character, which no MariaDB identifier can hold.
pub fn quote_ident(name: &str) -> String {
    assert!(!name.contains('\0'), "an identifier cannot contain NUL");
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a database name for a database-level `GRANT ... ON db.*`, where `_` and `%` are
/// wildcards: `my_db` → `` `my\_db` ``, so that the grant covers `my_db` and nothing
/// else (without the escape it would also cover `myXdb`).
pub fn quote_db_pattern(database: &str) -> String {
    quote_ident(&escape_db_pattern(database))
}

/// A database name with its pattern characters escaped, as the server stores a
/// database-level grant: `my_db` → `my\_db`.
pub(crate) fn escape_db_pattern(database: &str) -> String {
    let mut escaped = String::with_capacity(database.len() + 4);
    for c in database.chars() {
        if matches!(c, '_' | '%' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Quotes a string literal: `it's` → `'it''s'`, `a\b` → `'a\\b'`. Quotes are doubled and
/// backslashes escaped, so the literal ends where it should whether or not the session's
/// `sql_mode` has `NO_BACKSLASH_ESCAPES`.
///
/// # Panics
///
/// If `value` contains a NUL character.
pub fn quote_literal(value: &str) -> String {
    assert!(!value.contains('\0'), "a literal cannot contain NUL");
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// An account, `'user'@'host'`, quoted.
pub fn quote_account(user: &str, host: &str) -> String {
    format!("{}@{}", quote_literal(user), quote_literal(host))
}

/// Checks a name written in a scope against MariaDB's rules for an unquoted identifier:
/// 1 to 64 characters among ASCII letters, digits, `_` and `$`, not all digits. Names
/// are kept as written: database and table names are case-sensitive on Linux.
pub fn validate_ident(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {what} name is empty"));
    }
    if name.chars().count() > MAX_IDENT_CHARS {
        return Err(format!(
            "the {what} name `{name}` is longer than MariaDB's {MAX_IDENT_CHARS} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$'))
    {
        return Err(format!(
            "the {what} name `{name}` contains {bad:?}; names hold letters, digits, `_` and `$`"
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "the {what} name `{name}` is all digits, which MariaDB reads as a number"
        ));
    }
    Ok(())
}

/// Whether `name` matches a database pattern of a `GRANT ... ON pattern.*` as the server
/// stores it (`%` any run, `_` any one character, `\` escapes the next).
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    matches_from(&p, &n)
}

fn matches_from(p: &[char], n: &[char]) -> bool {
    match p {
        [] => n.is_empty(),
        ['%', rest @ ..] => (0..=n.len()).any(|i| matches_from(rest, &n[i..])),
        ['_', rest @ ..] => !n.is_empty() && matches_from(rest, &n[1..]),
        ['\\', c, rest @ ..] | [c, rest @ ..] => {
            n.first() == Some(c) && matches_from(rest, &n[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_backticked_with_inner_backticks_doubled() {
        assert_eq!(quote_ident("orders"), "`orders`");
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(
            quote_ident("x`; DROP USER root; --"),
            "`x``; DROP USER root; --`"
        );
        for input in ["", "`", "``", "a`", "`a", "a``b"] {
            let q = quote_ident(input);
            let inner = &q[1..q.len() - 1];
            assert!(!inner.replace("``", "").contains('`'), "{q}");
            assert_eq!(inner.replace("``", "`"), input);
        }
    }

    #[test]
    fn database_patterns_escape_the_wildcards() {
        assert_eq!(quote_db_pattern("shop"), "`shop`");
        assert_eq!(quote_db_pattern("my_db"), "`my\\_db`");
        assert_eq!(quote_db_pattern("a%b\\c"), "`a\\%b\\\\c`");
        assert!(pattern_matches("my\\_db", "my_db"));
        assert!(!pattern_matches("my\\_db", "myXdb"));
        assert!(pattern_matches("my_db", "myXdb"));
        assert!(pattern_matches("sh%", "shop"));
        assert!(!pattern_matches("shop", "shops"));
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(quote_literal("abc"), "'abc'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "'a\\\\b'");
        assert_eq!(quote_literal("\\'"), "'\\\\'''");
        assert_eq!(quote_account("jit_a", "127.0.0.1"), "'jit_a'@'127.0.0.1'");
    }

    #[test]
    #[should_panic(expected = "NUL")]
    fn nul_cannot_be_quoted() {
        quote_literal("a\0b");
    }

    #[test]
    fn validation_follows_mariadb_rules() {
        assert_eq!(validate_ident("Orders_2$", "table"), Ok(()));
        assert!(validate_ident("", "table").unwrap_err().contains("empty"));
        assert!(
            validate_ident("123", "table")
                .unwrap_err()
                .contains("digits")
        );
        assert!(validate_ident("a-b", "table").unwrap_err().contains("'-'"));
        assert!(validate_ident("a`b", "table").is_err());
        assert!(validate_ident("schön", "table").is_err());
        assert!(
            validate_ident(&"a".repeat(65), "table")
                .unwrap_err()
                .contains("64")
        );
        assert_eq!(validate_ident(&"a".repeat(64), "table"), Ok(()));
    }
}
