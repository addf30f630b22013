//! [`NatsConnection`]: an `async_nats::Client` whose operations report the server's
//! denials as errors.
//!
//! NATS answers a denied publish or subscription with an asynchronous
//! `-ERR 'Permissions Violation for ...'` and keeps the connection open; a client sees it
//! only as an event. The checked operations here send their message, then one message
//! round trip through the credential's own inbox: the server handles a connection's
//! messages in order, so by the time that message comes back, any violation it found
//! has been sent; the client then gets up to 200 ms to hand it over. One round trip (and,
//! when nothing was refused, that wait) per checked operation; use
//! [`NatsConnection::client`] for unchecked, fire-and-forget traffic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, Event, Message, ServerError, Subscriber};
use bytes::Bytes;
use tokio::sync::Notify;

/// How long a checked operation waits, after its round trip, for the client's event task
/// to deliver a violation the server has already sent.
const EVENT_GRACE: Duration = Duration::from_millis(200);

/// What went wrong with an operation of a [`NatsConnection`]. Classified by the
/// provider: `Denied` is a denial, `Unauthenticated` an authentication failure.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The server refused the operation: `Permissions Violation for ...`.
    #[error("NATS denied {operation} `{subject}`: {message}")]
    Denied {
        /// `publish`, `subscribe` or `request`.
        operation: &'static str,
        /// The subject.
        subject: String,
        /// The server's message.
        message: String,
    },
    /// The server no longer accepts the credential (`Authorization Violation`,
    /// `User Authentication Expired`, `User Authentication Revoked`).
    #[error("NATS refused the credential: {0}")]
    Unauthenticated(String),
    /// The client failed (connection lost, timeout, no responders).
    #[error("NATS {operation} failed: {source}")]
    Client {
        /// What was attempted.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl NatsError {
    fn client(
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> NatsError {
        NatsError::Client {
            operation,
            source: source.into(),
        }
    }
}

/// The server's `-ERR` messages seen on one connection, in order.
#[derive(Default)]
pub(crate) struct ServerErrors {
    seen: Mutex<Vec<String>>,
    arrived: Notify,
    disconnected: Notify,
}

impl ServerErrors {
    /// Records what the client reports; meant for `ConnectOptions::event_callback`.
    pub(crate) fn record(&self, event: Event) {
        match event {
            Event::ServerError(ServerError::AuthorizationViolation) => {
                self.push("Authorization Violation".into())
            }
            Event::ServerError(ServerError::Other(message)) => self.push(message),
            Event::Disconnected => self.disconnected.notify_waiters(),
            _ => {}
        }
    }

    fn push(&self, message: String) {
        self.seen.lock().expect("not poisoned").push(message);
        self.arrived.notify_waiters();
    }

    fn since(&self, mark: usize) -> Vec<String> {
        self.seen.lock().expect("not poisoned")[mark..].to_vec()
    }

    fn mark(&self) -> usize {
        self.seen.lock().expect("not poisoned").len()
    }
}

/// Whether the server's message says the credential is no longer accepted.
pub(crate) fn is_authentication_failure(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("authorization violation")
        || lower.contains("authentication expired")
        || lower.contains("authentication revoked")
}

/// A connection made with a test's credential. Created by
/// [`NatsGrant::connect`](super::NatsGrant::connect).
pub struct NatsConnection {
    pub(crate) client: Client,
    pub(crate) errors: Arc<ServerErrors>,
    pub(crate) inbox: String,
}

impl std::fmt::Debug for NatsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConnection")
            .field("inbox", &self.inbox)
            .finish_non_exhaustive()
    }
}

impl NatsConnection {
    /// The underlying client, for anything the checked operations do not cover (its
    /// inbox prefix is the credential's own).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Publishes `payload` to `subject` and waits until the server has handled it:
    /// `Err(Denied)` when it is outside the credential's scope.
    pub async fn publish(&self, subject: &str, payload: impl Into<Bytes>) -> Result<(), NatsError> {
        let mark = self.errors.mark();
        self.client
            .publish(subject.to_owned(), payload.into())
            .await
            .map_err(|e| NatsError::client("publish", e))?;
        self.settle("publish", subject, mark).await
    }

    /// Subscribes to `subject` and waits until the server has handled it: `Err(Denied)`
    /// when it is outside the credential's scope.
    pub async fn subscribe(&self, subject: &str) -> Result<Subscriber, NatsError> {
        self.checked_subscribe(subject, None).await
    }

    /// Subscribes to `subject` in queue group `queue`, checked like [`Self::subscribe`].
    pub async fn queue_subscribe(
        &self,
        subject: &str,
        queue: &str,
    ) -> Result<Subscriber, NatsError> {
        self.checked_subscribe(subject, Some(queue)).await
    }

    async fn checked_subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscriber, NatsError> {
        let mark = self.errors.mark();
        let subscribed = match queue {
            None => self.client.subscribe(subject.to_owned()).await,
            Some(q) => {
                self.client
                    .queue_subscribe(subject.to_owned(), q.to_owned())
                    .await
            }
        };
        let subscriber = subscribed.map_err(|e| NatsError::client("subscribe", e))?;
        self.settle("subscribe", subject, mark).await?;
        Ok(subscriber)
    }

    /// Sends a request and waits for its reply. A request the credential may not
    /// publish is `Err(Denied)` as soon as the server says so, not a timeout.
    pub async fn request(
        &self,
        subject: &str,
        payload: impl Into<Bytes>,
    ) -> Result<Message, NatsError> {
        let mark = self.errors.mark();
        let refused = async {
            loop {
                let arrived = self.errors.arrived.notified();
                if let Some(e) = self.violation("request", subject, mark) {
                    return e;
                }
                arrived.await;
            }
        };
        tokio::select! {
            reply = self.client.request(subject.to_owned(), payload.into()) => {
                reply.map_err(|e| self.violation("request", subject, mark)
                    .unwrap_or_else(|| NatsError::client("request", e)))
            }
            e = refused => Err(e),
        }
    }

    /// Waits until the server has closed the connection because it no longer accepts the
    /// credential (now or earlier), at most `timeout`, and returns the server's message
    /// (`User Authentication Expired`, `User Authentication Revoked`). `None` if that did
    /// not happen in time.
    pub async fn closed_by_server(&self, timeout: Duration) -> Option<String> {
        let mark = 0;
        let refused = async {
            loop {
                let arrived = self.errors.arrived.notified();
                if let Some(m) = self
                    .errors
                    .since(mark)
                    .into_iter()
                    .find(|m| is_authentication_failure(m))
                {
                    return m;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(timeout, refused).await.ok()
    }

    /// The first error since `mark` that refuses `subject` or the credential.
    fn violation(&self, operation: &'static str, subject: &str, mark: usize) -> Option<NatsError> {
        let quoted = format!("\"{subject}\"");
        self.errors.since(mark).into_iter().find_map(|message| {
            if message.contains("Permissions Violation") && message.contains(&quoted) {
                Some(NatsError::Denied {
                    operation,
                    subject: subject.to_owned(),
                    message,
                })
            } else if is_authentication_failure(&message) {
                Some(NatsError::Unauthenticated(message))
            } else {
                None
            }
        })
    }

    /// One round trip through the own inbox, then the first violation since `mark`
    /// that names `subject` (or the credential), as an error.
    async fn settle(
        &self,
        operation: &'static str,
        subject: &str,
        mark: usize,
    ) -> Result<(), NatsError> {
        let probe = format!("{}.settle.{}", self.inbox, jit_test::rand::hex(6));
        // Registered before anything is sent, so no error that arrives later is missed.
        let arrived = self.errors.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let round_trip = async {
            let mut echo = self
                .client
                .subscribe(probe.clone())
                .await
                .map_err(|e| NatsError::client(operation, e))?;
            self.client
                .publish(probe.clone(), Bytes::new())
                .await
                .map_err(|e| NatsError::client(operation, e))?;
            use futures_util::StreamExt;
            echo.next()
                .await
                .ok_or_else(|| NatsError::client(operation, "the connection closed"))?;
            Ok::<(), NatsError>(())
        };
        let outcome = tokio::time::timeout(Duration::from_secs(5), round_trip).await;
        // The server sent any violation before the echo, but the client hands errors to
        // the event task and messages to the subscriber on separate channels: give the
        // event task up to EVENT_GRACE to deliver it (at once if it already has).
        if self.violation(operation, subject, mark).is_none() {
            let _ = tokio::time::timeout(EVENT_GRACE, arrived).await;
        }
        if let Some(e) = self.violation(operation, subject, mark) {
            return Err(e);
        }
        match outcome {
            Ok(result) => result,
            Err(_) => Err(NatsError::client(
                operation,
                "no answer from the server within 5 s",
            )),
        }
    }
}
