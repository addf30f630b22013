//! The `amqp` provider against the real broker (`.ci/setup-amqp` first).
