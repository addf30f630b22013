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
            let mut e = Event::new(kind, "multi-process", "token");
            e.test = "audit::writer".into();
            e.lease = Some(lease.clone());
            e.principal = Some(format!("jit_{lease}"));
            e
        };
        let requested = [
            EventKind::Requested,
            EventKind::Approved,
            EventKind::Granted,
        ];
        log.append(&requested.map(event)).expect("append");
        log.append(&[event(EventKind::Revoked)]).expect("append");
        log.append(&[event(EventKind::ProvenDead)]).expect("append");
    }
}
