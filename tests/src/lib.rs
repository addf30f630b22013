//! End-to-end tests of the whole framework (in `tests/`), and the helper binaries they
//! start (in `src/bin/`).
