"""Metrics: Kafka's metric names for producers, consumers and the log.

``producer.metrics()``, ``consumer.metrics()`` and ``log.metrics()`` return plain
dicts; :mod:`eventlog.metrics.prometheus` exports them (the ``prometheus`` extra);
``eventlog metrics DIR`` prints a data directory's. docs/operations.md lists every
metric and what it means.
"""
