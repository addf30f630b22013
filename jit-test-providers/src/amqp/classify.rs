//! Which AMQP errors are denials and which authentication failures.
//!
//! RabbitMQ answers both a refused login and a refused operation with 403 ACCESS_REFUSED;
//! what tells them apart is when it happens. A [`ConnectError`] is a failure while logging
//! in: 403 there is an authentication failure, 530 NOT_ALLOWED a denial of the vhost. A
//! bare `lapin::Error` comes from an open connection: 403 (the channel is closed) and 530
//! are denials — unless it is RabbitMQ's login refusal, recognised by its text, for
//! clients that connect with [`AmqpGrant::uri`](super::AmqpGrant::uri) themselves.

use jit_test::ErrorClass;
use lapin::ErrorKind;

use super::login::ConnectError;

/// ACCESS_REFUSED.
pub const ACCESS_REFUSED: u16 = 403;
/// NOT_ALLOWED: RabbitMQ's answer to a vhost the user has no permissions on.
pub const NOT_ALLOWED: u16 = 530;

/// RabbitMQ's text for a refused login.
const LOGIN_REFUSED: &str = "Login was refused";

/// The reply code and text of an AMQP close, if the error is one.
pub(crate) fn reply(error: &lapin::Error) -> Option<(u16, String)> {
    match error.kind() {
        ErrorKind::ProtocolError(e) => Some((e.get_id(), e.get_message().to_string())),
        _ => None,
    }
}

/// Classifies AMQP errors; `None` for errors of other systems.
pub(crate) fn classify(error: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    if let Some(e) = error.downcast_ref::<ConnectError>() {
        return Some(match e.reply_code() {
            Some(ACCESS_REFUSED) => ErrorClass::Unauthenticated,
            Some(NOT_ALLOWED) => ErrorClass::Denied,
            _ => ErrorClass::Other,
        });
    }
    let (code, text) = reply(error.downcast_ref::<lapin::Error>()?)?;
    Some(match code {
        ACCESS_REFUSED if text.contains(LOGIN_REFUSED) => ErrorClass::Unauthenticated,
        ACCESS_REFUSED | NOT_ALLOWED => ErrorClass::Denied,
        _ => ErrorClass::Other,
    })
}
