//! MQTT topic filters as scope resources: MQTT's own rules, checked before anything reaches
//! the broker, the match of one filter against another, and the one function that puts a
//! topic into a control message.

use serde_json::{Value, json};

/// The longest topic MQTT allows, in bytes.
const MAX_LEN: usize = 65_535;

/// Checks a topic filter written in a scope (`devices/+/telemetry`, `devices/#`) against
/// MQTT's rules; the error says why and shows a valid form.
pub(crate) fn check(filter: &str) -> Result<(), String> {
    if filter.len() > MAX_LEN {
        return Err(format!("a topic is at most {MAX_LEN} bytes"));
    }
    if filter.starts_with('$') {
        return Err(
            "topics beginning with `$` belong to the broker ($SYS, $CONTROL); \
                    name an application topic, e.g. `devices/+/telemetry`"
                .into(),
        );
    }
    if filter.contains(['*', '>']) {
        return Err(
            "`*` and `>` are not MQTT wildcards: `+` matches one level and `#` \
                    the rest, e.g. `devices/+/telemetry` or `devices/#`"
                .into(),
        );
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("`#` must be a whole level and the last one, e.g. `devices/#`".into());
        }
        if level.contains('+') && *level != "+" {
            return Err("`+` must be a whole level, e.g. `devices/+/telemetry`".into());
        }
    }
    Ok(())
}

/// Whether filter `pattern` covers everything `filter` names: `devices/+/telemetry`
/// covers `devices/d1/telemetry` and itself, not `devices/#`.
pub(crate) fn covers(pattern: &str, filter: &str) -> bool {
    let mut wanted = filter.split('/');
    for level in pattern.split('/') {
        match (level, wanted.next()) {
            ("#", _) => return true,
            (_, None) => return false,
            ("+", Some(other)) if other != "#" => {}
            (level, Some(other)) if level == other => {}
            _ => return false,
        }
    }
    wanted.next().is_none()
}

/// One ACL entry of a dynamic-security role. The topic reaches the broker only through
/// here, as a JSON string (serde_json escapes it).
pub(crate) fn acl(acltype: &str, topic: &str, allow: bool, priority: i64) -> Value {
    json!({ "acltype": acltype, "topic": topic, "allow": allow, "priority": priority })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_rules_are_enforced() {
        for ok in [
            "devices/+/telemetry",
            "devices/#",
            "#",
            "+",
            "a/b/c",
            "a//b",
            "x$y",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("devices/#/x", "`#` must be a whole level"),
            ("devices/a#", "`#` must be a whole level"),
            ("devices/a+/x", "`+` must be a whole level"),
            ("$SYS/#", "belong to the broker"),
            ("$CONTROL/dynamic-security/v1", "belong to the broker"),
            ("devices/*", "not MQTT wildcards"),
            ("devices.>", "not MQTT wildcards"),
        ] {
            let error = check(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
        assert!(check(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn covering_follows_mqtt_matching() {
        assert!(covers("devices/+/telemetry", "devices/d1/telemetry"));
        assert!(covers("devices/+/telemetry", "devices/+/telemetry"));
        assert!(covers("devices/#", "devices/d1/telemetry"));
        assert!(covers("devices/#", "devices"));
        assert!(covers("#", "devices/#"));
        assert!(!covers("devices/+/telemetry", "devices/#"));
        assert!(!covers("devices/+/telemetry", "devices/d1/commands"));
        assert!(!covers("devices/d1", "devices/d1/telemetry"));
        assert!(!covers("devices/d1/telemetry", "devices/d1"));
    }

    #[test]
    fn topics_are_escaped_as_json_strings() {
        let entry = acl("publishClientSend", "a\"b\\c", true, 1);
        let text = entry.to_string();
        assert_eq!(
            text,
            r#"{"acltype":"publishClientSend","allow":true,"priority":1,"topic":"a\"b\\c"}"#
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["topic"], "a\"b\\c");
    }
}
