"""Assertion helpers for tests of code that produces to and consumes from an EventLog:
``records``, ``wait_for`` and ``assert_produced``."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..consumer import Consumer
from ..errors import EventLogTimeoutError, InvalidConfigError
from ..log import EventLog
from ..records import ConsumerRecord, TimestampType
from .clock import ManualClock

__all__ = ["assert_produced", "records", "wait_for"]

wait_step_ms_default = 100.0


def records(log: EventLog, topic: str, partition: int | None = None) -> list[ConsumerRecord]:
    """Every record now in ``topic`` (or in one ``partition`` of it) as ConsumerRecords
    with raw bytes, partition by partition, each in offset order.

    Reads directly (no consumer, no group, no offsets committed); lingering producer
    batches are flushed first, as every in-process read does. Raises UnknownTopicError
    for a topic the log lacks, InvalidConfigError for a partition it lacks.
    """
    if not isinstance(log, EventLog):
        raise InvalidConfigError(f"records() needs an EventLog, got {type(log).__name__}")
    t = log.topic(topic)
    if partition is None:
        indices: Sequence[int] = range(t.num_partitions)
    elif isinstance(partition, bool) or not isinstance(partition, int) \
            or not 0 <= partition < t.num_partitions:
        raise InvalidConfigError(
            f"topic {topic!r} has partitions 0..{t.num_partitions - 1}, got {partition!r}")
    else:
        indices = [partition]
    out: list[ConsumerRecord] = []
    for index in indices:
        part = t.partition(index)
        part.flush_lingering()  # iter() takes its end offset before reading
        ts_type = (TimestampType.LOG_APPEND_TIME if part.config.log_append_time
                   else TimestampType.CREATE_TIME)
        out.extend(ConsumerRecord(topic, index, r.offset, r.timestamp_ms, ts_type, r.key,
                                  r.value, r.headers) for r in part.iter())
    return out


def _as_bytes(item: Any, what: str) -> bytes | None:
    if item is None or isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"assert_produced(): an expected {what} must be bytes, str or None, got "
                    f"{type(item).__name__} {item!r}")


def _is_subsequence(needle: list[Any], haystack: list[Any]) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


def assert_produced(log: EventLog, topic: str, expected: Sequence[Any], *,
                    partition: int | None = None) -> None:
    """Assert that ``topic`` holds exactly the ``expected`` records.

    ``expected`` lists values (bytes, str compared as its UTF-8 bytes, or None), or
    ``(key, value)`` tuples to compare the keys too (all of one kind). Within one partition (the
    topic has one, or ``partition`` is given) the order must match; across several,
    the records must be the expected ones in an order consistent with each partition's
    (Kafka orders records per partition only).

    Raises AssertionError with a line-by-line diff of what is there against what was
    expected; TypeError for an expected item that is not one of the above, or a mix.
    """
    if isinstance(expected, (str, bytes)) or not isinstance(expected, Sequence):
        raise TypeError("assert_produced() expects a list of values or (key, value) tuples, "
                        f"got {type(expected).__name__}")
    want: list[Any] = []
    for item in expected:
        if isinstance(item, tuple):
            if len(item) != 2:
                raise TypeError(f"assert_produced(): a tuple must be (key, value), got {item!r}")
            want.append((_as_bytes(item[0], "key"), _as_bytes(item[1], "value")))
        else:
            want.append(_as_bytes(item, "value"))
    kinds = {isinstance(w, tuple) for w in want}
    if len(kinds) > 1:
        raise TypeError("assert_produced(): give either values or (key, value) tuples, "
                        "not a mix")
    found = records(log, topic, partition)
    if True in kinds:
        got: list[Any] = [(r.key, r.value) for r in found]
    else:
        got = [r.value for r in found]
    single = partition is not None or log.topic(topic).num_partitions == 1
    if single:
        ok = got == want
    else:
        per_partition: dict[int, list[Any]] = {}
        for r, g in zip(found, got):
            per_partition.setdefault(r.partition, []).append(g)
        ok = Counter(map(repr, got)) == Counter(map(repr, want)) and all(
            _is_subsequence(seq, want) for seq in per_partition.values())
    if ok:
        return
    where = f"{topic!r}" if partition is None else f"{topic!r} partition {partition}"
    order = "" if single else " (in an order consistent with each partition's)"
    lines = [f"{where} holds {len(found)} record(s), expected {len(want)}{order}:"]
    labels = [f"p{r.partition}@{r.offset} " for r in found]
    got_lines = [f"{g!r}" for g in got]
    want_lines = [f"{w!r}" for w in want]
    for line in difflib.ndiff(want_lines, got_lines):
        if line.startswith("?"):
            continue
        lines.append(line)
    if not single:
        lines.append("stored: " + ", ".join(lb + gl for lb, gl in zip(labels, got_lines)))
    lines.append("('-' expected but missing, '+' there but not expected)")
    raise AssertionError("\n".join(lines))


def _log_of(consumer: Any) -> EventLog:
    log = getattr(consumer, "_log", None)
    if not isinstance(log, EventLog):
        raise TypeError(
            "wait_for() needs an eventlog Consumer or a consumer of eventlog.compat's "
            f"confluent_kafka or kafka modules, got {type(consumer).__name__}")
    return log


def _poll_once(consumer: Any, wait_ms: float, want: int) -> list[Any]:
    """One poll of at most ``want`` records, waiting up to ``wait_ms``."""
    if isinstance(consumer, Consumer):
        return consumer.poll(timeout_ms=wait_ms, max_records=want)
    module = type(consumer).__module__
    if module.startswith("eventlog.compat.confluent_kafka"):
        from ..compat.confluent_kafka import KafkaError, KafkaException

        out = []
        for msg in consumer.consume(want, wait_ms / 1000.0):
            err = msg.error()
            if err is None:
                out.append(msg)
            elif err.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(err)
        return out
    if module.startswith("eventlog.compat.kafka"):
        batches = consumer.poll(timeout_ms=wait_ms, max_records=want)
        return [r for batch in batches.values() for r in batch]
    raise TypeError(f"wait_for() does not know how to poll a {type(consumer).__name__}")


def wait_for(consumer: Any, n: int, timeout_ms: float = 10_000, *,
             step_ms: float = wait_step_ms_default) -> list[Any]:
    """Poll ``consumer`` until it returned ``n`` records; returns them (in the
    consumer's own type: eventlog ConsumerRecords, confluent-kafka Messages without
    the partition-EOF events, kafka-python ConsumerRecords).

    On a log with a ManualClock it never waits on the real clock: it polls without
    waiting and advances the clock ``step_ms`` at a time (group joins, session
    timeouts and auto-commits progress as on a real clock) until ``timeout_ms`` of log
    time passed. On any other clock it polls with the remaining timeout.

    Raises EventLogTimeoutError, listing what did arrive, when fewer than ``n`` came
    in time; InvalidConfigError for a bad ``n``, ``timeout_ms`` or ``step_ms``;
    TypeError for a consumer that is not eventlog's; whatever the consumer's poll
    raises.
    """
    for name, value, low in (("n", n, 1), ("timeout_ms", timeout_ms, 0),
                             ("step_ms", step_ms, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low \
                or (name == "step_ms" and value == 0) or (name == "n" and value != int(value)):
            raise InvalidConfigError(f"wait_for(): {name} must be a number >= {low}"
                                     f"{' (not 0)' if name == 'step_ms' else ''}, got {value!r}")
    log = _log_of(consumer)
    clock = log.clock
    manual = isinstance(clock, ManualClock)
    deadline = clock.monotonic_ms() + timeout_ms
    got: list[Any] = []
    while True:
        remaining = deadline - clock.monotonic_ms()
        got.extend(_poll_once(consumer, 0 if manual else max(remaining, 0), int(n) - len(got)))
        if len(got) >= n:
            return got
        if remaining <= 0:
            break
        if manual:
            clock.advance(min(step_ms, remaining))
    shown = ", ".join(repr(r) for r in got[:5]) + (", ..." if len(got) > 5 else "")
    raise EventLogTimeoutError(
        f"wait_for(): {len(got)} of {int(n)} records within {timeout_ms} ms of log time"
        + (f": {shown}" if got else "")
        + "; check the topic, the subscription and that the producer flushed")
