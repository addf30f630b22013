//! Where audit events go: a [`Sink`]. The [`AuditLog`] file is the default; tests inject
//! a [`FailingSink`] to try the paths that must fail closed when a record cannot be
//! written.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::event::Event;
use super::file::AuditLog;

/// A destination for audit events.
pub trait Sink: Send + Sync {
    /// Appends `events` in order, all or none, atomically with respect to other writers.
    fn append(&self, events: &[Event]) -> io::Result<()>;

    /// Where the events go, for messages: a path or an address (never a secret).
    fn location(&self) -> String;
}

impl Sink for AuditLog {
    fn append(&self, events: &[Event]) -> io::Result<()> {
        AuditLog::append(self, events)
    }

    fn location(&self) -> String {
        self.path().display().to_string()
    }
}

/// A sink that fails its `n`th append (counting from 1) and hands every other append to
/// the sink it wraps: for testing that a caller fails closed when a record is lost.
pub struct FailingSink {
    inner: Arc<dyn Sink>,
    fail_on: usize,
    appends: AtomicUsize,
}

impl FailingSink {
    /// Wraps `inner`, failing its `n`th append.
    pub fn new(inner: Arc<dyn Sink>, n: usize) -> FailingSink {
        FailingSink {
            inner,
            fail_on: n,
            appends: AtomicUsize::new(0),
        }
    }

    /// How many appends were asked of it so far, the failed one included.
    pub fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }
}

impl Sink for FailingSink {
    fn append(&self, events: &[Event]) -> io::Result<()> {
        if self.appends.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_on {
            return Err(io::Error::other(format!(
                "append {} to {} failed (injected fault)",
                self.fail_on,
                self.location()
            )));
        }
        self.inner.append(events)
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, verify};

    #[test]
    fn only_the_nth_append_fails_and_the_chain_of_the_others_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = FailingSink::new(Arc::new(AuditLog::new(&path)), 2);
        let event = || Event::new("run", "token", EventKind::Reaped).with_principal("jit_x");
        let results: Vec<bool> = (0..4).map(|_| sink.append(&[event()]).is_ok()).collect();
        assert_eq!(results, [true, false, true, true]);
        assert_eq!(sink.appends(), 4);
        let report = verify(&path).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.lines, 3);
        let failed = FailingSink::new(Arc::new(AuditLog::new(&path)), 1)
            .append(&[event()])
            .unwrap_err()
            .to_string();
        assert!(failed.contains("injected fault") && failed.contains("audit.jsonl"));
    }
}
