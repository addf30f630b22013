//! The key file: where the operator-mode server listens and the keys the provider signs
//! with. `jit-test-nats-setup` writes it (mode 0600) beside the server's configuration;
//! the provider reads it.

use std::path::Path;

use nkeys::KeyPair;
use serde::{Deserialize, Serialize};

/// The key file as stored (TOML). No `Debug`: it holds seeds.
#[derive(Serialize, Deserialize)]
pub struct KeyFile {
    /// The operator-mode server, e.g. `nats://127.0.0.1:14222`.
    pub url: String,
    /// Public key of the account the tests' users belong to (`A...`).
    pub account: String,
    /// Seed of that account: signs the users (`SA...`).
    pub account_seed: String,
    /// Seed of a signing key of the operator: signs the account's updates (`SO...`).
    pub operator_signing_seed: String,
    /// JWT of a user of the system account, to push account updates.
    pub system_user_jwt: String,
    /// Seed of that user (`SU...`).
    pub system_user_seed: String,
}

/// The keys, decoded. No `Debug`: it holds seeds.
pub struct Keys {
    /// The account's public key.
    pub account: String,
    /// Signs the users.
    pub account_key: KeyPair,
    /// Signs the account's updates.
    pub operator_signing_key: KeyPair,
    /// The system user's JWT.
    pub system_user_jwt: String,
    /// The system user's key, to sign the server's nonce.
    pub system_user_key: KeyPair,
}

impl KeyFile {
    /// Reads and parses `path`. Errors name the file; never a seed.
    pub fn read(path: &Path) -> Result<KeyFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the NATS key file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            format!(
                "the NATS key file {} is not valid: {}",
                path.display(),
                e.message()
            )
        })
    }

    /// Decodes the seeds; the error names the field, never its value.
    pub fn keys(&self) -> Result<Keys, String> {
        let seed = |field: &str, seed: &str| {
            KeyPair::from_seed(seed).map_err(|_| format!("`{field}` is not an nkey seed"))
        };
        let account_key = seed("account_seed", &self.account_seed)?;
        if account_key.public_key() != self.account {
            return Err("`account_seed` is not the seed of `account`".into());
        }
        Ok(Keys {
            account: self.account.clone(),
            account_key,
            operator_signing_key: seed("operator_signing_seed", &self.operator_signing_seed)?,
            system_user_jwt: self.system_user_jwt.clone(),
            system_user_key: seed("system_user_seed", &self.system_user_seed)?,
        })
    }

    /// Writes the file, readable by its owner only.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        file.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}
