//! [`TokenSettings`]: how the authority signs, and the `[providers.token]` table they are
//! read from.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jit_test::{Config, ProviderError};
use serde::Deserialize;

/// The JWS algorithm the authority signs with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// EdDSA over Ed25519 (RFC 8037), with a key pair generated for each authority. Anyone
    /// can verify with the public key from [`TokenAuthority::jwks`](super::TokenAuthority::jwks).
    #[default]
    EdDSA,
    /// HMAC-SHA-256 with a random 256-bit key generated for each authority. Only the
    /// authority's own [`Verifier`](super::Verifier) can verify: the key is never published.
    HS256,
}

impl Algorithm {
    /// The JOSE name, as in the `alg` header: `EdDSA` or `HS256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    /// Parses a JOSE algorithm name. Names are case-sensitive, as in JOSE.
    fn from_str(text: &str) -> Result<Algorithm, String> {
        match text {
            "EdDSA" => Ok(Algorithm::EdDSA),
            "HS256" => Ok(Algorithm::HS256),
            _ => Err(format!(
                "algorithm = {text:?} is not supported: write \"EdDSA\" (the default) or \"HS256\""
            )),
        }
    }
}

/// How a [`TokenAuthority`](super::TokenAuthority) issues and checks tokens.
///
/// Read from `jit-test.toml` (every key optional; any other key is an error):
///
/// ```toml
/// [providers.token]
/// issuer = "jit-test"      # the `iss` claim
/// audience = "jit-test"    # the `aud` claim
/// algorithm = "EdDSA"      # or "HS256"
/// leeway = "0s"            # clock skew the verifier tolerates past `exp`
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    /// The `iss` claim of issued tokens, and the only issuer the verifier accepts.
    pub issuer: String,
    /// The `aud` claim of issued tokens, and the only audience the verifier accepts.
    pub audience: String,
    /// How tokens are signed.
    pub algorithm: Algorithm,
    /// How long past `exp` the verifier still accepts a token (clock skew).
    pub leeway: Duration,
}

impl Default for TokenSettings {
    /// Issuer and audience `jit-test`, EdDSA, no leeway.
    fn default() -> TokenSettings {
        TokenSettings {
            issuer: "jit-test".to_owned(),
            audience: "jit-test".to_owned(),
            algorithm: Algorithm::EdDSA,
            leeway: Duration::ZERO,
        }
    }
}

/// The `[providers.token]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Table {
    issuer: Option<String>,
    audience: Option<String>,
    algorithm: Option<String>,
    leeway: Option<String>,
}

impl TokenSettings {
    /// The settings in `config`'s `[providers.token]` table, with defaults for missing
    /// keys. Unknown keys and bad values are errors that name the key.
    pub fn from_config(config: &Config) -> Result<TokenSettings, ProviderError> {
        let table = config.provider("token").cloned().unwrap_or_default();
        TokenSettings::from_table(table).map_err(|reason| {
            let file = config
                .file
                .as_ref()
                .map_or_else(|| "jit-test.toml".to_owned(), |f| f.display().to_string());
            ProviderError::Misconfigured(format!("[providers.token] in {file}: {reason}"))
        })
    }

    fn from_table(table: toml::Table) -> Result<TokenSettings, String> {
        let raw: Table = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string().trim().replace('\n', " "))?;
        let defaults = TokenSettings::default();
        let text = |key: &str, value: Option<String>, default: String| match value {
            Some(v) if v.trim().is_empty() => Err(format!("{key} must not be empty")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        Ok(TokenSettings {
            issuer: text("issuer", raw.issuer, defaults.issuer)?,
            audience: text("audience", raw.audience, defaults.audience)?,
            algorithm: match raw.algorithm {
                Some(name) => name.parse()?,
                None => defaults.algorithm,
            },
            leeway: match raw.leeway {
                Some(text) => {
                    jit_test::config::parse_duration(&text, "leeway").map_err(|e| e.to_string())?
                }
                None => defaults.leeway,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TokenSettings, String> {
        TokenSettings::from_table(toml::from_str(text).expect("valid TOML"))
    }

    #[test]
    fn an_empty_table_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), TokenSettings::default());
        let d = TokenSettings::default();
        assert_eq!(
            (d.issuer.as_str(), d.audience.as_str()),
            ("jit-test", "jit-test")
        );
        assert_eq!((d.algorithm, d.leeway), (Algorithm::EdDSA, Duration::ZERO));
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            "issuer = \"https://idp.test\"\naudience = \"orders-api\"\n\
             algorithm = \"HS256\"\nleeway = \"5s\"",
        )
        .unwrap();
        assert_eq!(
            s,
            TokenSettings {
                issuer: "https://idp.test".into(),
                audience: "orders-api".into(),
                algorithm: Algorithm::HS256,
                leeway: Duration::from_secs(5),
            }
        );
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = parse("isuser = \"x\"").unwrap_err();
        assert!(err.contains("isuser"), "{err}");
        assert!(
            err.contains("issuer"),
            "the message lists the known keys: {err}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = parse("algorithm = \"RS256\"").unwrap_err();
        assert!(
            err.contains("RS256") && err.contains("EdDSA") && err.contains("HS256"),
            "{err}"
        );
        let err = parse("leeway = \"soon\"").unwrap_err();
        assert!(err.contains("leeway") && err.contains("soon"), "{err}");
        let err = parse("issuer = \" \"").unwrap_err();
        assert!(err.contains("issuer"), "{err}");
        let err = parse("audience = 3").unwrap_err();
        assert!(
            err.contains("in `audience`") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn from_config_reads_the_providers_table_and_names_it_in_errors() {
        let mut config = Config::global().clone();
        config.providers = toml::from_str("[token]\nissuer = \"svc\"\n").unwrap();
        let s = TokenSettings::from_config(&config).unwrap();
        assert_eq!(s.issuer, "svc");
        assert_eq!(s.audience, "jit-test");

        config.providers = toml::from_str("[token]\nalgoritm = \"HS256\"\n").unwrap();
        let err = TokenSettings::from_config(&config).unwrap_err().to_string();
        assert!(
            err.contains("[providers.token]") && err.contains("algoritm"),
            "{err}"
        );
    }

    #[test]
    fn algorithm_names_round_trip() {
        for alg in [Algorithm::EdDSA, Algorithm::HS256] {
            assert_eq!(alg.to_string().parse::<Algorithm>().unwrap(), alg);
        }
        assert!(
            "eddsa".parse::<Algorithm>().is_err(),
            "JOSE names are case-sensitive"
        );
    }
}
