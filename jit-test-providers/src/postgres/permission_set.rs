//! Permission sets: one NOLOGIN role per distinct set of privileges holds them; every
//! login role of a lease with that set is a member. Concurrent grants on one table touch
//! no ACL, and table ACLs do not grow with the number of leases.

use std::time::Instant;

use jit_test::ProviderError;

use super::ident::quote_literal;
use super::privileges::Privilege;
use super::retry::{ATTEMPTS, backoff, describe, is_transient};
use super::roles::LOCK_CLASS;
use super::state::Inner;

/// Name prefix of the NOLOGIN roles that hold one permission set each.
pub(crate) const SET_PREFIX: &str = "jit_set_";

/// Creates the permission-set role if missing. Fixed text: the values come from
/// `set_config`, never pasted in.
const CREATE_SET: &str = "DO $jit$
DECLARE
    r text := current_setting('jit.set');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', r);
        EXECUTE format('COMMENT ON ROLE %I IS %L', r,
            jsonb_set(current_setting('jit.set_comment')::jsonb, '{created_at}',
                      to_jsonb(floor(extract(epoch FROM now()))::bigint))::text);
    END IF;
END
$jit$;
";

/// A NOLOGIN role holding the privileges of one distinct permission set.
#[derive(Clone, Debug)]
pub(crate) struct PermissionSet {
    pub(crate) name: String,
    pub(crate) key: i32,
    privileges: Vec<Privilege>,
}

impl PermissionSet {
    /// The set for `privileges` (granted and implied): its name is a hash of their
    /// canonical form, so every process finds the same role.
    pub(crate) fn new(privileges: &[Privilege]) -> PermissionSet {
        let mut canonical: Vec<String> = privileges.iter().map(ToString::to_string).collect();
        canonical.sort();
        canonical.dedup();
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.join(",").as_bytes());
        let hex = jit_test::to_hex(&digest.as_ref()[..12]);
        PermissionSet {
            key: lock_key(&hex),
            name: format!("{SET_PREFIX}{hex}"),
            privileges: privileges.to_vec(),
        }
    }

    fn comment(&self) -> String {
        let listed: Vec<String> = self.privileges.iter().map(ToString::to_string).collect();
        serde_json::json!({ "jit_test_permission_set": listed }).to_string()
    }

    /// Creates the role if missing and grants its privileges (idempotent), under an
    /// exclusive advisory lock on the set: no grant adds a member meanwhile, and the reaper
    /// cannot drop it.
    fn ensure_sql(&self) -> String {
        let mut sql = format!(
            "BEGIN;\nSELECT pg_advisory_xact_lock({LOCK_CLASS}, {});\n\
             SELECT set_config('jit.set', {}, true), set_config('jit.set_comment', {}, true);\n{CREATE_SET}",
            self.key,
            quote_literal(&self.name),
            quote_literal(&self.comment()),
        );
        for p in &self.privileges {
            sql.push_str(&p.grant_sql(&self.name));
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT;");
        sql
    }
}

/// The advisory-lock key of a permission set, from the hex digits of its name.
pub(crate) fn lock_key(hex: &str) -> i32 {
    let n = u32::from_str_radix(hex.get(..8).unwrap_or("0"), 16).unwrap_or(0);
    // 0 and 1 are the reaper's and the group role's keys.
    ((n & 0x7fff_ffff) as i32).max(2)
}

/// Creates or refreshes a permission set, retrying collisions with concurrent grants on
/// the same objects. One task of the process does it at a time; a set refreshed since
/// `failed_at` (by another task that met the same failure) is not refreshed again.
pub(crate) async fn ensure_set(
    provider: &Inner,
    set: &PermissionSet,
    failed_at: Instant,
) -> Result<(), ProviderError> {
    let mut ensured = provider.ensured.lock().await;
    if ensured.get(&set.name).is_some_and(|at| *at > failed_at) {
        return Ok(());
    }
    let sql = set.ensure_sql();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut conn = provider.pool.get().await?;
        match conn.client().simple_query(&sql).await {
            Ok(_) => {
                ensured.insert(set.name.clone(), Instant::now());
                return Ok(());
            }
            Err(e) => {
                conn.rollback().await;
                drop(conn);
                if is_transient(&e) && attempt < ATTEMPTS {
                    backoff(attempt).await;
                    continue;
                }
                return Err(ProviderError::failed(
                    "grant",
                    format!("making the permission set {}: {}", set.name, describe(&e)),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_avoid_the_reserved_ones() {
        assert_eq!(lock_key("00000000"), 2);
        assert_eq!(lock_key("00000001"), 2);
        assert_eq!(lock_key("0000002a"), 42);
        assert_eq!(lock_key("ffffffff"), i32::MAX);
    }
}
