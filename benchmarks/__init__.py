"""eventlog's benchmark harness: ``python -m benchmarks [--quick] [--only NAME ...]``.

Compares eventlog with what users would pick instead (SQLite, eventsourcing's
recorders, persist-queue, queuelib, confluent-kafka's mock cluster, mockafka-py)
and with pure-Python floors. See benchmarks/README.md.
"""
