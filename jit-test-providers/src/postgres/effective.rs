//! What a role can actually do: one query asks `has_*_privilege` about every object in
//! the scope's schemas (tables, views, columns, sequences, functions, procedures, the
//! schemas themselves) and about the named databases. It runs inside the grant's
//! transaction, so it sees the new role before anyone else can, and has no side effects.

use tokio_postgres::SimpleQueryMessage;

use super::ident::quote_literal;
use super::privileges::Held;

/// The name of the first column, which tells this query's rows from other statements'.
const MARKER: &str = "jit_kind";

fn text_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote_literal(i)).collect();
    format!("ARRAY[{}]::text[]", quoted.join(", "))
}

/// The query listing, for `role`, every object of `schemas` and `databases` (a row with
/// an empty privilege) and every privilege the role holds on it, whatever the source:
/// direct grants, membership, `PUBLIC`, ownership. Column privileges appear only where
/// the table privilege is not held.
pub(crate) fn query(role: &str, schemas: &[String], databases: &[String]) -> String {
    let role = quote_literal(role);
    let schemas = text_array(schemas);
    let databases = text_array(databases);
    // CASE guards keep each has_*_privilege function to objects of its kind whatever
    // order the planner evaluates the conditions in.
    format!(
        "WITH me AS (SELECT oid AS id FROM pg_roles WHERE rolname = {role}), \
         sch AS (SELECT oid, nspname::text AS name FROM pg_namespace WHERE nspname::text = ANY ({schemas})), \
         rel AS (SELECT c.oid, sch.name AS schema, c.relname::text AS name, c.relkind = 'S' AS is_seq \
                 FROM pg_class c JOIN sch ON sch.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')) \
         SELECT 'table' AS {MARKER}, rel.schema, rel.name, '' AS col, pr \
           FROM rel, me, unnest(ARRAY['', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) pr \
          WHERE CASE WHEN rel.is_seq THEN false WHEN pr = '' THEN true \
                     ELSE has_table_privilege(me.id, rel.oid, pr) END \
         UNION ALL \
         SELECT 'table', rel.schema, rel.name, a.attname::text, pr \
           FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped, \
                me, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) pr \
          WHERE CASE WHEN rel.is_seq THEN false \
                     ELSE NOT has_table_privilege(me.id, rel.oid, pr) \
                          AND has_column_privilege(me.id, rel.oid, a.attnum, pr) END \
         UNION ALL \
         SELECT 'sequence', rel.schema, rel.name, '', pr \
           FROM rel, me, unnest(ARRAY['', 'USAGE', 'SELECT', 'UPDATE']) pr \
          WHERE CASE WHEN NOT rel.is_seq THEN false WHEN pr = '' THEN true \
                     ELSE has_sequence_privilege(me.id, rel.oid, pr) END \
         UNION ALL \
         SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, sch.name, p.proname::text, '', pr \
           FROM pg_proc p JOIN sch ON sch.oid = p.pronamespace, me, unnest(ARRAY['', 'EXECUTE']) pr \
          WHERE pr = '' OR has_function_privilege(me.id, p.oid, pr) \
         UNION ALL \
         SELECT 'schema', '', sch.name, '', pr \
           FROM sch, me, unnest(ARRAY['', 'USAGE', 'CREATE']) pr \
          WHERE pr = '' OR has_schema_privilege(me.id, sch.oid, pr) \
         UNION ALL \
         SELECT 'database', '', d.datname::text, '', pr \
           FROM pg_database d, me, unnest(ARRAY['', 'CONNECT', 'CREATE', 'TEMPORARY']) pr \
          WHERE d.datname::text = ANY ({databases}) \
            AND (pr = '' OR has_database_privilege(me.id, d.oid, pr))"
    )
}

/// The rows of [`query`] among the results of a batch.
pub(crate) fn rows(messages: &[SimpleQueryMessage]) -> Vec<Held> {
    let mut held = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message
            && row.columns().first().map(|c| c.name()) == Some(MARKER)
        {
            let get = |i: usize| row.get(i).unwrap_or("");
            if let Some(h) = Held::from_row(get(0), get(1), get(2), get(3), get(4))
                && seen.insert(h.clone())
            {
                held.push(h);
            }
        }
    }
    held
}
