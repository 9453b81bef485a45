"""confluent-kafka's Producer over an EventLog.

``produce()`` hands the record to eventlog's Producer with librdkafka's
``linger.ms`` (default 5) and ``batch.size``, so a loop of ``produce()`` calls
appends batches, as librdkafka does. Its delivery report waits in the producer's
queue until ``poll()`` or ``flush()`` serves it, in produce order. A record still
lingering is appended by ``flush()``, by a ``poll()`` with a timeout, by a
``poll(0)`` that follows another poll with no ``produce()`` between them (the
linger has run out by then as far as the caller can tell; a manual clock would
never get there), when its linger runs out on the log's clock, or when anything
in the process reads its partition (a consumer's poll, watermarks,
``offsets_for_times``). With ``linger.ms`` 0 each record is appended before
``produce()`` returns.
"""

from __future__ import annotations

import collections
import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ... import errors as el_errors
from ...partitioning import DefaultPartitioner, murmur2
from ...producer import Producer as _ElProducer
from ...producer import ProducerConfig
from ...producer.futures import BatchedFuture, DeliveryFuture
from ._common import Options, cluster_metadata, kafka_error_for, log_from, to_bytes, translated
from ._types import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    ClusterMetadata,
    ConfigError,
    KafkaError,
    KafkaException,
    Message,
    error,
)

__all__ = ["Producer"]

PARTITION_UA = -1
_TUNING = ("batch.num.messages", "retries", "message.send.max.retries", "message.timeout.ms",
           "delivery.timeout.ms",
           "queue.buffering.max.kbytes", "sticky.partitioning.linger.ms", "compression.level",
           "queue.buffering.backpressure.threshold", "request.timeout.ms",
           "transaction.timeout.ms", "message.timeout.ms", "partitioner.consistent.seed")
_DONE = 1  # the ``_state`` of a resolved DeliveryFuture or lingering batch (producer.futures)
_REFUSED_PRODUCER = {
    "transactional.id": "transactions are not implemented; produce without transactional.id",
    "key.serializer": "Producer takes bytes or str; use SerializingProducer for serializers",
    "value.serializer": "Producer takes bytes or str; use SerializingProducer for serializers",
}


def _fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


class LibrdkafkaPartitioner:
    """librdkafka's partitioners: ``consistent`` (CRC32), ``murmur2`` (Java's), ``fnv1a``
    (Sarama's), ``random``; the ``*_random`` forms spread keyless records (uniform sticky,
    as librdkafka's sticky.partitioning.linger.ms does) and hash the others."""

    NAMES = ("random", "consistent", "consistent_random", "murmur2", "murmur2_random",
             "fnv1a", "fnv1a_random")

    def __init__(self, name: str) -> None:
        if name not in self.NAMES:
            raise ConfigError(
                f'configuration property "partitioner" must be one of {", ".join(self.NAMES)}, '
                f"got {name!r}"
            )
        self.name = name
        self._hash = name.split("_")[0]
        self._spread_keyless = name == "random" or name.endswith("_random")
        self._sticky = DefaultPartitioner(ignore_keys=name == "random")

    def partition(self, topic: str, key: bytes | None, value: bytes | None,
                  num_partitions: int) -> int:
        if self._hash == "random" or (key is None and self._spread_keyless):
            return self._sticky.partition(topic, None, value, num_partitions)
        data = key or b""
        if self._hash == "consistent":
            return zlib.crc32(data) % num_partitions
        if self._hash == "murmur2":
            return (murmur2(data) & 0x7FFFFFFF) % num_partitions
        return abs(_fnv1a(data)) % num_partitions


def _due(future: DeliveryFuture) -> Any:
    """What stands for a callback-less report in the queue: None when it is due already,
    else the record's lingering batch (or future); its ``_state`` is ``_DONE`` when due."""
    if type(future) is BatchedFuture:
        return future._batch
    return None if future.done() else future


def _headers(headers: Any) -> tuple | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(
                f"headers must be a dict or a list of (str, bytes | str | None) tuples, got "
                f"{item!r}"
            )
        out.append((item[0], to_bytes(item[1], "a header value")))
    return tuple(out)


def _linger_ms(value: Any) -> int:
    """librdkafka's ``linger.ms`` (a number of ms, 0-900000, fractions allowed) as an int."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value <= 900_000):
        raise ConfigError(
            f'configuration property "linger.ms" must be a number of ms in [0, 900000], '
            f"got {value!r}"
        )
    return math.ceil(value)


class Producer:
    """``confluent_kafka.Producer(conf)`` on the EventLog that ``bootstrap.servers`` selects."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        opts = Options(conf, kwargs, "Producer")
        self._log, self._host = log_from(opts)
        acks = opts.take("acks", "request.required.acks", default="all")
        if isinstance(acks, str) and acks.lstrip("-").isdigit():
            acks = int(acks)
        idempotence = opts.take_bool("enable.idempotence", False)
        compression = opts.take("compression.type", "compression.codec", default="none")
        max_bytes = opts.take_int("message.max.bytes", 1_000_000, 1000)
        self._queue_max = opts.take_int("queue.buffering.max.messages", 100_000, 1)
        partitioner = LibrdkafkaPartitioner(
            opts.take("partitioner", default="consistent_random")
        )
        self._on_delivery = opts.take_callable("on_delivery") or opts.take_callable("dr_cb")
        opts.take_callable("dr_msg_cb")
        self._only_errors = opts.take_bool("delivery.report.only.error", False)
        client_id = opts.take("client.id", default="rdkafka")
        linger_ms = _linger_ms(opts.take("linger.ms", "queue.buffering.max.ms", default=5))
        batch_bytes = opts.take_int("batch.size", 1_000_000, 1)
        opts.take(*_TUNING)
        opts.finish(_REFUSED_PRODUCER)
        try:
            ProducerConfig(compression_type=compression)
        except el_errors.InvalidConfigError:
            compression = "none"  # a codec eventlog lacks: stored uncompressed (docs/compat.md)
        with translated():
            self._producer = _ElProducer(
                self._log, linger_ms=linger_ms, batch_size=batch_bytes, acks=acks,
                enable_idempotence=idempotence or None,
                compression_type=compression, max_request_size=max_bytes,
                partitioner=partitioner, client_id=str(client_id),
            )
        self._send = self._producer.send
        self._lingering = linger_ms > 0  # send() returns a BatchedFuture, else a done one
        # Delivery reports waiting for poll(), in produce order. With a callback, a
        # tuple (callback, Message fields...): the Message is built when served. Without
        # one, what tells when the report is due: None (already), or the record's
        # lingering batch (shared by its records, so a loop of produce() keeps no object
        # per record alive), or its future.
        self._reports: collections.deque[Any] = collections.deque()
        self._callback_reports = 0  # how many of the reports are tuples
        self._ts_types: dict[str, int] = {}
        self._closed = False
        # produce()'s fast path takes it while fewer reports wait: the queue's bound, 0
        # once closed (one test for both)
        self._fast_room = self._queue_max
        self._polled = False  # no produce() since the last poll(): see the module docstring

    def produce(self, topic: str, value: Any = None, key: Any = None,
                partition: int = PARTITION_UA, on_delivery: Callable | None = None,
                callback: Callable | None = None, timestamp: int = 0,
                headers: Any = None) -> None:
        """Append one message; its delivery report waits for ``poll()``/``flush()``.

        Raises BufferError when ``queue.buffering.max.messages`` reports are unserved,
        KafkaException(_UNKNOWN_PARTITION) for a partition the topic lacks,
        KafkaException(MSG_SIZE_TOO_LARGE) over ``message.max.bytes``, TypeError for
        a key or value that is not bytes or str.
        """
        # The hot path of every producer, kept flat: bytes (or None) key and value, and
        # nothing else given. The other cases take _produce's checks.
        if (partition == PARTITION_UA and on_delivery is None and callback is None
                and headers is None and not timestamp and type(topic) is str
                and (type(value) is bytes or value is None)
                and (type(key) is bytes or key is None)
                and len(self._reports) < self._fast_room):
            try:
                future = self._send(topic, value, key)
            except el_errors.EventLogError:
                self._produce(topic, value, key)  # refused: report or raise as below
                return
            cb = self._on_delivery
            if cb is None:  # the record's report is due when its batch is appended
                self._reports.append(future._batch if self._lingering else None)
            else:
                self._reports.append((cb, topic, partition, future, key, value, None, None))
                self._callback_reports += 1
            self._polled = False
            return
        self._produce(topic, value, key, partition, on_delivery, callback, timestamp, headers)

    def _produce(self, topic: str, value: Any = None, key: Any = None,
                 partition: int = PARTITION_UA, on_delivery: Callable | None = None,
                 callback: Callable | None = None, timestamp: int = 0,
                 headers: Any = None) -> None:
        """produce() with every check, for the cases its fast path leaves out."""
        if type(topic) is not str:
            raise TypeError(f"topic must be a str, got {topic!r}")
        # the checks of each argument are skipped in their common case (bytes, None, 0)
        value_b = value if type(value) is bytes or value is None else to_bytes(value, "value")
        key_b = key if type(key) is bytes or key is None else to_bytes(key, "key")
        cb = on_delivery if on_delivery is not None else callback
        if cb is None:
            cb = self._on_delivery
        elif not callable(cb):
            raise TypeError(f"on_delivery must be callable, got {cb!r}")
        hdrs = None if headers is None else _headers(headers)
        if timestamp and (type(timestamp) is not int or timestamp < 0):
            raise TypeError(f"timestamp must be an int >= 0 (ms; 0 = now), got {timestamp!r}")
        if len(self._reports) >= self._queue_max:
            raise BufferError(KafkaError(KafkaError._QUEUE_FULL).str())  # type: ignore[attr-defined]
        if self._closed:
            raise RuntimeError("Producer has been closed")
        try:
            future = self._producer.send(
                topic, value_b, key_b,
                partition=None if partition == PARTITION_UA else partition,
                timestamp_ms=timestamp or None, headers=hdrs,
            )
        except el_errors.UnknownTopicError as exc:
            # librdkafka reports a missing topic through the delivery report
            err = error(KafkaError.UNKNOWN_TOPIC_OR_PART, str(exc))  # type: ignore[attr-defined]
            self._reports.append((cb, topic, partition, None, key_b, value_b, hdrs, err))
            self._callback_reports += 1
            return
        except el_errors.EventLogError as exc:  # partition, size, internal topic, closed
            raise KafkaException(kafka_error_for(exc)) from exc
        # its metadata is read when the report is served, once its batch is appended;
        # without a callback what tells when it is due stands for the report
        if cb is None:
            self._reports.append(_due(future))
        else:
            self._reports.append((cb, topic, partition, future, key_b, value_b, hdrs, None))
            self._callback_reports += 1
        self._polled = False

    def _timestamp_type(self, topic: str) -> int:
        ts_type = self._ts_types.get(topic)
        if ts_type is None:
            try:
                append_time = self._log.topic(topic).config.log_append_time
            except el_errors.EventLogError:
                append_time = False
            ts_type = TIMESTAMP_LOG_APPEND_TIME if append_time else TIMESTAMP_CREATE_TIME
            self._ts_types[topic] = ts_type
        return ts_type

    def poll(self, timeout: float | None = None) -> int:
        """Serve the delivery reports (``on_delivery(err, msg)``) of appended records, in
        produce order; returns how many. A timeout other than 0, or a ``poll(0)`` with
        no ``produce()`` since the previous poll, first appends the lingering records
        (never a wait). A callback's exception propagates; the reports after it stay
        queued."""
        reports = self._reports
        if reports:
            front = reports[0]
            if type(front) is tuple:  # a report with a callback: its future, or None
                due = front[3] is None or front[3].done()
            else:
                due = front is None or front._state == _DONE
            if not due and (self._polled or timeout is None or timeout != 0):
                self._producer.flush()
        self._polled = True
        return self._serve()

    def _serve(self) -> int:
        reports = self._reports
        if not reports:
            return 0
        if not self._callback_reports:
            # Only reports without a callback: when the oldest and the newest are due,
            # very likely all are, which one C-level pass over the distinct entries (a
            # few batches) tells; then they are served at once, not one by one.
            front, back = reports[0], reports[-1]
            if (front is None or front._state == _DONE) and (
                    back is None or back._state == _DONE) and all(
                    e is None or e._state == _DONE for e in set(reports)):
                served = len(reports)
                reports.clear()
                return served
        served = 0
        while reports:
            entry = reports[0]
            if type(entry) is not tuple:  # a report without a callback
                if entry is not None and entry._state != _DONE:
                    break  # still lingering: later reports wait behind it, as librdkafka's
                reports.popleft()
                served += 1
                continue
            cb, topic, partition, future, key, value, hdrs, err = entry
            if future is not None and not future.done():
                break
            reports.popleft()
            self._callback_reports -= 1
            served += 1
            if cb is None:  # an unknown topic's report, produced without a callback
                continue
            offset, stamp = -1001, (0, 0)
            if future is not None:
                try:
                    md = future.result()
                except el_errors.EventLogError as exc:  # the storage retries ran out
                    err = kafka_error_for(exc)
                else:
                    partition, offset = md.partition, md.offset
                    stamp = (self._timestamp_type(topic), md.timestamp_ms)
            if self._only_errors and err is None:
                continue
            cb(err, Message(topic, partition, offset, key, value,
                            list(hdrs) if hdrs else None, err, stamp))
        return served

    def flush(self, timeout: float | None = None) -> int:
        """Append every lingering record and serve every delivery report; returns how
        many are still queued (0)."""
        self._producer.flush()
        self._polled = True
        self._serve()
        return len(self._reports)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        return cluster_metadata(self._log, self._host, topic)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True
              ) -> None:
        """Accepted; purges nothing: a record handed to ``produce()`` is the log's already
        and is appended when its linger runs out (docs/kafka-differences.md)."""

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted and ignored (no network)."""

    def close(self, timeout: float | None = None) -> int:
        """Flush, then release the producer (confluent-kafka 2.x has no close; kept for
        code that calls it). Returns the reports left (0)."""
        left = self.flush(timeout)
        self._closed = True
        self._fast_room = 0
        self._producer.close()
        return left

    def __len__(self) -> int:
        return len(self._reports)

    def __repr__(self) -> str:
        return f"<eventlog confluent_kafka.Producer queued={len(self._reports)}>"
