//! End-to-end tests of jit-test live in `tests/`; the binaries in `src/bin` are the
//! helper processes they start.
