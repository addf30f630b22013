//! [`Control`]: the admin client's one connection to `$CONTROL/dynamic-security/v1`.
//!
//! Commands go out in batches (one PUBLISH each) tagged with a correlation id; the
//! plugin answers each batch with one message on the response topic, which is handed to
//! the waiting caller. Many callers share the connection; it is opened on first use and
//! again after it closes. Call it from the broker runtime, where its task runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jit_test::ProviderError;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, ConnectionError};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::session::{self, MqttError};
use super::settings::{MqttSettings, URL_VAR};

/// Where commands go.
pub const TOPIC: &str = "$CONTROL/dynamic-security/v1";
/// Where the plugin answers.
const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";

/// The plugin's answer to one command.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// The command answered, e.g. `createClient`.
    pub(crate) command: String,
    /// The plugin's error, e.g. `Client not found`.
    pub(crate) error: Option<String>,
    /// What a query returned.
    pub(crate) data: Value,
}

/// How many times `connect_timeout` to wait for the plugin's answer on an open
/// connection: the plugin works through a burst of batches one at a time, rewriting its
/// state file after each.
const ANSWER_PATIENCE: u32 = 4;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Vec<Reply>>>>>;

/// One admin connection.
struct Link {
    client: AsyncClient,
    waiters: Waiters,
    /// Cleared when the connection ends.
    open: Arc<AtomicBool>,
}

/// The admin connection, opened lazily.
pub(crate) struct Control {
    settings: MqttSettings,
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
    /// Correlation ids are `<prefix>-<n>`: every admin connection, of every process and
    /// machine, receives every response, and skips those of others.
    prefix: String,
    next: AtomicU64,
}

impl Control {
    pub(crate) fn new(settings: MqttSettings) -> Control {
        Control {
            settings,
            link: tokio::sync::Mutex::new(None),
            prefix: format!("{}-{}", std::process::id(), jit_test::rand::hex(4)),
            next: AtomicU64::new(0),
        }
    }

    /// Sends `commands` as one batch and returns the plugin's replies, in order.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        mut commands: Vec<Value>,
    ) -> Result<Vec<Reply>, ProviderError> {
        let link = self.link().await?;
        let id = format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        for command in &mut commands {
            command["correlationData"] = Value::from(id.as_str());
        }
        let (tx, rx) = oneshot::channel();
        link.waiters.lock().unwrap().insert(id.clone(), tx);
        let payload = json!({ "commands": commands }).to_string();
        let lost = |why: String| {
            ProviderError::failed(
                operation,
                format!("the admin connection to {}: {why}", self.settings.address()),
            )
        };
        if let Err(e) = link
            .client
            .publish(TOPIC, QoS::AtMostOnce, false, payload)
            .await
        {
            link.waiters.lock().unwrap().remove(&id);
            return Err(lost(e.to_string()));
        }
        let patience = self.settings.connect_timeout * ANSWER_PATIENCE;
        match tokio::time::timeout(patience, rx).await {
            Ok(Ok(replies)) => Ok(replies),
            Ok(Err(_)) => Err(lost("closed before the plugin answered".into())),
            Err(_) => {
                link.waiters.lock().unwrap().remove(&id);
                Err(lost(format!(
                    "no answer from the dynamic-security plugin within {patience:?}"
                )))
            }
        }
    }

    /// The open connection, opening one if there is none.
    async fn link(&self) -> Result<Arc<Link>, ProviderError> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot
            .as_ref()
            .filter(|link| link.open.load(Ordering::Acquire))
        {
            return Ok(Arc::clone(link));
        }
        let link = Arc::new(self.open().await?);
        *slot = Some(Arc::clone(&link));
        Ok(link)
    }

    async fn open(&self) -> Result<Link, ProviderError> {
        let s = &self.settings;
        let client_id = format!(
            "jit-test-admin-{}-{}",
            std::process::id(),
            jit_test::rand::hex(4)
        );
        let options = session::options(
            &client_id,
            (&s.host, s.port),
            Some((&s.username, s.password.expose())),
            s.connect_timeout,
        );
        let (client, events) = session::open(options, s.connect_timeout)
            .await
            .map_err(|e| self.open_error(e))?;
        let (mut packets, _task) = session::drive(events);
        client
            .subscribe(RESPONSE_TOPIC, QoS::AtMostOnce)
            .await
            .map_err(|e| ProviderError::failed("connect", e))?;
        // The SUBACK comes first: nothing has been sent yet that the plugin could answer.
        let suback = tokio::time::timeout(s.connect_timeout, packets.recv()).await;
        match suback {
            Ok(Some(Ok(Packet::SubAck(ack))))
                if ack
                    .return_codes
                    .iter()
                    .all(|c| super::classify::suback_code(*c) < 0x80) => {}
            _ => {
                return Err(ProviderError::Misconfigured(format!(
                    "the admin client `{}` of {} may not subscribe to {RESPONSE_TOPIC}: give it \
                     the role `mosquitto_ctrl dynsec init` creates, or change the admin in {}",
                    s.username,
                    s.address(),
                    s.source
                )));
            }
        }
        let link = Link {
            client,
            waiters: Arc::default(),
            open: Arc::new(AtomicBool::new(true)),
        };
        tokio::spawn(dispatch(
            packets,
            Arc::clone(&link.waiters),
            Arc::clone(&link.open),
        ));
        Ok(link)
    }

    fn open_error(&self, error: MqttError) -> ProviderError {
        let s = &self.settings;
        match error {
            MqttError::ConnectRefused { code, .. } => ProviderError::Misconfigured(format!(
                "the broker at {} refused the admin client `{}` (CONNACK {code:#04x}): check \
                 the admin URL in {} (or set {URL_VAR})",
                s.address(),
                s.username,
                s.source
            )),
            other => ProviderError::Unreachable {
                system: "Mosquitto (dynamic security)",
                address: s.address(),
                setting: URL_VAR,
                reason: other.to_string(),
            },
        }
    }
}

/// Hands each response to its waiter until the connection ends, then fails the rest.
async fn dispatch(
    mut packets: mpsc::UnboundedReceiver<Result<Packet, ConnectionError>>,
    waiters: Waiters,
    open: Arc<AtomicBool>,
) {
    while let Some(Ok(packet)) = packets.recv().await {
        let Packet::Publish(publish) = packet else {
            continue;
        };
        let Some((id, replies)) = parse_response(&publish.payload) else {
            continue;
        };
        if let Some(waiter) = waiters.lock().unwrap().remove(&id) {
            let _ = waiter.send(replies);
        }
    }
    open.store(false, Ordering::Release);
    waiters.lock().unwrap().clear();
}

/// `{"responses":[{"command":…,"error":…,"data":…,"correlationData":…}, …]}`.
fn parse_response(payload: &[u8]) -> Option<(String, Vec<Reply>)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let responses = value.get("responses")?.as_array()?;
    let id = responses
        .first()?
        .get("correlationData")?
        .as_str()?
        .to_owned();
    let replies = responses
        .iter()
        .map(|r| Reply {
            command: r["command"].as_str().unwrap_or_default().to_owned(),
            error: r.get("error").and_then(Value::as_str).map(str::to_owned),
            data: r.get("data").cloned().unwrap_or(Value::Null),
        })
        .collect();
    Some((id, replies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_matched_by_correlation_id() {
        let payload = br#"{"responses":[{"command":"deleteClient","correlationData":"7-1"},
            {"command":"deleteRole","error":"Role not found","correlationData":"7-1"}]}"#;
        let (id, replies) = parse_response(payload).unwrap();
        assert_eq!(id, "7-1");
        assert_eq!(replies[1].command, "deleteRole");
        assert_eq!(replies[1].error.as_deref(), Some("Role not found"));
        assert!(parse_response(b"{\"responses\":[]}").is_none());
    }
}
