//! The report's view of the machines a run ran on: per host, its shards, tests, leases
//! and the span of its events.

use std::time::UNIX_EPOCH;

use crate::audit::Event;

use super::model::{HostReport, TestReport};

/// Collects the events of each host, in order of first appearance.
#[derive(Default)]
pub(super) struct Hosts {
    hosts: Vec<HostReport>,
}

fn millis(ts: &str) -> Option<u64> {
    let since = humantime::parse_rfc3339(ts)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?;
    u64::try_from(since.as_millis()).ok()
}

impl Hosts {
    /// Counts `event` for its host.
    pub fn add(&mut self, event: &Event) {
        let index = match self.hosts.iter().position(|h| h.host == event.host) {
            Some(index) => index,
            None => {
                self.hosts.push(HostReport {
                    host: event.host.clone(),
                    shards: Vec::new(),
                    tests: 0,
                    leases: 0,
                    events: 0,
                    start_ms: None,
                    end_ms: None,
                });
                self.hosts.len() - 1
            }
        };
        let host = &mut self.hosts[index];
        host.events += 1;
        if let Some(shard) = &event.shard
            && !host.shards.contains(shard)
        {
            host.shards.push(shard.clone());
        }
        if let Some(ms) = millis(&event.ts) {
            host.start_ms = Some(host.start_ms.map_or(ms, |s| s.min(ms)));
            host.end_ms = Some(host.end_ms.map_or(ms, |e| e.max(ms)));
        }
    }

    /// The hosts, with the tests that ran on each and their granted leases counted.
    pub fn finish(mut self, tests: &[TestReport]) -> Vec<HostReport> {
        for host in &mut self.hosts {
            let here = tests.iter().filter(|t| t.host == host.host);
            for test in here.filter(|t| !t.name.is_empty()) {
                host.tests += 1;
                host.leases += test
                    .leases
                    .iter()
                    .filter(|l| l.granted_at.is_some())
                    .count();
            }
        }
        self.hosts
    }
}
