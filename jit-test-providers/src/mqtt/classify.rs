//! MQTT v5 reason codes, and what they mean to `assert_denied!` and
//! `assert_unauthenticated!`.
//!
//! | packet | code | class |
//! |---|---|---|
//! | PUBACK, SUBACK | 0x87 not authorized | denial |
//! | CONNACK | 0x86 bad user name or password, 0x87 not authorized | authentication failure |
//! | anything else (DISCONNECT 0x98 when a client is removed, a closed socket, a timeout) | | neither |

use std::error::Error;

use jit_test::ErrorClass;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::{ConnectionError, StateError};

use super::session::MqttError;

/// MQTT v5 "Not authorized".
pub const NOT_AUTHORIZED: u8 = 0x87;
/// MQTT v5 "Bad User Name or Password".
pub const BAD_LOGIN: u8 = 0x86;
/// MQTT v5 DISCONNECT "Administrative action": the broker removed the client.
pub const ADMINISTRATIVE_ACTION: u8 = 0x98;

/// Classifies the errors of [`MqttSession`](super::MqttSession) and of rumqttc's v5 event
/// loop (for tests that drive their own client).
pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<ErrorClass> {
    if let Some(error) = error.downcast_ref::<MqttError>() {
        return Some(error.class());
    }
    let refused = match error.downcast_ref::<ConnectionError>()? {
        ConnectionError::ConnectionRefused(code) => *code,
        ConnectionError::MqttState(StateError::ConnFail { reason }) => *reason,
        _ => return Some(ErrorClass::Other),
    };
    Some(connack_class(connack_code(refused)))
}

/// The class of a refused CONNECT.
pub(crate) fn connack_class(code: u8) -> ErrorClass {
    match code {
        BAD_LOGIN | NOT_AUTHORIZED => ErrorClass::Unauthenticated,
        _ => ErrorClass::Other,
    }
}

/// The class of a refused PUBLISH or SUBSCRIBE.
pub(crate) fn ack_class(code: u8) -> ErrorClass {
    if code == NOT_AUTHORIZED {
        ErrorClass::Denied
    } else {
        ErrorClass::Other
    }
}

/// The wire value of a CONNACK reason.
pub(crate) fn connack_code(code: ConnectReturnCode) -> u8 {
    use ConnectReturnCode as C;
    match code {
        C::Success => 0x00,
        C::RefusedProtocolVersion | C::UnsupportedProtocolVersion => 0x84,
        C::BadClientId | C::ClientIdentifierNotValid => 0x85,
        C::ServiceUnavailable | C::ServerUnavailable => 0x88,
        C::MalformedPacket => 0x81,
        C::ProtocolError => 0x82,
        C::ImplementationSpecificError => 0x83,
        C::BadUserNamePassword => BAD_LOGIN,
        C::NotAuthorized => NOT_AUTHORIZED,
        C::ServerBusy => 0x89,
        C::Banned => 0x8a,
        C::BadAuthenticationMethod => 0x8c,
        C::TopicNameInvalid => 0x90,
        C::PacketTooLarge => 0x95,
        C::QuotaExceeded => 0x97,
        C::PayloadFormatInvalid => 0x99,
        C::RetainNotSupported => 0x9a,
        C::QoSNotSupported => 0x9b,
        C::UseAnotherServer => 0x9c,
        C::ServerMoved => 0x9d,
        C::ConnectionRateExceeded => 0x9f,
        C::UnspecifiedError => 0x80,
    }
}

/// The wire value of a PUBACK reason.
pub(crate) fn puback_code(reason: PubAckReason) -> u8 {
    use PubAckReason as R;
    match reason {
        R::Success => 0x00,
        R::NoMatchingSubscribers => 0x10,
        R::UnspecifiedError => 0x80,
        R::ImplementationSpecificError => 0x83,
        R::NotAuthorized => NOT_AUTHORIZED,
        R::TopicNameInvalid => 0x90,
        R::PacketIdentifierInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::PayloadFormatInvalid => 0x99,
    }
}

/// The wire value of a SUBACK reason.
pub(crate) fn suback_code(reason: SubscribeReasonCode) -> u8 {
    use SubscribeReasonCode as R;
    match reason {
        R::Success(qos) => qos as u8,
        R::Failure | R::Unspecified => 0x80,
        R::ImplementationSpecific => 0x83,
        R::NotAuthorized => NOT_AUTHORIZED,
        R::TopicFilterInvalid => 0x8f,
        R::PkidInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::SharedSubscriptionsNotSupported => 0x9e,
        R::SubscriptionIdNotSupported => 0xa1,
        R::WildcardSubscriptionsNotSupported => 0xa2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connects_are_authentication_failures() {
        let refused = ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword);
        assert_eq!(classify(&refused), Some(ErrorClass::Unauthenticated));
        let busy = ConnectionError::ConnectionRefused(ConnectReturnCode::ServerBusy);
        assert_eq!(classify(&busy), Some(ErrorClass::Other));
        assert_eq!(classify(&std::fmt::Error), None);
    }
}
