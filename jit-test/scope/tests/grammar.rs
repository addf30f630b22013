//! Property tests of the scope grammar: printing round-trips, and anything that could
//! smuggle syntax (quotes, semicolons, whitespace inside parts, control characters) is
//! rejected.

use jit_test_scope::{Part, Permission, Scope, ScopeErrorKind};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,11}"
}

fn permission() -> impl Strategy<Value = Permission> {
    (
        name(),
        name(),
        prop::collection::vec("[A-Za-z_][A-Za-z0-9_$]{0,7}", 0..3),
        "[A-Za-z0-9_.*:/@$+=>#-]{1,24}",
    )
        .prop_map(|(scheme, action, args, resource)| Permission {
            scheme,
            action,
            args,
            resource,
        })
}

proptest! {
    #[test]
    fn display_round_trips(perms in prop::collection::vec(permission(), 1..6)) {
        let scope = Scope { permissions: perms };
        let printed = scope.to_string();
        prop_assert_eq!(Scope::parse(&printed).unwrap(), scope);
    }

    #[test]
    fn hostile_characters_are_rejected_in_every_part(
        perm in permission(),
        bad in prop::sample::select(vec!['\'', '"', ';', ' ', '\t', '\n', '\\', '\0', '\u{7f}', '\u{1b}', '`', '%']),
        part in 0usize..3,
    ) {
        let mut perm = perm;
        match part {
            0 => perm.scheme.push(bad),
            1 => perm.action.push(bad),
            _ => perm.resource.insert(0, bad),
        }
        // Whitespace at the very end of an item is trimmed like whitespace around commas.
        let text = format!("{perm}, x:y:z");
        prop_assert!(Scope::parse(&text).is_err(), "accepted {:?}", text);
    }
}

#[test]
fn errors_name_the_item_the_part_and_the_character() {
    let err = Scope::parse("pg:select:public.orders, pg:delete:public.orders;drop").unwrap_err();
    assert_eq!(err.item, 2);
    assert_eq!(err.kind, ScopeErrorKind::BadChar(';', Part::Resource));
    assert_eq!(
        err.offset,
        "pg:select:public.orders, pg:delete:public.orders".len()
    );
    let message = err.to_string();
    assert!(
        message.contains("permission 2") && message.contains("';'"),
        "{message}"
    );
}

#[test]
fn column_lists_and_colons_in_resources_parse() {
    let scope =
        Scope::parse("pg:select(id,sku):public.orders , pg:usage:sequence:public.s").unwrap();
    assert_eq!(scope.permissions[0].args, ["id", "sku"]);
    assert_eq!(scope.permissions[1].resource, "sequence:public.s");
    assert_eq!(
        scope.to_string(),
        "pg:select(id,sku):public.orders, pg:usage:sequence:public.s"
    );
}

#[test]
fn empty_scopes_items_and_parts_are_rejected() {
    for text in [
        "",
        "  ",
        "pg:select:a,",
        "pg::a",
        "pg:select:",
        ":select:a",
        "pg:select(:a",
        "pg",
        "pg:select",
    ] {
        assert!(Scope::parse(text).is_err(), "accepted {text:?}");
    }
}

#[test]
fn schemes_are_listed_once_in_order() {
    let scope = Scope::parse("token:read:a, pg:select:b, token:write:a").unwrap();
    assert_eq!(scope.schemes(), ["token", "pg"]);
    assert_eq!(scope.of_scheme("token").len(), 2);
}
