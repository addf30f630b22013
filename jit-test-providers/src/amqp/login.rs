//! AMQP logins: a connection within the timeout, and the error that says the login (not a
//! later operation) failed.

use std::fmt;
use std::time::Duration;

use jit_test::Secret;
use lapin::{Connection, ConnectionProperties};

use super::api::segment;
use super::settings::Address;

/// An AMQP connection that could not be opened: the broker refused the login (403
/// ACCESS_REFUSED: an authentication failure) or the vhost (530 NOT_ALLOWED: a denial), or
/// did not answer. Holds no secret.
#[derive(Debug)]
pub struct ConnectError {
    address: String,
    user: String,
    vhost: String,
    failure: Failure,
}

#[derive(Debug)]
enum Failure {
    Amqp(lapin::Error),
    TimedOut(Duration),
}

impl ConnectError {
    /// The AMQP reply code the broker closed the connection with (403, 530, ...), if any.
    pub fn reply_code(&self) -> Option<u16> {
        match &self.failure {
            Failure::Amqp(e) => super::classify::reply(e).map(|(code, _)| code),
            Failure::TimedOut(_) => None,
        }
    }

    /// Whether the connection was reset or cut before the broker answered (as a busy
    /// broker does when its accept queue is full): worth another try.
    pub(crate) fn is_reset(&self) -> bool {
        use std::io::ErrorKind as Io;
        match &self.failure {
            Failure::Amqp(e) => match e.kind() {
                lapin::ErrorKind::IOError(io) => {
                    matches!(
                        io.kind(),
                        Io::ConnectionReset | Io::ConnectionAborted | Io::UnexpectedEof
                    )
                }
                _ => false,
            },
            Failure::TimedOut(_) => false,
        }
    }

    /// Whether the broker never answered (nothing listening, or a listener that is not
    /// an AMQP broker).
    pub fn is_unreachable(&self) -> bool {
        match &self.failure {
            Failure::Amqp(e) => e.is_io_error(),
            Failure::TimedOut(_) => true,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AMQP login of {} to vhost {:?} at {} failed: ",
            self.user, self.vhost, self.address
        )?;
        match &self.failure {
            Failure::Amqp(e) => write!(f, "{e}"),
            Failure::TimedOut(t) => write!(f, "no answer within {t:?}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            Failure::Amqp(e) => Some(e),
            Failure::TimedOut(_) => None,
        }
    }
}

/// Where and as whom to log in.
#[derive(Clone)]
pub(crate) struct Login {
    pub(crate) address: Address,
    pub(crate) user: String,
    pub(crate) password: Secret,
    pub(crate) timeout: Duration,
}

impl Login {
    /// `amqp://user:password@host:port/vhost`, every part percent-encoded.
    pub(crate) fn uri(&self, vhost: &str) -> Secret {
        let host = match self.address.host.contains(':') {
            true => format!("[{}]", self.address.host),
            false => self.address.host.clone(),
        };
        Secret::new(format!(
            "amqp://{}:{}@{host}:{}/{}",
            segment(&self.user),
            segment(self.password.expose()),
            self.address.port,
            segment(vhost)
        ))
    }

    /// Opens a connection to `vhost`, on the current Tokio runtime, within the timeout.
    pub(crate) async fn connect(&self, vhost: &str) -> Result<Connection, ConnectError> {
        let properties = ConnectionProperties::default().with_connection_name("jit-test".into());
        let uri = self.uri(vhost);
        let attempt = Connection::connect(uri.expose(), properties);
        let failure = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(e)) => Failure::Amqp(e),
            Err(_) => Failure::TimedOut(self.timeout),
        };
        Err(ConnectError {
            address: self.address.to_string(),
            user: self.user.clone(),
            vhost: vhost.to_owned(),
            failure,
        })
    }
}
