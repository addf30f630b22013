//! [`MqttSession`]: an MQTT v5 connection that reports the broker's answer to each
//! publish and subscription, and [`MqttError`], what it reports.

use std::collections::VecDeque;
use std::time::Duration;

use jit_test::ErrorClass;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::classify::{ack_class, connack_class, connack_code, puback_code, suback_code};

/// What went wrong with an MQTT connection, publish or subscription. Reason codes are
/// MQTT v5's; [`jit_test::classify()`] knows them (see the `classify` table of the
/// [module documentation](super)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    /// The broker answered CONNECT with a failure (0x86 bad user name or password, 0x87
    /// not authorized: an authentication failure).
    #[error("the broker at {address} refused the connection: CONNACK reason {code:#04x}")]
    ConnectRefused {
        /// The broker's address.
        address: String,
        /// The CONNACK reason code.
        code: u8,
    },
    /// The broker answered a QoS 1 PUBLISH with a failure (0x87: a denial).
    #[error("the broker refused the publish on `{topic}`: PUBACK reason {code:#04x}")]
    PublishRefused {
        /// The topic.
        topic: String,
        /// The PUBACK reason code.
        code: u8,
    },
    /// The broker answered SUBSCRIBE with a failure (0x87: a denial).
    #[error("the broker refused the subscription to `{filter}`: SUBACK reason {code:#04x}")]
    SubscribeRefused {
        /// The topic filter.
        filter: String,
        /// The SUBACK reason code.
        code: u8,
    },
    /// The broker ended the session with a DISCONNECT (0x98 when its client was removed).
    #[error("the broker closed the session: DISCONNECT reason {code:#04x}")]
    Disconnected {
        /// The DISCONNECT reason code.
        code: u8,
    },
    /// The broker closed the connection without a DISCONNECT that rumqttc could read:
    /// Mosquitto's DISCONNECT 0x98 after the client's removal is three bytes (no property
    /// length), which rumqttc 0.25 cannot parse, so a revoked session ends this way.
    #[error("the broker at {address} closed the connection")]
    Closed {
        /// The broker's address.
        address: String,
    },
    /// The connection failed.
    #[error("the connection to {address} failed: {reason}")]
    Connection {
        /// The broker's address.
        address: String,
        /// What happened.
        reason: String,
    },
    /// The broker did not answer in time.
    #[error("{address} did not answer within {timeout:?}")]
    Timeout {
        /// The broker's address.
        address: String,
        /// How long was waited.
        timeout: Duration,
    },
}

impl MqttError {
    /// A denial, an authentication failure, or neither.
    pub fn class(&self) -> ErrorClass {
        match self {
            MqttError::ConnectRefused { code, .. } => connack_class(*code),
            MqttError::PublishRefused { code, .. } | MqttError::SubscribeRefused { code, .. } => {
                ack_class(*code)
            }
            _ => ErrorClass::Other,
        }
    }

    fn from_connection(address: &str, error: ConnectionError) -> MqttError {
        match error {
            ConnectionError::ConnectionRefused(code)
            | ConnectionError::MqttState(StateError::ConnFail { reason: code }) => {
                MqttError::ConnectRefused {
                    address: address.to_owned(),
                    code: connack_code(code),
                }
            }
            ConnectionError::MqttState(StateError::ServerDisconnect { reason_code, .. }) => {
                MqttError::Disconnected {
                    code: reason_code as u8,
                }
            }
            ConnectionError::MqttState(StateError::ConnectionAborted) => MqttError::Closed {
                address: address.to_owned(),
            },
            other => MqttError::Connection {
                address: address.to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

/// A message received on a subscribed topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published on.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Connects with `options` and waits for the CONNACK, at most `timeout`.
pub(crate) async fn open(
    options: MqttOptions,
    timeout: Duration,
) -> Result<(AsyncClient, EventLoop), MqttError> {
    let (host, port) = options.broker_address();
    let address = format!("{host}:{port}");
    let (client, mut events) = AsyncClient::new(options, 64);
    let connected = tokio::time::timeout(timeout, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(MqttError::from_connection(&address, e)),
            }
        }
    })
    .await;
    match connected {
        Ok(Ok(())) => Ok((client, events)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(MqttError::Timeout { address, timeout }),
    }
}

/// The options of a plain TCP MQTT v5 connection (clean start, no TLS), with `login`
/// (user name, password) or anonymous. Never print them: their `Debug` shows the password.
pub(crate) fn options(
    client_id: &str,
    address: (&str, u16),
    login: Option<(&str, &str)>,
    timeout: Duration,
) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, address.0, address.1);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    options
        .set_clean_start(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_connection_timeout(timeout.as_secs().max(1));
    options
}

/// Polls `events` on a task of the current runtime and forwards each incoming packet,
/// then the error that ended the connection. The task ends with the connection or when
/// the receiver is gone.
pub(crate) fn drive(
    mut events: EventLoop,
) -> (
    mpsc::UnboundedReceiver<Result<Packet, ConnectionError>>,
    JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let forwarded = match events.poll().await {
                Ok(Event::Incoming(packet)) => tx.send(Ok(packet)),
                Ok(Event::Outgoing(_)) => Ok(()),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            if forwarded.is_err() {
                return;
            }
        }
    });
    (rx, task)
}

/// An MQTT v5 session of a granted client. [`publish`](MqttSession::publish) and
/// [`subscribe`](MqttSession::subscribe) wait for the broker's acknowledgement and return
/// its refusal as an [`MqttError`] that `assert_denied!` recognises; messages on
/// subscribed topics wait in order for [`recv`](MqttSession::recv).
///
/// Its connection is driven by a task on the Tokio runtime that opened it. Dropping the
/// session closes the connection.
pub struct MqttSession {
    client: AsyncClient,
    packets: mpsc::UnboundedReceiver<Result<Packet, ConnectionError>>,
    task: JoinHandle<()>,
    inbox: VecDeque<Message>,
    closed: Option<MqttError>,
    address: String,
    timeout: Duration,
}

impl std::fmt::Debug for MqttSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSession")
            .field("address", &self.address)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Which acknowledgement an operation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckKind {
    PubAck,
    SubAck,
}

impl MqttSession {
    /// Connects with `options`; each later answer is awaited at most `timeout`.
    pub(crate) async fn connect(
        options: MqttOptions,
        timeout: Duration,
    ) -> Result<MqttSession, MqttError> {
        let (host, port) = options.broker_address();
        let (client, events) = open(options, timeout).await?;
        let (packets, task) = drive(events);
        Ok(MqttSession {
            client,
            packets,
            task,
            inbox: VecDeque::new(),
            closed: None,
            address: format!("{host}:{port}"),
            timeout,
        })
    }

    /// Publishes `payload` on `topic` with QoS 1 and waits for the PUBACK: an error if
    /// the broker refused it (PUBACK 0x87 when the topic is outside the scope).
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), MqttError> {
        let payload: Vec<u8> = payload.into();
        let sent = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await;
        match self.acked(sent, AckKind::PubAck).await? {
            code if code < 0x80 => Ok(()),
            code => Err(MqttError::PublishRefused {
                topic: topic.to_owned(),
                code,
            }),
        }
    }

    /// Subscribes to `filter` with QoS 1 and waits for the SUBACK: an error if the broker
    /// refused it (0x87 when the filter is outside the scope).
    pub async fn subscribe(&mut self, filter: &str) -> Result<(), MqttError> {
        let sent = self.client.subscribe(filter, QoS::AtLeastOnce).await;
        match self.acked(sent, AckKind::SubAck).await? {
            code if code < 0x80 => Ok(()),
            code => Err(MqttError::SubscribeRefused {
                filter: filter.to_owned(),
                code,
            }),
        }
    }

    /// The next message on a subscribed topic, waiting at most `within`.
    pub async fn recv(&mut self, within: Duration) -> Result<Message, MqttError> {
        if let Some(message) = self.inbox.pop_front() {
            return Ok(message);
        }
        let address = self.address.clone();
        tokio::time::timeout(within, async {
            loop {
                if let Some(message) = message_of(self.next_packet().await?) {
                    return Ok(message);
                }
            }
        })
        .await
        .unwrap_or(Err(MqttError::Timeout {
            address,
            timeout: within,
        }))
    }

    /// Waits at most `within` for the broker to end the session, and returns how it
    /// ended ([`MqttError::Closed`] or [`MqttError::Disconnected`] once the client is
    /// removed);
    /// `None` if it is still open. Messages received meanwhile stay for `recv`.
    pub async fn closed(&mut self, within: Duration) -> Option<MqttError> {
        let _ = tokio::time::timeout(within, async {
            while self.closed.is_none() {
                if let Ok(packet) = self.next_packet().await {
                    self.keep(packet);
                }
            }
        })
        .await;
        self.closed.clone()
    }

    /// Sends DISCONNECT and closes the connection.
    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut session = self;
            while session.next_packet().await.is_ok() {}
        })
        .await;
    }

    /// Waits for the acknowledgement of a request that `sent` queued, and returns its
    /// reason code; keeps messages that arrive meanwhile.
    async fn acked<E: std::fmt::Display>(
        &mut self,
        sent: Result<(), E>,
        want: AckKind,
    ) -> Result<u8, MqttError> {
        if let Some(closed) = &self.closed {
            return Err(closed.clone());
        }
        sent.map_err(|e| MqttError::Connection {
            address: self.address.clone(),
            reason: e.to_string(),
        })?;
        let (address, timeout) = (self.address.clone(), self.timeout);
        let (kind, code) = tokio::time::timeout(timeout, async {
            loop {
                match self.next_packet().await? {
                    Packet::PubAck(ack) => return Ok((AckKind::PubAck, puback_code(ack.reason))),
                    Packet::SubAck(ack) => {
                        let code = ack.return_codes.first().copied().map_or(0x80, suback_code);
                        return Ok((AckKind::SubAck, code));
                    }
                    packet => self.keep(packet),
                }
            }
        })
        .await
        .unwrap_or(Err(MqttError::Timeout { address, timeout }))?;
        if kind != want {
            return Err(MqttError::Connection {
                address: self.address.clone(),
                reason: format!("the broker sent a {kind:?} where a {want:?} was due"),
            });
        }
        Ok(code)
    }

    /// The next incoming packet; the error that closed the connection once it is closed.
    async fn next_packet(&mut self) -> Result<Packet, MqttError> {
        if let Some(closed) = &self.closed {
            return Err(closed.clone());
        }
        let error = match self.packets.recv().await {
            Some(Ok(packet)) => return Ok(packet),
            Some(Err(e)) => MqttError::from_connection(&self.address, e),
            None => MqttError::Connection {
                address: self.address.clone(),
                reason: "the connection is closed".into(),
            },
        };
        self.closed = Some(error.clone());
        Err(error)
    }

    fn keep(&mut self, packet: Packet) {
        if let Some(message) = message_of(packet) {
            self.inbox.push_back(message);
        }
    }
}

fn message_of(packet: Packet) -> Option<Message> {
    match packet {
        Packet::Publish(publish) => Some(Message {
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            payload: publish.payload.to_vec(),
        }),
        _ => None,
    }
}

impl Drop for MqttSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}
