//! What a user can effectively do, read from the server right after the grant: its own
//! privileges, its role's, `PUBLIC`'s (MariaDB 10.11 grants those to everyone), and the
//! anonymous accounts that exist. Compared with the scope, this gives what the user
//! holds beyond it and whether it holds a `deny` permission.

use std::fmt;

use super::ident::{escape_db_pattern, pattern_matches, quote_literal};
use super::privileges::{Action, Object, Privilege};

/// Where a privilege is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Server-wide (`*.*`).
    Global,
    /// A database pattern as stored (`my\_db`).
    Database(String),
    Table(String, String),
    Column(String, String, String),
    Routine(String, String, String),
    /// An anonymous account on this host exists.
    Anonymous(String),
}

/// One privilege a grantee holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) grantee: String,
    pub(crate) privilege: String,
    pub(crate) level: Level,
}

/// The query listing what `grantees` hold (rows: level, privilege, database, name,
/// column, grantee), plus the anonymous accounts. Grantees are written as
/// `information_schema` does: `'user'@'host'`, `'role'@''`, `'PUBLIC'@''`.
pub(crate) fn query(grantees: &[String]) -> String {
    let list: Vec<String> = grantees.iter().map(|g| quote_literal(g)).collect();
    let list = list.join(", ");
    format!(
        "SELECT 'global', PRIVILEGE_TYPE, '', '', '', GRANTEE FROM information_schema.USER_PRIVILEGES \
           WHERE GRANTEE IN ({list}) AND PRIVILEGE_TYPE <> 'USAGE' \
         UNION ALL SELECT 'database', PRIVILEGE_TYPE, TABLE_SCHEMA, '', '', GRANTEE \
           FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE IN ({list}) \
         UNION ALL SELECT 'table', PRIVILEGE_TYPE, TABLE_SCHEMA, TABLE_NAME, '', GRANTEE \
           FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE IN ({list}) \
         UNION ALL SELECT 'column', PRIVILEGE_TYPE, TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, GRANTEE \
           FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE IN ({list}) \
         UNION ALL SELECT lower(Routine_type), Proc_priv, Db, Routine_name, '', \
           concat('''', User, '''@''', Host, '''') FROM mysql.procs_priv \
           WHERE concat('''', User, '''@''', Host, '''') IN ({list}) \
         UNION ALL SELECT 'anonymous', 'USAGE', '', '', Host, '''''@''' FROM mysql.user \
           WHERE User = '' AND is_role = 'N'"
    )
}

/// The grantee name `information_schema` uses for a user or role.
pub(crate) fn grantee(user: &str, host: &str) -> String {
    format!("'{user}'@'{host}'")
}

/// Reads the rows of [`query`]. A routine's `Proc_priv` may list several privileges.
pub(crate) fn from_rows(rows: Vec<(String, String, String, String, String, String)>) -> Vec<Held> {
    let mut held = Vec::new();
    for (level, privileges, database, name, column, grantee) in rows {
        let level = match level.as_str() {
            "global" => Level::Global,
            "database" => Level::Database(database),
            "table" => Level::Table(database, name),
            "column" => Level::Column(database, name, column.to_ascii_lowercase()),
            "anonymous" => Level::Anonymous(column),
            kind => Level::Routine(kind.to_owned(), database, name),
        };
        for privilege in privileges.split(',') {
            held.push(Held {
                grantee: grantee.clone(),
                privilege: privilege.trim().to_ascii_uppercase(),
                level: level.clone(),
            });
        }
    }
    held
}

impl Held {
    /// Whether the scope's `privilege` granted to `grantee` is exactly this.
    fn is(&self, privilege: &Privilege, grantee: &str) -> bool {
        self.grantee == grantee
            && Action::from_sql(&self.privilege) == Some(privilege.action)
            && self.level_of(privilege)
    }

    fn level_of(&self, p: &Privilege) -> bool {
        match (&self.level, &p.object) {
            (Level::Table(d, t), Object::Table { database, table }) => {
                p.columns.is_empty() && d == database && t == table
            }
            (Level::Column(d, t, c), Object::Table { database, table }) => {
                d == database && t == table && p.columns.contains(c)
            }
            (Level::Database(pattern), Object::Database { database }) => {
                *pattern == escape_db_pattern(database)
            }
            (
                Level::Routine(kind, d, n),
                Object::Routine {
                    kind: k,
                    database,
                    name,
                },
            ) => {
                kind.eq_ignore_ascii_case(k.sql()) && d == database && n.eq_ignore_ascii_case(name)
            }
            _ => false,
        }
    }

    /// Whether this is held server-wide or in a database of `privileges`.
    fn in_databases(&self, privileges: &[Privilege]) -> bool {
        let mut databases = privileges.iter().map(|p| p.object.database());
        match &self.level {
            Level::Global | Level::Anonymous(_) => true,
            Level::Database(pattern) => databases.any(|d| pattern_matches(pattern, d)),
            Level::Table(d, _) | Level::Column(d, _, _) | Level::Routine(_, d, _) => {
                databases.any(|db| db == d)
            }
        }
    }

    /// Whether holding this lets the grantee do any part of `p`: `p` itself, or the
    /// same privilege on the server, the database, the table or one of its columns.
    pub(crate) fn covers(&self, p: &Privilege) -> bool {
        if Action::from_sql(&self.privilege) != Some(p.action) {
            return false;
        }
        self.level_of(p)
            || match (&self.level, &p.object) {
                (Level::Global, _) => true,
                (Level::Database(pattern), object) => pattern_matches(pattern, object.database()),
                (Level::Table(d, t), Object::Table { database, table }) => {
                    d == database && t == table
                }
                (Level::Column(d, t, _), Object::Table { database, table }) => {
                    d == database && t == table && p.columns.is_empty()
                }
                (Level::Table(d, _) | Level::Column(d, _, _), Object::Database { database }) => {
                    d == database
                }
                _ => false,
            }
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = self.privilege.to_ascii_lowercase().replace(' ', "_");
        match &self.level {
            Level::Global => write!(f, "mysql:{action}:*.* ({})", self.grantee),
            Level::Database(d) => write!(f, "mysql:{action}:{d}.* ({})", self.grantee),
            Level::Table(d, t) => write!(f, "mysql:{action}:{d}.{t} ({})", self.grantee),
            Level::Column(d, t, c) => write!(f, "mysql:{action}({c}):{d}.{t} ({})", self.grantee),
            Level::Routine(k, d, n) => write!(f, "mysql:{action}:{k}:{d}.{n} ({})", self.grantee),
            Level::Anonymous(host) => write!(
                f,
                "anonymous account ''@'{host}': a login that matches it gets its privileges"
            ),
        }
    }
}

/// What the principal holds beyond its scope in the scope's databases (and server-wide):
/// everything of `held` there that is not one of `privileges` granted to `holder` (the
/// user, or its permission set's role). Grants on other databases are not reported.
pub(crate) fn beyond(held: &[Held], privileges: &[Privilege], holder: &str) -> Vec<String> {
    held.iter()
        .filter(|h| h.in_databases(privileges))
        .filter(|h| !privileges.iter().any(|p| h.is(p, holder)))
        .map(ToString::to_string)
        .collect()
}

/// The first `deny` permission something in `held` covers, with what covers it.
pub(crate) fn denied<'a>(
    held: &'a [Held],
    deny: &'a [Privilege],
) -> Option<(&'a Privilege, &'a Held)> {
    deny.iter()
        .find_map(|d| held.iter().find(|h| h.covers(d)).map(|h| (d, h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privilege(text: &str) -> Privilege {
        Privilege::parse(&text.parse().unwrap()).unwrap()
    }

    fn held(grantee: &str, privilege: &str, level: Level) -> Held {
        Held {
            grantee: grantee.into(),
            privilege: privilege.into(),
            level,
        }
    }

    #[test]
    fn exactly_the_scope_is_not_beyond_it() {
        let me = "'jit_a'@'127.0.0.1'";
        let scope = [
            privilege("mysql:select:shop.orders"),
            privilege("mysql:update(status):shop.orders"),
            privilege("mysql:select:my_shop.*"),
            privilege("mysql:execute:procedure:shop.place_order"),
        ];
        let rows = vec![
            held(me, "SELECT", Level::Table("shop".into(), "orders".into())),
            held(
                me,
                "UPDATE",
                Level::Column("shop".into(), "orders".into(), "status".into()),
            ),
            held(me, "SELECT", Level::Database("my\\_shop".into())),
            held(
                me,
                "EXECUTE",
                Level::Routine("procedure".into(), "shop".into(), "place_order".into()),
            ),
        ];
        assert!(
            beyond(&rows, &scope, me).is_empty(),
            "{:?}",
            beyond(&rows, &scope, me)
        );

        let public = held(
            "'PUBLIC'@''",
            "INSERT",
            Level::Table("shop".into(), "orders".into()),
        );
        let elsewhere = held(
            "'PUBLIC'@''",
            "INSERT",
            Level::Table("other".into(), "t".into()),
        );
        let wild = held(me, "SELECT", Level::Database("my_shop".into()));
        let extra = [
            public.clone(),
            elsewhere,
            wild,
            held("''@'%'", "USAGE", Level::Anonymous("localhost".into())),
        ];
        let found = beyond(&extra, &scope, me);
        assert_eq!(
            found.len(),
            3,
            "not the grant on another database: {found:?}"
        );
        assert_eq!(found[0], "mysql:insert:shop.orders ('PUBLIC'@'')");
        assert_eq!(
            found[1], "mysql:select:my_shop.* ('jit_a'@'127.0.0.1')",
            "an unescaped pattern covers more"
        );
        assert!(found[2].contains("anonymous account ''@'localhost'"));
    }

    #[test]
    fn deny_is_covered_from_any_level() {
        let delete = privilege("mysql:delete:shop.orders");
        let update_note = privilege("mysql:update(note):shop.orders");
        let g = "'PUBLIC'@''";
        assert!(held(g, "DELETE", Level::Global).covers(&delete));
        assert!(held(g, "DELETE", Level::Database("sh%".into())).covers(&delete));
        assert!(held(g, "DELETE", Level::Table("shop".into(), "orders".into())).covers(&delete));
        assert!(!held(g, "DELETE", Level::Table("shop".into(), "items".into())).covers(&delete));
        assert!(!held(g, "SELECT", Level::Global).covers(&delete));
        assert!(
            held(
                g,
                "UPDATE",
                Level::Column("shop".into(), "orders".into(), "note".into())
            )
            .covers(&update_note)
        );
        assert!(
            !held(
                g,
                "UPDATE",
                Level::Column("shop".into(), "orders".into(), "status".into())
            )
            .covers(&update_note)
        );
        let rows = vec![held(g, "DELETE", Level::Global)];
        let deny = [delete];
        assert_eq!(
            denied(&rows, &deny).unwrap().0.to_string(),
            "mysql:delete:shop.orders"
        );
    }

    #[test]
    fn routine_privileges_split() {
        let rows = from_rows(vec![(
            "procedure".into(),
            "Execute,Alter Routine".into(),
            "shop".into(),
            "p".into(),
            String::new(),
            "'u'@'h'".into(),
        )]);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1].to_string(),
            "mysql:alter_routine:procedure:shop.p ('u'@'h')"
        );
    }
}
