//! What a role can actually do: one query asks `has_*_privilege` about every object in
//! the scope's schemas (tables, views, columns, sequences, functions, procedures, the
//! schemas themselves) and about the named databases. It runs inside the grant's
//! transaction, so it sees the new role before anyone else can, and has no side effects.
//! It is prepared once per admin connection.

use std::collections::HashSet;

use tokio_postgres::Row;

use super::privileges::Held;

/// Lists, for role `$1`, every object of schemas `$2` and databases `$3` (a row with an
/// empty privilege) and every privilege the role holds on it, whatever the source:
/// direct grants, membership, `PUBLIC`, ownership. Column privileges appear only where
/// the table privilege is not held. CASE guards keep each `has_*_privilege` function to
/// objects of its kind whatever order the planner evaluates conditions in.
pub(crate) const QUERY: &str = "\
WITH me AS (SELECT oid AS id FROM pg_roles WHERE rolname = $1::text),
sch AS (SELECT oid, nspname::text AS name FROM pg_namespace WHERE nspname::text = ANY ($2::text[])),
rel AS (SELECT c.oid, sch.name AS schema, c.relname::text AS name, c.relkind = 'S' AS is_seq
          FROM pg_class c JOIN sch ON sch.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S'))
SELECT 'table' AS kind, rel.schema, rel.name, '' AS col, pr
  FROM rel, me, unnest(ARRAY['', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) pr
 WHERE CASE WHEN rel.is_seq THEN false WHEN pr = '' THEN true
            ELSE has_table_privilege(me.id, rel.oid, pr) END
UNION ALL
SELECT 'table', rel.schema, rel.name, a.attname::text, pr
  FROM rel, me, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) pr,
       LATERAL (SELECT attname FROM pg_attribute
                 WHERE attrelid = rel.oid AND attnum > 0 AND NOT attisdropped
                   AND has_column_privilege(me.id, rel.oid, attnum, pr)) a
 WHERE CASE WHEN rel.is_seq THEN false
            ELSE NOT has_table_privilege(me.id, rel.oid, pr)
                 AND has_any_column_privilege(me.id, rel.oid, pr) END
UNION ALL
SELECT 'sequence', rel.schema, rel.name, '', pr
  FROM rel, me, unnest(ARRAY['', 'USAGE', 'SELECT', 'UPDATE']) pr
 WHERE CASE WHEN NOT rel.is_seq THEN false WHEN pr = '' THEN true
            ELSE has_sequence_privilege(me.id, rel.oid, pr) END
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, sch.name, p.proname::text, '', pr
  FROM pg_proc p JOIN sch ON sch.oid = p.pronamespace, me, unnest(ARRAY['', 'EXECUTE']) pr
 WHERE pr = '' OR has_function_privilege(me.id, p.oid, pr)
UNION ALL
SELECT 'schema', '', sch.name, '', pr
  FROM sch, me, unnest(ARRAY['', 'USAGE', 'CREATE']) pr
 WHERE pr = '' OR has_schema_privilege(me.id, sch.oid, pr)
UNION ALL
SELECT 'database', '', d.datname::text, '', pr
  FROM pg_database d, me, unnest(ARRAY['', 'CONNECT', 'CREATE', 'TEMPORARY']) pr
 WHERE d.datname::text = ANY ($3::text[])
   AND (pr = '' OR has_database_privilege(me.id, d.oid, pr))";

/// The rows of [`QUERY`] as held privileges (and objects), without duplicates.
pub(crate) fn rows(rows: &[Row]) -> Vec<Held> {
    let mut held = Vec::new();
    let mut seen = HashSet::new();
    for row in rows {
        let get = |i: usize| row.get::<_, Option<&str>>(i).unwrap_or("");
        if let Some(h) = Held::from_row(get(0), get(1), get(2), get(3), get(4))
            && seen.insert(h.clone())
        {
            held.push(h);
        }
    }
    held
}
