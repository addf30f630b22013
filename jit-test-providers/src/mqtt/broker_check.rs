//! What the provider checks about the broker once per process: that it refuses clients
//! without a password, and which default ACL access the plugin grants (reported as
//! beyond the scope).

use jit_test::ProviderError;
use serde_json::json;

use super::control::Control;
use super::session::{self, MqttError};
use super::settings::{MqttSettings, URL_VAR};

/// What the provider learned about the broker.
#[derive(Clone, Debug, Default)]
pub(crate) struct BrokerFacts {
    /// ACL types whose default access is `allow`.
    pub(crate) default_allows: Vec<String>,
}

impl BrokerFacts {
    /// Privileges beyond the scope that every client of this broker holds: an allowing
    /// default reaches the topics that begin with `$` (no role's `#` names them).
    pub(crate) fn beyond_scope(&self) -> Vec<String> {
        self.default_allows
            .iter()
            .map(|acltype| {
                format!(
                    "defaultACLAccess {acltype} is allow: topics beginning with `$` that no ACL \
                     names are open to it (set it to deny: mosquitto_ctrl dynsec \
                     setDefaultACLAccess {acltype} deny)"
                )
            })
            .collect()
    }
}

/// Reads the default ACL access and checks that anonymous clients are refused.
pub(crate) async fn inspect(
    control: &Control,
    settings: &MqttSettings,
) -> Result<BrokerFacts, ProviderError> {
    refuses_anonymous(settings).await?;
    let replies = control
        .send("setup", vec![json!({ "command": "getDefaultACLAccess" })])
        .await?;
    let default_allows = replies
        .first()
        .and_then(|r| r.data["acls"].as_array())
        .into_iter()
        .flatten()
        .filter(|acl| acl["allow"].as_bool() == Some(true))
        .filter_map(|acl| acl["acltype"].as_str().map(str::to_owned))
        .collect();
    Ok(BrokerFacts { default_allows })
}

/// Connects without a user name: the broker must refuse, or nothing checks credentials.
async fn refuses_anonymous(settings: &MqttSettings) -> Result<(), ProviderError> {
    let options = session::options(
        &format!("jit-test-anonymous-{}", std::process::id()),
        (&settings.host, settings.port),
        None,
        settings.connect_timeout,
    );
    match session::open(options, settings.connect_timeout).await {
        Err(MqttError::ConnectRefused { .. }) => Ok(()),
        Err(other) => Err(ProviderError::Unreachable {
            system: "Mosquitto (dynamic security)",
            address: settings.address(),
            setting: URL_VAR,
            reason: other.to_string(),
        }),
        Ok((client, _events)) => {
            let _ = client.disconnect().await;
            Err(ProviderError::Misconfigured(format!(
                "the broker at {} accepts clients without a password, so a revoked credential \
                 would still get in: set `allow_anonymous false` in its configuration (as \
                 .ci/setup-mqtt does), or point {URL_VAR} at a broker that checks passwords",
                settings.address()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowing_defaults_are_reported_with_the_fix() {
        assert!(BrokerFacts::default().beyond_scope().is_empty());
        let facts = BrokerFacts {
            default_allows: vec!["publishClientReceive".into()],
        };
        let reported = facts.beyond_scope();
        assert_eq!(reported.len(), 1);
        assert!(
            reported[0].contains("publishClientReceive")
                && reported[0].contains("setDefaultACLAccess publishClientReceive deny"),
            "{reported:?}"
        );
    }
}
