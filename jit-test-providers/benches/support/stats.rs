//! Medians and 90th percentiles of timed samples, shared by the benchmarks.

use std::time::Duration;

/// The median and 90th percentile of some samples.
#[derive(Clone, Copy)]
pub struct Stats {
    pub median: Duration,
    pub p90: Duration,
}

/// Summarises `samples` (at least one).
pub fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        median: samples[samples.len() / 2],
        p90: samples[samples.len() * 9 / 10],
    }
}
