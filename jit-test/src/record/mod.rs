//! The record of what happened: the hash-chained [audit log](audit), the run
//! [report](report) built from it, and the end-of-process [summary](summary).

pub mod audit;
pub mod report;
pub mod summary;
