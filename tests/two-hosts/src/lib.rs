//! A small PostgreSQL suite for `.ci/two-hosts`: its tests (in `tests/`) run as two
//! nextest partitions on two hosts, each writing the same run into one audit table. The
//! first test (by name) holds its lease until the other host's tests are done, and
//! proves that their reapers left it alone.
