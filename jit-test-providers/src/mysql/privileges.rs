//! The `mysql` scope grammar: a [`Permission`] checked and turned into a typed
//! [`Privilege`], which renders its `GRANT` statement and its canonical scope form.

use std::fmt;

use jit_test::Permission;

use super::ident::{quote_db_pattern, quote_ident, validate_ident};

/// A privilege the grammar can say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Action {
    Select,
    Insert,
    Update,
    Delete,
    Execute,
}

impl Action {
    const ALL: [(&'static str, Action); 5] = [
        ("select", Action::Select),
        ("insert", Action::Insert),
        ("update", Action::Update),
        ("delete", Action::Delete),
        ("execute", Action::Execute),
    ];

    /// The privilege's name in SQL (and in `information_schema`).
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Action::Select => "SELECT",
            Action::Insert => "INSERT",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
            Action::Execute => "EXECUTE",
        }
    }

    fn name(self) -> &'static str {
        Action::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .expect("listed")
            .0
    }

    /// The action whose SQL name is `sql`, if the grammar has it.
    pub(crate) fn from_sql(sql: &str) -> Option<Action> {
        Action::ALL
            .iter()
            .find(|(_, a)| a.sql().eq_ignore_ascii_case(sql))
            .map(|(_, a)| *a)
    }
}

/// What a privilege is on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Object {
    /// `db.table`.
    Table { database: String, table: String },
    /// `db.*`: every table of the database, present and future.
    Database { database: String },
    /// `procedure:db.name` or `function:db.name`.
    Routine {
        kind: RoutineKind,
        database: String,
        name: String,
    },
}

/// A stored procedure or a stored function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum RoutineKind {
    Procedure,
    Function,
}

impl RoutineKind {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            RoutineKind::Procedure => "PROCEDURE",
            RoutineKind::Function => "FUNCTION",
        }
    }

    fn name(self) -> &'static str {
        match self {
            RoutineKind::Procedure => "procedure",
            RoutineKind::Function => "function",
        }
    }
}

impl Object {
    /// The object as it follows `ON` in a `GRANT`.
    pub(crate) fn sql(&self) -> String {
        match self {
            Object::Table { database, table } => {
                format!("{}.{}", quote_ident(database), quote_ident(table))
            }
            Object::Database { database } => format!("{}.*", quote_db_pattern(database)),
            Object::Routine {
                kind,
                database,
                name,
            } => format!(
                "{} {}.{}",
                kind.sql(),
                quote_ident(database),
                quote_ident(name)
            ),
        }
    }

    /// The database the object lives in.
    pub(crate) fn database(&self) -> &str {
        match self {
            Object::Table { database, .. }
            | Object::Database { database }
            | Object::Routine { database, .. } => database,
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Table { database, table } => write!(f, "{database}.{table}"),
            Object::Database { database } => write!(f, "{database}.*"),
            Object::Routine {
                kind,
                database,
                name,
            } => write!(f, "{}:{database}.{name}", kind.name()),
        }
    }
}

/// One checked permission of the `mysql` scheme.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Privilege {
    pub(crate) action: Action,
    /// Column names (lower case: MariaDB compares them without case); empty for the
    /// whole object.
    pub(crate) columns: Vec<String>,
    pub(crate) object: Object,
}

const FORMS: &str = "`mysql:select:shop.orders`, `mysql:update(status):shop.orders`, \
                     `mysql:select:shop.*` or `mysql:execute:procedure:shop.place_order`";

impl Privilege {
    /// Checks a permission against the grammar; the error says why and shows the
    /// nearest valid form.
    pub(crate) fn parse(permission: &Permission) -> Result<Privilege, String> {
        let Some(&(_, action)) = Action::ALL.iter().find(|(n, _)| *n == permission.action) else {
            return Err(format!(
                "unknown action `{}`; the actions are select, insert, update, delete and \
                 execute, e.g. {FORMS}",
                permission.action
            ));
        };
        let object = parse_object(action, &permission.resource)?;
        let columns = parse_columns(action, &object, &permission.args)?;
        Ok(Privilege {
            action,
            columns,
            object,
        })
    }

    /// The privilege as it follows `GRANT`: `SELECT` or `` UPDATE (`status`) ``.
    pub(crate) fn privilege_sql(&self) -> String {
        if self.columns.is_empty() {
            return self.action.sql().to_owned();
        }
        let columns: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        format!("{} ({})", self.action.sql(), columns.join(", "))
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mysql:{}", self.action.name())?;
        if !self.columns.is_empty() {
            write!(f, "({})", self.columns.join(","))?;
        }
        write!(f, ":{}", self.object)
    }
}

fn parse_object(action: Action, resource: &str) -> Result<Object, String> {
    if let Some((kind, rest)) = resource.split_once(':') {
        let kind = match kind {
            "procedure" => RoutineKind::Procedure,
            "function" => RoutineKind::Function,
            other => {
                return Err(format!(
                    "unknown object kind `{other}:`; only `procedure:` and `function:` \
                     prefix a resource, e.g. `mysql:execute:procedure:shop.place_order`"
                ));
            }
        };
        if action != Action::Execute {
            return Err(format!(
                "a {} takes only `execute`, e.g. `mysql:execute:{}:{rest}`",
                kind.name(),
                kind.name()
            ));
        }
        let (database, name) = split_qualified(rest, kind.name())?;
        if name == "*" {
            return Err(format!(
                "`execute` on every routine of a database is not supported; name the {}, \
                 e.g. `mysql:execute:{}:{database}.place_order`",
                kind.name(),
                kind.name()
            ));
        }
        validate_ident(&name, kind.name())?;
        return Ok(Object::Routine {
            kind,
            database,
            name,
        });
    }
    if action == Action::Execute {
        return Err(format!(
            "`execute` needs a routine: `mysql:execute:procedure:{resource}` or \
             `mysql:execute:function:{resource}`"
        ));
    }
    let (database, table) = split_qualified(resource, "table")?;
    if table == "*" {
        return Ok(Object::Database { database });
    }
    validate_ident(&table, "table")?;
    Ok(Object::Table { database, table })
}

/// `db.name` → (`db`, `name`); `name` may be `*`, checked by the caller.
fn split_qualified(text: &str, what: &str) -> Result<(String, String), String> {
    let Some((database, name)) = text.split_once('.') else {
        return Err(format!(
            "`{text}` has no database: write the {what} as `shop.{text}`"
        ));
    };
    if name.contains('.') {
        return Err(format!(
            "`{text}` has more than one `.`; write `database.{what}`"
        ));
    }
    if database == "*" {
        return Err(format!(
            "server-wide privileges (`*.{name}`) are not granted to a test; name the \
             database, e.g. `shop.{name}`"
        ));
    }
    validate_ident(database, "database")?;
    Ok((database.to_owned(), name.to_owned()))
}

fn parse_columns(action: Action, object: &Object, args: &[String]) -> Result<Vec<String>, String> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    let Object::Table { .. } = object else {
        return Err(format!(
            "columns can only be listed on a table, e.g. `mysql:update(status):shop.orders` \
             (not on {object})"
        ));
    };
    if !matches!(action, Action::Select | Action::Insert | Action::Update) {
        return Err(format!(
            "`{}` takes no columns; only select, insert and update do, e.g. \
             `mysql:update(status):{object}`",
            action.name()
        ));
    }
    let mut columns = Vec::with_capacity(args.len());
    for column in args {
        validate_ident(column, "column")?;
        columns.push(column.to_ascii_lowercase());
    }
    columns.sort();
    columns.dedup();
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Privilege, String> {
        Privilege::parse(&text.parse().unwrap())
    }

    #[test]
    fn every_form_parses_and_renders_its_grant() {
        let cases = [
            ("mysql:select:shop.orders", "SELECT", "`shop`.`orders`"),
            ("mysql:delete:shop.orders", "DELETE", "`shop`.`orders`"),
            (
                "mysql:update(status,Note):shop.orders",
                "UPDATE (`note`, `status`)",
                "`shop`.`orders`",
            ),
            ("mysql:select:my_shop.*", "SELECT", "`my\\_shop`.*"),
            (
                "mysql:execute:procedure:shop.place_order",
                "EXECUTE",
                "PROCEDURE `shop`.`place_order`",
            ),
            (
                "mysql:execute:function:shop.total",
                "EXECUTE",
                "FUNCTION `shop`.`total`",
            ),
        ];
        for (text, privilege, object) in cases {
            let p = parse(text).unwrap();
            assert_eq!(p.privilege_sql(), privilege, "{text}");
            assert_eq!(p.object.sql(), object, "{text}");
        }
        assert_eq!(
            parse("mysql:update(status,Note):shop.orders")
                .unwrap()
                .to_string(),
            "mysql:update(note,status):shop.orders"
        );
    }

    #[test]
    fn rejections_say_why_and_show_the_nearest_form() {
        let err = |text: &str| parse(text).unwrap_err();
        assert!(err("mysql:drop:shop.orders").contains("unknown action"));
        assert!(err("mysql:select:orders").contains("shop.orders"));
        assert!(err("mysql:select:*.*").contains("server-wide"));
        assert!(err("mysql:select:shop.a.b").contains("more than one"));
        assert!(err("mysql:execute:shop.p").contains("mysql:execute:procedure:shop.p"));
        assert!(err("mysql:select:procedure:shop.p").contains("only `execute`"));
        assert!(err("mysql:execute:view:shop.p").contains("unknown object kind"));
        assert!(err("mysql:execute:procedure:shop.*").contains("name the procedure"));
        assert!(err("mysql:delete(a):shop.orders").contains("takes no columns"));
        assert!(err("mysql:select(a):shop.*").contains("only be listed on a table"));
        assert!(err("mysql:select:sh-op.orders").contains("'-'"));
        assert!(err("mysql:select:shop.123").contains("digits"));
    }
}
