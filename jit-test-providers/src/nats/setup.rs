//! Making an operator-mode server's keys and configuration, for `.ci/setup-nats` (through
//! the `jit-test-nats-setup` binary) and for anyone running their own.
//!
//! [`write()`] makes, in one directory: `operator.jwt` (an operator with one signing key),
//! `server.conf` (the operator, a system account and the tests' account, preloaded into
//! a full resolver under `jwt/`, which takes account updates over `$SYS`; monitoring on
//! [`monitoring_port`]), and the
//! [key file](super::keys::KeyFile) `provider.toml` (mode 0600). The operator's own seed
//! is never written: accounts are re-signed with its signing key.

use std::path::Path;

use nkeys::KeyPair;

use super::jwt;
use super::keys::KeyFile;

/// The name of the key file inside the directory.
pub const KEY_FILE: &str = "provider.toml";

/// Writes keys and configuration for a server on `127.0.0.1:port` into `dir`, unless the
/// key file is already there (then nothing changes). Returns whether it wrote.
pub fn write(dir: &Path, port: u16) -> Result<bool, String> {
    let key_path = dir.join(KEY_FILE);
    if key_path.exists() && dir.join("server.conf").exists() {
        return Ok(false);
    }
    let at = |e: std::io::Error| format!("cannot write to {}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("jwt")).map_err(at)?;

    let operator = KeyPair::new_operator();
    let operator_signer = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let account = KeyPair::new_account();
    let system_user = KeyPair::new_user();

    let operator_jwt = jwt::sign(
        jwt::operator(
            &operator.public_key(),
            "jit-test",
            &operator_signer.public_key(),
            &system.public_key(),
        ),
        &operator,
    )?;
    let system_jwt = jwt::sign(jwt::account(&system.public_key(), "SYS"), &operator_signer)?;
    let account_jwt = jwt::sign(jwt::account(&account.public_key(), "jit"), &operator_signer)?;
    let everything = jwt::UserPermissions {
        publish: vec![">".into()],
        subscribe: vec![">".into()],
        respond: false,
    };
    let mut user = jwt::user(
        &system_user.public_key(),
        "jit-test-admin",
        &system.public_key(),
        0,
        &everything,
        vec![],
    );
    // The system user does not expire; it is signed by the account's identity key.
    let claims = user.as_object_mut().expect("an object");
    claims.remove("exp");
    claims["nats"]
        .as_object_mut()
        .expect("an object")
        .remove("issuer_account");
    let system_user_jwt = jwt::sign(user, &system)?;

    std::fs::write(dir.join("operator.jwt"), &operator_jwt).map_err(at)?;
    let conf = server_conf(
        dir,
        port,
        &system.public_key(),
        &[
            (system.public_key(), system_jwt),
            (account.public_key(), account_jwt),
        ],
    );
    std::fs::write(dir.join("server.conf"), conf).map_err(at)?;
    let seed = |key: &KeyPair| key.seed().map_err(|e| e.to_string());
    KeyFile {
        url: format!("nats://127.0.0.1:{port}"),
        account: account.public_key(),
        account_seed: seed(&account)?,
        operator_signing_seed: seed(&operator_signer)?,
        system_user_jwt,
        system_user_seed: seed(&system_user)?,
    }
    .write(&key_path)?;
    Ok(true)
}

/// The port of the server's monitoring endpoint (`/connz`, for `.ci/leftovers`): the
/// client port plus 4000, as NATS' own defaults (4222, 8222).
pub fn monitoring_port(port: u16) -> u16 {
    port.wrapping_add(4000)
}

/// The server's configuration: loopback only, operator mode, a full resolver.
fn server_conf(dir: &Path, port: u16, system: &str, preload: &[(String, String)]) -> String {
    let dir = dir.display();
    let monitor = monitoring_port(port);
    let accounts: String = preload
        .iter()
        .map(|(key, jwt)| format!("  {key}: \"{jwt}\"\n"))
        .collect();
    format!(
        "# Written by jit-test-nats-setup: NATS in operator mode for jit-test's `nats` provider.\n\
         listen: \"127.0.0.1:{port}\"\n\
         server_name: \"jit_test_nats\"\n\
         http: \"127.0.0.1:{monitor}\"\n\
         pid_file: \"{dir}/nats-server.pid\"\n\
         log_file: \"{dir}/nats-server.log\"\n\
         operator: \"{dir}/operator.jwt\"\n\
         system_account: \"{system}\"\n\
         resolver: {{\n  type: full\n  dir: \"{dir}/jwt\"\n  allow_delete: false\n  interval: \"2m\"\n  timeout: \"5s\"\n}}\n\
         resolver_preload: {{\n{accounts}}}\n"
    )
}
