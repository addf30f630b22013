//! The `mysql` provider against the real MariaDB server (run `.ci/setup-mysql` first).
mod mysql_support;
