"""Alert delivery: the durable outbox and the sinks that take alerts from it."""
