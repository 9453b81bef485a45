"""mockafka-py: an in-memory fake of confluent-kafka's Producer and Consumer.

Its store is a process-wide singleton, so each run starts from ``KafkaStore(clean=True)``
and a one-partition topic. It has no consumer groups and no persistence.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from ..harness import Case
from ..workloads import BATCH_RECORDS, Dataset
from . import require

__all__ = ["append_one", "read_seq"]

_SYSTEM = "mockafka-py (memory)"
_TOPIC = "bench"


def _fresh_store() -> Any:
    mockafka = require("mockafka")
    store = mockafka.kafka_store.KafkaStore(clean=True)
    store.create_partition(topic=_TOPIC, partitions=1)
    return mockafka


def _time_produce(data: Dataset) -> float:
    mockafka = _fresh_store()
    producer = mockafka.FakeProducer()
    produce = producer.produce
    start = perf_counter()
    for key, value in data.records:
        produce(_TOPIC, value=value, key=key, partition=0)
    producer.flush()
    elapsed = perf_counter() - start
    _clear()
    return elapsed


def _clear() -> None:
    require("mockafka").kafka_store.KafkaStore(clean=True)


def append_one() -> Case:
    return Case(_SYSTEM, run=_time_produce, note="produce() per record")


def _fill(data: Dataset) -> int:
    mockafka = _fresh_store()
    producer = mockafka.FakeProducer()
    for key, value in data.records:
        producer.produce(_TOPIC, value=value, key=key, partition=0)
    return len(data)


def _time_consume(expected: int) -> float:
    consumer = require("mockafka").FakeConsumer()
    consumer.subscribe([_TOPIC])
    count = 0
    start = perf_counter()
    while messages := consumer.consume(num_messages=BATCH_RECORDS):
        count += len(messages)
    elapsed = perf_counter() - start
    consumer.close()
    if count != expected:
        raise RuntimeError(f"consumed {count} of {expected}")
    return elapsed


def read_seq() -> Case:
    return Case(
        _SYSTEM,
        setup=_fill,
        run=_time_consume,
        teardown=lambda _: _clear(),
        note="consume(1000) per call",
    )
