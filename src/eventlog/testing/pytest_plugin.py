"""eventlog's pytest plugin (on when eventlog is installed; off with ``-p no:eventlog``).

Fixtures:

* ``eventlog_clock``: a ManualClock (autojump: waits end at once, time moves).
* ``eventlog_log``: an in-memory EventLog on that clock, ``auto_create_topics=True``
  (as a Kafka broker's default), closed after the test.
* ``kafka_clients``: ``use_eventlog(eventlog_log)`` for the test: ``import
  confluent_kafka`` / ``import kafka`` in the code under test give eventlog's modules.
  Yields a KafkaClients (``.log``, ``.bootstrap_servers``, ``.confluent_kafka``, ``.kafka``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..broker import EventLog
from ..broker import open as open_log
from .clock import ManualClock
from .kafka import KafkaClients, use_eventlog


@pytest.fixture
def eventlog_clock() -> ManualClock:
    """A ManualClock for the test's log."""
    return ManualClock()


@pytest.fixture
def eventlog_log(eventlog_clock: ManualClock) -> Iterator[EventLog]:
    """An in-memory EventLog on ``eventlog_clock``, closed after the test."""
    log = open_log(None, clock=eventlog_clock, auto_create_topics=True)
    try:
        yield log
    finally:
        log.close()


@pytest.fixture
def kafka_clients(eventlog_log: EventLog) -> Iterator[KafkaClients]:
    """Kafka client imports resolve to eventlog's modules on ``eventlog_log``."""
    with use_eventlog(eventlog_log) as clients:
        yield clients
