"""confluent-kafka (librdkafka) against librdkafka's in-process mock cluster.

The cluster is owned by one producer created with ``test.mock.num.brokers: 1``
(PEERS.md); every other client connects to it through ``bootstrap.servers``. Each
run writes to a fresh topic (auto-created with 4 partitions) and uses partition 0.
``shutdown()`` closes every client before the owner, so no librdkafka thread
outlives the harness and nothing logs "connection refused" at exit.

Limits of the mock worth knowing: it keeps only ~40k 100-byte records per partition,
so reads are capped below that; consumers must set ``fetch.wait.max.ms`` low or each
fetch round waits ~0.5 s; a group join takes ~3 s (its initial rebalance delay).
"""

from __future__ import annotations

import itertools
import threading
import time
from time import perf_counter
from typing import Any

from .. import latency
from ..harness import Case, Skip
from ..workloads import BATCH_RECORDS, Dataset
from . import require

__all__ = [
    "append_batch",
    "append_one",
    "append_one_default",
    "e2e_latency",
    "group_consume",
    "group_join",
    "produce_threads",
    "read_seq",
    "shutdown",
]

_LOG_LEVEL = 3  # errors only: hides the mock cluster's "enabled" notice
_FLUSH_S = 120.0
_READ_CAP = 30_000  # below the ~40k records per partition the mock keeps
_topics = itertools.count()
_state: dict[str, Any] = {}


def _kafka() -> Any:
    return require("confluent_kafka")


def _bootstrap() -> str:
    """The mock cluster's address, creating the cluster on first use."""
    if "bootstrap" not in _state:
        owner = _kafka().Producer({"test.mock.num.brokers": 1, "log_level": _LOG_LEVEL})
        brokers = owner.list_topics(timeout=10).brokers.values()
        _state["owner"] = owner
        _state["bootstrap"] = ",".join(f"{b.host}:{b.port}" for b in brokers)
    return _state["bootstrap"]


def shutdown() -> None:
    """Destroy the mock cluster (clients are closed by the cases that made them)."""
    owner = _state.pop("owner", None)
    _state.clear()
    if owner is not None:
        owner.flush(5)
        owner.close()


def _producer(**config: Any) -> Any:
    base = {
        "bootstrap.servers": _bootstrap(),
        "log_level": _LOG_LEVEL,
        "queue.buffering.max.messages": 10_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
    }
    return _kafka().Producer({**base, **config})


def _consumer(group: str, **config: Any) -> Any:
    base = {
        "bootstrap.servers": _bootstrap(),
        "log_level": _LOG_LEVEL,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 10,
    }
    return _kafka().Consumer({**base, **config})


def _topic() -> str:
    return f"bench-{next(_topics)}"


def _finish(producer: Any) -> None:
    left = producer.flush(_FLUSH_S)
    if left:
        raise RuntimeError(f"{left} messages still queued after flush")


# -- produce -------------------------------------------------------------------------


def _time_batches(batches: list[list[dict]]) -> float:
    producer = _producer(**{"linger.ms": 5})
    try:
        topic = _topic()
        produce_batch = producer.produce_batch
        start = perf_counter()
        for batch in batches:
            if produce_batch(topic, batch, partition=0) != len(batch):
                raise RuntimeError("produce_batch queued only part of a batch")
        _finish(producer)
        return perf_counter() - start
    finally:
        producer.close()


def append_batch() -> Case:
    def setup(data: Dataset) -> list[list[dict]]:
        if not hasattr(_kafka().Producer, "produce_batch"):
            raise Skip(f"confluent-kafka {_kafka().version()[0]} has no Producer.produce_batch")
        return [[{"key": k, "value": v} for k, v in b] for b in data.batches(BATCH_RECORDS)]

    return Case(
        "confluent-kafka produce_batch → mock",
        setup=setup,
        run=_time_batches,
        note="1,000 message dicts per call, then flush()",
        share="confluent produce_batch",
    )


def _time_produce(data: Dataset, linger_ms: int | None) -> float:
    producer = _producer(**({} if linger_ms is None else {"linger.ms": linger_ms}))
    try:
        topic = _topic()
        produce = producer.produce
        start = perf_counter()
        for key, value in data.records:
            produce(topic, value, key, 0)
        _finish(producer)
        return perf_counter() - start
    finally:
        producer.close()


def append_one(linger_ms: int = 0) -> Case:
    return Case(
        f"confluent-kafka produce → mock (linger {linger_ms} ms)",
        run=lambda data: _time_produce(data, linger_ms),
        note="produce() per record, one flush() at the end",
    )


def append_one_default() -> Case:
    return Case(
        "confluent-kafka produce → mock (default conf)",
        run=lambda data: _time_produce(data, None),
        note="produce() per record, one flush(); librdkafka's defaults (linger.ms=5)",
    )


def _time_produce_threads(data: Dataset, threads: int) -> float:
    """``produce()`` per record from ``threads`` threads through one shared producer
    (librdkafka's producer is thread-safe), the records split between them; then one
    ``flush()``. The clock runs from when all threads are ready."""
    producer = _producer()
    try:
        topic = _topic()
        records = data.records
        share = len(records) // threads
        chunks = [records[i * share : len(records) if i == threads - 1 else (i + 1) * share]
                  for i in range(threads)]
        ready = threading.Barrier(threads + 1)
        failures: list[BaseException] = []

        def work(chunk: list) -> None:
            produce = producer.produce
            ready.wait()
            try:
                for key, value in chunk:
                    produce(topic, value, key, 0)
            except BaseException as exc:  # reported by the timing thread below
                failures.append(exc)

        workers = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
        for worker in workers:
            worker.start()
        ready.wait()
        start = perf_counter()
        for worker in workers:
            worker.join()
        _finish(producer)
        elapsed = perf_counter() - start
        if failures:
            raise failures[0]
        return elapsed
    finally:
        producer.close()


def produce_threads(threads: int) -> Case:
    return Case(
        f"confluent-kafka produce → mock, {threads} threads, one shared producer",
        run=lambda data: _time_produce_threads(data, threads),
        note="librdkafka's defaults (linger.ms=5); produce() per record, the records "
             "split between the threads; one flush()",
    )


# -- consume -------------------------------------------------------------------------


def _fill(data: Dataset) -> tuple[str, int]:
    producer = _producer(**{"linger.ms": 5})
    try:
        topic = _topic()
        for key, value in data.records:
            producer.produce(topic, value, key, 0)
        _finish(producer)
    finally:
        producer.close()
    return topic, len(data)


def _time_consume(state: tuple[str, int]) -> float:
    kafka = _kafka()
    topic, expected = state
    consumer = _consumer(f"read-{next(_topics)}")
    try:
        low, high = consumer.get_watermark_offsets(kafka.TopicPartition(topic, 0), timeout=10)
        if high - low != expected:
            raise RuntimeError(f"mock cluster kept {high - low} of {expected} records")
        deadline = time.monotonic() + 60
        count = 0
        start = perf_counter()
        consumer.assign([kafka.TopicPartition(topic, 0, low)])
        while count < expected and time.monotonic() < deadline:
            count += len(consumer.consume(min(BATCH_RECORDS, expected - count), 1.0))
        elapsed = perf_counter() - start
    finally:
        consumer.close()
    if count != expected:
        raise RuntimeError(f"consumed {count} of {expected}")
    return elapsed


def _time_group_consume(state: tuple[str, int]) -> float:
    """A group member subscribes and consumes everything; timed from its assignment."""
    topic, expected = state
    assigned: list[float] = []
    consumer = _consumer(f"group-read-{next(_topics)}", **{"session.timeout.ms": 6000,
                                                          "heartbeat.interval.ms": 100})
    try:
        consumer.subscribe([topic], on_assign=lambda c, parts: assigned.append(perf_counter()))
        deadline = time.monotonic() + 60
        count = 0
        while count < expected and time.monotonic() < deadline:
            count += sum(1 for m in consumer.consume(BATCH_RECORDS, 1.0) if m.error() is None)
        done = perf_counter()
    finally:
        consumer.close()
    if count != expected or not assigned:
        raise RuntimeError(f"the group consumed {count} of {expected}")
    return done - assigned[0]


def group_consume() -> Case:
    return Case(
        "confluent-kafka group consume ← mock",
        setup=_fill,
        run=_time_group_consume,
        max_records=(_READ_CAP, _READ_CAP),
        note="subscribe() + consume(1000), timed after the join; fetch.wait.max.ms=10; "
             "4 partitions, records in partition 0",
    )


def read_seq() -> Case:
    return Case(
        "confluent-kafka consume ← mock",
        setup=_fill,
        run=_time_consume,
        max_records=(_READ_CAP, _READ_CAP),
        note="assign() + consume(1000); fetch.wait.max.ms=10",
    )


# -- latency and groups ---------------------------------------------------------------


def _time_latency(data: Dataset) -> dict[str, float]:
    kafka = _kafka()
    producer = _producer(**{"linger.ms": 0})
    consumer = _consumer(f"lat-{next(_topics)}")
    try:
        topic = _topic()
        producer.produce(topic, b"start", None, 0)
        _finish(producer)
        _, high = consumer.get_watermark_offsets(kafka.TopicPartition(topic, 0), timeout=10)
        consumer.assign([kafka.TopicPartition(topic, 0, high)])

        def send(value: bytes) -> None:
            producer.produce(topic, value, None, 0)
            producer.poll(0)

        def receive() -> list[bytes]:
            return [m.value() for m in consumer.consume(100, 0.1) if m.error() is None]

        return latency.measure(send, receive, len(data))
    finally:
        consumer.close()
        producer.flush(5)
        producer.close()


def e2e_latency() -> Case:
    return Case(
        "confluent-kafka → mock → consumer",
        run=_time_latency,
        note="linger.ms=0; fetch.wait.max.ms=10",
    )


def _time_group_join(topic: str) -> dict[str, float]:
    group = f"group-{next(_topics)}"
    # Short session and poll intervals bound the mock's occasional second rebalance
    # (a member joining late) to seconds instead of the 45 s default session timeout.
    config = {"heartbeat.interval.ms": 100, "session.timeout.ms": 6000}
    config["max.poll.interval.ms"] = 6000
    consumers = [_consumer(group, **config) for _ in range(3)]
    try:
        deadline = time.monotonic() + 30
        start = perf_counter()
        for consumer in consumers:
            consumer.subscribe([topic])
        while not all(c.assignment() for c in consumers):
            if time.monotonic() > deadline:
                raise RuntimeError("group did not assign all three members in 30 s")
            for consumer in consumers:
                consumer.poll(0.01)
        return {"ms to first assignment": (perf_counter() - start) * 1e3}
    finally:
        for consumer in consumers:
            consumer.close()


def group_join() -> Case:
    def setup(data: Dataset) -> str:
        producer = _producer()
        try:
            topic = _topic()
            for partition in range(3):
                producer.produce(topic, b"v", b"k", partition)
            _finish(producer)
        finally:
            producer.close()
        return topic

    return Case(
        "confluent-kafka group ← mock",
        setup=setup,
        run=_time_group_join,
        warmup=False,
        note="3 consumers polled from one thread; topic has 4 partitions",
    )
