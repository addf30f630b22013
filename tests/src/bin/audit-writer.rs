//! Appends full lease lifecycles to an audit log, as one of many concurrent test
//! processes would: `audit-writer <path> <leases>`.

use jit_test::audit::{AuditLog, Event, EventKind};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: audit-writer <path> <leases>");
        std::process::exit(2);
    };
    let log = AuditLog::new(path);
    let pid = std::process::id();
    for i in 0..count.parse::<usize>().expect("leases is a number") {
        let lease = format!("{pid}_{i}");
        let event = |kind| {
            Event::new("multi-process", "token", kind)
                .with_test("audit::writer")
                .with_lease(&lease)
                .with_principal(&format!("jit_{lease}"))
        };
        let permissions = vec!["token:read:a".to_owned()];
        let requested = [
            EventKind::Requested {
                permissions: permissions.clone(),
                ttl_ms: 30_000,
                reason: None,
            },
            EventKind::Approved {
                approver: "max-ttl".into(),
            },
            EventKind::Granted {
                permissions,
                expires_at: 1_800_000_000,
            },
        ];
        log.append(&requested.map(event)).expect("append");
        log.append(&[event(EventKind::Revoked)]).expect("append");
        let refusal = "401 Unauthorized".to_owned();
        log.append(&[event(EventKind::ProvenDead { refusal })])
            .expect("append");
    }
}
