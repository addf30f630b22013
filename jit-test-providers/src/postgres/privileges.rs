//! The `pg` scope grammar: permissions → PostgreSQL privileges, their GRANT statements,
//! and what a privilege covers when the effective privileges are checked.

use std::fmt;

use jit_test::Permission;

use super::ident::{quote_ident, quote_qualified, validate_ident};

/// The kind of object a privilege is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Table,
    Sequence,
    Function,
    Procedure,
    Schema,
    Database,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Sequence => "sequence",
            Kind::Function => "function",
            Kind::Procedure => "procedure",
            Kind::Schema => "schema",
            Kind::Database => "database",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "table" => Kind::Table,
            "sequence" => Kind::Sequence,
            "function" => Kind::Function,
            "procedure" => Kind::Procedure,
            "schema" => Kind::Schema,
            "database" => Kind::Database,
            _ => return None,
        })
    }

    /// The privileges PostgreSQL has for this kind of object, as SQL keywords.
    pub(crate) fn privileges(self) -> &'static [&'static str] {
        match self {
            Kind::Table => &[
                "SELECT",
                "INSERT",
                "UPDATE",
                "DELETE",
                "TRUNCATE",
                "REFERENCES",
                "TRIGGER",
            ],
            Kind::Sequence => &["USAGE", "SELECT", "UPDATE"],
            Kind::Function | Kind::Procedure => &["EXECUTE"],
            Kind::Schema => &["USAGE", "CREATE"],
            Kind::Database => &["CONNECT", "CREATE", "TEMPORARY"],
        }
    }

    /// Whether objects of this kind live in a schema.
    fn in_schema(self) -> bool {
        matches!(
            self,
            Kind::Table | Kind::Sequence | Kind::Function | Kind::Procedure
        )
    }
}

/// Table privileges that take a column list.
const COLUMN_PRIVILEGES: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "REFERENCES"];

/// One privilege on one object (or on all objects of a kind in a schema).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Privilege {
    pub(crate) kind: Kind,
    /// The SQL keyword, e.g. `SELECT`.
    pub(crate) privilege: &'static str,
    /// Columns, for column privileges on a table; empty for the whole table.
    pub(crate) columns: Vec<String>,
    /// The schema (empty for schemas and databases).
    pub(crate) schema: String,
    /// The object's name; `None` for every object of `kind` in `schema` (`app.*`).
    pub(crate) name: Option<String>,
}

/// The documentation of the grammar, for error messages.
const GRAMMAR: &str = "pg permissions are `pg:<privilege>[(columns)]:<schema>.<table>`, \
`pg:<usage|select|update>:sequence:<schema>.<name>`, `pg:execute:function:<schema>.<name>`, \
`pg:execute:procedure:<schema>.<name>`, `pg:<usage|create>:schema:<name>` or \
`pg:<connect|create|temporary>:database:<name>`";

impl Privilege {
    /// Parses and validates one `pg` permission.
    pub(crate) fn parse(permission: &Permission) -> Result<Privilege, String> {
        let (kind, rest) = match permission.resource.split_once(':') {
            Some((prefix, rest)) => match Kind::from_name(prefix) {
                Some(kind) => (kind, rest),
                None => {
                    return Err(format!("unknown object kind `{prefix}`: {GRAMMAR}"));
                }
            },
            None => (Kind::Table, permission.resource.as_str()),
        };
        let action = permission.action.as_str();
        let keyword = match action {
            "temp" => "TEMPORARY",
            other => kind
                .privileges()
                .iter()
                .find(|p| p.eq_ignore_ascii_case(other))
                .copied()
                .ok_or_else(|| {
                    let allowed: Vec<String> =
                        kind.privileges().iter().map(|p| p.to_lowercase()).collect();
                    format!(
                        "`{action}` is not a privilege on a {}: use one of {}",
                        kind.name(),
                        allowed.join(", ")
                    )
                })?,
        };
        let mut columns = Vec::new();
        if !permission.args.is_empty() {
            if kind != Kind::Table || !COLUMN_PRIVILEGES.contains(&keyword) {
                return Err(format!(
                    "only select, insert, update and references on a table take columns, not {action} on a {}",
                    kind.name()
                ));
            }
            for column in &permission.args {
                let column = validate_ident(column, "column")?;
                if !columns.contains(&column) {
                    columns.push(column);
                }
            }
        }
        let (schema, name) = if kind.in_schema() {
            let Some((schema, name)) = rest.split_once('.') else {
                return Err(format!(
                    "write the {} with its schema, as `schema.name` (e.g. `public.{rest}`)",
                    kind.name()
                ));
            };
            let schema = validate_ident(schema, "schema")?;
            let name = if name == "*" {
                if !columns.is_empty() {
                    return Err("a column list cannot apply to `*` (all tables)".into());
                }
                None
            } else {
                if name.contains('.') {
                    return Err(format!(
                        "`{rest}` has too many parts: write `schema.name`; objects of other databases cannot be granted"
                    ));
                }
                Some(validate_ident(name, kind.name())?)
            };
            (schema, name)
        } else {
            if rest == "*" {
                return Err(format!("`*` is not allowed for a {}", kind.name()));
            }
            (String::new(), Some(validate_ident(rest, kind.name())?))
        };
        Ok(Privilege {
            kind,
            privilege: keyword,
            columns,
            schema,
            name,
        })
    }

    /// `USAGE` on a schema.
    pub(crate) fn schema_usage(schema: &str) -> Privilege {
        Privilege {
            kind: Kind::Schema,
            privilege: "USAGE",
            columns: Vec::new(),
            schema: String::new(),
            name: Some(schema.to_owned()),
        }
    }

    /// `CONNECT` on a database.
    pub(crate) fn database_connect(database: &str) -> Privilege {
        Privilege {
            kind: Kind::Database,
            privilege: "CONNECT",
            columns: Vec::new(),
            schema: String::new(),
            name: Some(database.to_owned()),
        }
    }

    /// The object's name as a string (`schema.name`, `schema.*`, or the name).
    fn object(&self) -> String {
        let name = self.name.as_deref().unwrap_or("*");
        if self.kind.in_schema() {
            format!("{}.{name}", self.schema)
        } else {
            name.to_owned()
        }
    }

    /// The `GRANT` statement that gives this privilege to `grantee`.
    pub(crate) fn grant_sql(&self, grantee: &str) -> String {
        let columns = if self.columns.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
            format!(" ({})", quoted.join(", "))
        };
        let on = match (&self.name, self.kind) {
            (Some(name), Kind::Schema | Kind::Database) => {
                format!("{} {}", self.kind.name().to_uppercase(), quote_ident(name))
            }
            (Some(name), kind) => format!(
                "{} {}",
                kind.name().to_uppercase(),
                quote_qualified(&self.schema, name)
            ),
            (None, kind) => format!(
                "ALL {}S IN SCHEMA {}",
                kind.name().to_uppercase(),
                quote_ident(&self.schema)
            ),
        };
        format!(
            "GRANT {}{columns} ON {on} TO {}",
            self.privilege,
            quote_ident(grantee)
        )
    }

    /// Whether this privilege, as granted, allows `row`.
    pub(crate) fn allows(&self, row: &Held) -> bool {
        self.matches_object(row)
            && match (&row.column, self.columns.is_empty()) {
                (None, true) => true,
                (None, false) => false,
                (Some(_), true) => true,
                (Some(column), false) => self.columns.contains(column),
            }
    }

    /// Whether holding `row` breaks this privilege used as a denial: any part of the
    /// denied privilege counts (a column of a denied table, the denied column).
    pub(crate) fn denies(&self, row: &Held) -> bool {
        self.matches_object(row)
            && match &row.column {
                None => true,
                Some(column) => self.columns.is_empty() || self.columns.contains(column),
            }
    }

    fn matches_object(&self, row: &Held) -> bool {
        row.kind == self.kind
            && row.privilege == self.privilege
            && row.schema == self.schema
            && self.name.as_ref().is_none_or(|name| *name == row.name)
    }
}

impl fmt::Display for Privilege {
    /// The privilege in the scope grammar, e.g. `pg:select(id,sku):public.orders`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pg:{}", self.privilege.to_lowercase())?;
        if !self.columns.is_empty() {
            write!(f, "({})", self.columns.join(","))?;
        }
        match self.kind {
            Kind::Table => write!(f, ":{}", self.object()),
            kind => write!(f, ":{}:{}", kind.name(), self.object()),
        }
    }
}

/// One privilege the role holds on one existing object (or column), as the server
/// reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Held {
    pub(crate) kind: Kind,
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) column: Option<String>,
    pub(crate) privilege: &'static str,
}

impl Held {
    /// Reads a row `(kind, schema, name, column, privilege)`; `None` for a kind or
    /// privilege this module does not know.
    pub(crate) fn from_row(
        kind: &str,
        schema: &str,
        name: &str,
        column: &str,
        privilege: &str,
    ) -> Option<Held> {
        let kind = Kind::from_name(kind)?;
        let privilege = kind
            .privileges()
            .iter()
            .find(|p| **p == privilege)
            .copied()
            .or_else(|| (privilege.is_empty()).then_some(""))?;
        Some(Held {
            kind,
            schema: schema.to_owned(),
            name: name.to_owned(),
            column: (!column.is_empty()).then(|| column.to_owned()),
            privilege,
        })
    }

    /// True for a row that only says the object exists.
    pub(crate) fn is_existence(&self) -> bool {
        self.privilege.is_empty()
    }

    /// This held privilege as a scope permission (for reports).
    pub(crate) fn as_privilege(&self) -> Privilege {
        Privilege {
            kind: self.kind,
            privilege: self.privilege,
            columns: self.column.iter().cloned().collect(),
            schema: self.schema.clone(),
            name: Some(self.name.clone()),
        }
    }
}

/// The privileges a grant implies besides the ones written: `USAGE` on the schema of
/// every granted table, sequence, function or procedure, and `CONNECT` on the database
/// the credential connects to. Nothing else is implied.
pub(crate) fn implied(privileges: &[Privilege], database: &str) -> Vec<Privilege> {
    let mut implied = vec![Privilege::database_connect(database)];
    for p in privileges {
        if p.kind.in_schema() {
            let usage = Privilege::schema_usage(&p.schema);
            if !implied.contains(&usage) && !privileges.contains(&usage) {
                implied.push(usage);
            }
        }
    }
    implied
}

/// The schemas whose objects the effective-privilege check looks at.
pub(crate) fn schemas(privileges: &[Privilege]) -> Vec<String> {
    let mut schemas: Vec<String> = Vec::new();
    for p in privileges {
        let schema = match p.kind {
            Kind::Schema => p.name.clone().unwrap_or_default(),
            Kind::Database => continue,
            _ => p.schema.clone(),
        };
        if !schemas.contains(&schema) {
            schemas.push(schema);
        }
    }
    schemas
}

/// The databases named by database privileges.
pub(crate) fn databases(privileges: &[Privilege]) -> Vec<String> {
    let mut databases: Vec<String> = Vec::new();
    for p in privileges {
        if p.kind == Kind::Database
            && let Some(name) = &p.name
            && !databases.contains(name)
        {
            databases.push(name.clone());
        }
    }
    databases
}

/// The privileges a grant requires that the held rows do not show (objects that do not
/// exist show nothing, so they count as missing).
pub(crate) fn missing(required: &[Privilege], held: &[Held]) -> Vec<String> {
    let mut missing = Vec::new();
    for p in required {
        let has = |column: Option<&String>, name: &str| {
            held.iter().any(|h| {
                !h.is_existence()
                    && h.kind == p.kind
                    && h.privilege == p.privilege
                    && h.schema == p.schema
                    && h.name == name
                    && (h.column.is_none() || h.column.as_ref() == column)
            })
        };
        match &p.name {
            Some(name) if p.columns.is_empty() => {
                if !has(None, name) {
                    missing.push(p.to_string());
                }
            }
            Some(name) => {
                let lacking: Vec<&String> =
                    p.columns.iter().filter(|c| !has(Some(c), name)).collect();
                if !lacking.is_empty() {
                    missing.push(p.to_string());
                }
            }
            None => {
                for object in held
                    .iter()
                    .filter(|h| h.is_existence() && h.kind == p.kind && h.schema == p.schema)
                {
                    if !has(None, &object.name) {
                        missing.push(format!("{p} (on {}.{})", object.schema, object.name));
                    }
                }
            }
        }
    }
    missing
}

/// Held privileges no `allowed` privilege covers, as scope permissions; column
/// privileges of one table and privilege are merged (`pg:select(a,b):s.t`).
pub(crate) fn beyond(allowed: &[Privilege], held: &[Held]) -> Vec<String> {
    let mut extra: Vec<Privilege> = Vec::new();
    for h in held.iter().filter(|h| !h.is_existence()) {
        if allowed.iter().any(|p| p.allows(h)) {
            continue;
        }
        let p = h.as_privilege();
        match extra.iter_mut().find(|e| {
            !e.columns.is_empty()
                && !p.columns.is_empty()
                && e.kind == p.kind
                && e.privilege == p.privilege
                && e.schema == p.schema
                && e.name == p.name
        }) {
            Some(e) => e.columns.extend(p.columns),
            None => extra.push(p),
        }
    }
    extra.iter().map(ToString::to_string).collect()
}

/// Denied privileges the held rows break, with what breaks them.
pub(crate) fn violated(denied: &[Privilege], held: &[Held]) -> Vec<String> {
    let mut violations = Vec::new();
    for d in denied {
        let breaking: Vec<String> = held
            .iter()
            .filter(|h| !h.is_existence() && d.denies(h))
            .map(|h| h.as_privilege().to_string())
            .collect();
        if !breaking.is_empty() {
            let via = if breaking.len() == 1 && breaking[0] == d.to_string() {
                String::new()
            } else {
                format!(" (it holds {})", breaking.join(", "))
            };
            violations.push(format!("{d}{via}"));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Privilege, String> {
        Privilege::parse(&text.parse::<Permission>().unwrap())
    }

    fn held(
        kind: Kind,
        schema: &str,
        name: &str,
        column: Option<&str>,
        privilege: &'static str,
    ) -> Held {
        Held {
            kind,
            schema: schema.into(),
            name: name.into(),
            column: column.map(Into::into),
            privilege,
        }
    }

    #[test]
    fn table_privileges_parse_and_grant_quoted() {
        let s = p("pg:select:public.orders").unwrap();
        assert_eq!(
            s.grant_sql("jit_a"),
            r#"GRANT SELECT ON TABLE "public"."orders" TO "jit_a""#
        );
        assert_eq!(s.to_string(), "pg:select:public.orders");
        let c = p("pg:update(id,Sku,id):public.Orders").unwrap();
        assert_eq!(
            c.grant_sql("jit_a"),
            r#"GRANT UPDATE ("id", "sku") ON TABLE "public"."orders" TO "jit_a""#
        );
        assert_eq!(c.to_string(), "pg:update(id,sku):public.orders");
        for action in ["insert", "delete", "truncate", "references", "trigger"] {
            assert!(p(&format!("pg:{action}:app.t")).is_ok(), "{action}");
        }
        assert_eq!(
            p("pg:select:table:app.t").unwrap(),
            p("pg:select:app.t").unwrap()
        );
    }

    #[test]
    fn wildcards_only_where_written_and_never_with_columns() {
        let all = p("pg:select:app.*").unwrap();
        assert_eq!(all.name, None);
        assert_eq!(
            all.grant_sql("r"),
            r#"GRANT SELECT ON ALL TABLES IN SCHEMA "app" TO "r""#
        );
        assert_eq!(all.to_string(), "pg:select:app.*");
        assert!(
            p("pg:select(id):app.*")
                .unwrap_err()
                .contains("column list")
        );
        assert!(p("pg:usage:schema:*").unwrap_err().contains("not allowed"));
        assert!(p("pg:select:*.orders").is_err());
        assert!(p("pg:select:app.ord*").is_err());
    }

    #[test]
    fn other_object_kinds() {
        assert_eq!(
            p("pg:usage:sequence:public.orders_id_seq")
                .unwrap()
                .grant_sql("r"),
            r#"GRANT USAGE ON SEQUENCE "public"."orders_id_seq" TO "r""#
        );
        assert_eq!(
            p("pg:execute:function:public.place_order")
                .unwrap()
                .grant_sql("r"),
            r#"GRANT EXECUTE ON FUNCTION "public"."place_order" TO "r""#
        );
        assert_eq!(
            p("pg:execute:procedure:app.*").unwrap().grant_sql("r"),
            r#"GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA "app" TO "r""#
        );
        assert_eq!(
            p("pg:usage:schema:app").unwrap().grant_sql("r"),
            r#"GRANT USAGE ON SCHEMA "app" TO "r""#
        );
        assert_eq!(
            p("pg:create:schema:app").unwrap().grant_sql("r"),
            r#"GRANT CREATE ON SCHEMA "app" TO "r""#
        );
        assert_eq!(
            p("pg:connect:database:shop").unwrap().grant_sql("r"),
            r#"GRANT CONNECT ON DATABASE "shop" TO "r""#
        );
        assert_eq!(p("pg:temp:database:shop").unwrap().privilege, "TEMPORARY");
        assert_eq!(
            p("pg:usage:sequence:app.*").unwrap().grant_sql("r"),
            r#"GRANT USAGE ON ALL SEQUENCES IN SCHEMA "app" TO "r""#
        );
    }

    #[test]
    fn bad_permissions_say_why() {
        assert!(p("pg:select:orders").unwrap_err().contains("schema.name"));
        assert!(
            p("pg:drop:public.orders")
                .unwrap_err()
                .contains("not a privilege on a table")
        );
        assert!(
            p("pg:execute:public.f")
                .unwrap_err()
                .contains("not a privilege")
        );
        assert!(
            p("pg:select:view:public.v")
                .unwrap_err()
                .contains("unknown object kind")
        );
        assert!(
            p("pg:delete(id):public.t")
                .unwrap_err()
                .contains("take columns")
        );
        assert!(
            p("pg:usage(id):schema:app")
                .unwrap_err()
                .contains("take columns")
        );
        assert!(
            p("pg:select:db.public.t")
                .unwrap_err()
                .contains("too many parts")
        );
        assert!(p("pg:select:public.2x").unwrap_err().contains("start with"));
        assert!(p("pg:select:public.a-b").unwrap_err().contains("'-'"));
        assert!(
            p("pg:usage:sequence:seq")
                .unwrap_err()
                .contains("schema.name")
        );
        let long = format!("pg:select:public.{}", "t".repeat(64));
        assert!(p(&long).unwrap_err().contains("63"));
    }

    #[test]
    fn implied_is_schema_usage_and_database_connect_only() {
        let granted = vec![
            p("pg:select:app.a").unwrap(),
            p("pg:insert:app.b").unwrap(),
            p("pg:execute:function:lib.f").unwrap(),
            p("pg:create:schema:scratch").unwrap(),
        ];
        let implied: Vec<String> = implied(&granted, "shop")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            implied,
            [
                "pg:connect:database:shop",
                "pg:usage:schema:app",
                "pg:usage:schema:lib"
            ]
        );
        assert_eq!(schemas(&granted), ["app", "lib", "scratch"]);
    }

    #[test]
    fn missing_beyond_and_violated() {
        let granted = vec![
            p("pg:select(id,sku):app.t").unwrap(),
            p("pg:insert:app.*").unwrap(),
        ];
        let held = vec![
            held(Kind::Table, "app", "t", None, ""),
            held(Kind::Table, "app", "u", None, ""),
            held(Kind::Table, "app", "t", Some("id"), "SELECT"),
            held(Kind::Table, "app", "t", Some("sku"), "SELECT"),
            held(Kind::Table, "app", "t", Some("price"), "SELECT"),
            held(Kind::Table, "app", "t", None, "INSERT"),
            held(Kind::Function, "app", "f", None, "EXECUTE"),
        ];
        // app.u lacks INSERT.
        assert_eq!(missing(&granted, &held), ["pg:insert:app.* (on app.u)"]);
        assert_eq!(
            beyond(&granted, &held),
            ["pg:select(price):app.t", "pg:execute:function:app.f"]
        );
        let denied = vec![
            p("pg:select:app.t").unwrap(),
            p("pg:delete:app.t").unwrap(),
            p("pg:select(price):app.t").unwrap(),
        ];
        assert_eq!(
            violated(&denied, &held),
            [
                "pg:select:app.t (it holds pg:select(id):app.t, pg:select(sku):app.t, pg:select(price):app.t)",
                "pg:select(price):app.t",
            ]
        );
    }

    #[test]
    fn rows_from_the_server_map_to_known_privileges_only() {
        assert!(Held::from_row("table", "s", "t", "", "SELECT").is_some());
        assert!(
            Held::from_row("table", "s", "t", "", "")
                .unwrap()
                .is_existence()
        );
        assert!(Held::from_row("table", "s", "t", "", "USAGE").is_none());
        assert!(Held::from_row("view", "s", "t", "", "SELECT").is_none());
    }
}
