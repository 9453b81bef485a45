"""aiokafka's API over an in-process EventLog: ``import aiokafka`` inside
``eventlog.testing.use_eventlog(log)`` gives this module.

The records ``send()`` hands over in one iteration of the event loop are appended
together when the loop next runs (as aiokafka's sender task drains its accumulator),
or sooner: a full batch, ``flush()``, ``send_and_wait``, a read of the partition.
A consumer waiting for records parks its coroutine
on the event loop (one helper thread per log wakes it, never a thread per call).
``bootstrap_servers`` selects the log (see :mod:`eventlog.compat`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

from ... import errors as el_errors
from ...consumer import Consumer as _ElConsumer
from ...group import OffsetAndMetadata as _ElOffset
from ...producer import Producer as _ElProducer
from ...producer import ProducerConfig
from ...producer.futures import BatchedFuture, PendingBatch, SentFuture
from ...records import TimestampType
from ...records import TopicPartition as _TP
from ..kafka import _common as _kcommon
from ..kafka._consumer import _RESETS, _deserializer, _sizes, _strategy
from ..kafka._producer import _CallablePartitioner, _serializer
from . import errors, structs
from ._waiter import waiter_for
from .errors import ConsumerStoppedError, IllegalOperation
from .structs import (
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    RecordMetadata,
    TopicPartition,
)

__version__ = "0.14.0"

# aiokafka.producer.producer._missing: the default of configs left unset (``acks``)
_missing: Any = object()

__all__ = [
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "ConsumerStoppedError",
    "IllegalOperation",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "TopicPartition",
    "errors",
    "structs",
]

_PRODUCER_IGNORED = ("loop", "metadata_max_age_ms", "request_timeout_ms", "api_version",
                     "retry_backoff_ms", "security_protocol",
                     "ssl_context", "connections_max_idle_ms", "sasl_mechanism",
                     "sasl_plain_password", "sasl_plain_username",
                     "sasl_kerberos_service_name", "sasl_kerberos_domain_name",
                     "sasl_oauth_token_provider", "client_id")
_CONSUMER_IGNORED = ("loop", "fetch_max_wait_ms", "fetch_max_bytes", "fetch_min_bytes",
                     "max_partition_fetch_bytes", "request_timeout_ms", "retry_backoff_ms",
                     "check_crcs", "metadata_max_age_ms", "rebalance_timeout_ms",
                     "consumer_timeout_ms", "ssl_context", "security_protocol", "api_version",
                     "connections_max_idle_ms", "isolation_level", "sasl_mechanism",
                     "sasl_plain_password", "sasl_plain_username",
                     "sasl_kerberos_service_name", "sasl_kerberos_domain_name",
                     "sasl_oauth_token_provider", "client_rack")


def _refuse(configs: Mapping[str, Any], ignored: Iterable[str], what: str,
            refused: Mapping[str, str]) -> None:
    ignored = set(ignored)
    for name in sorted(configs):
        if name in refused:
            raise errors.ConfigError(f"{what} config {name!r} is not supported in process: "
                                     f"{refused[name]}")
        if name not in ignored:
            raise errors.ConfigError(f"Unrecognized configs: {name!r} ({what} in process; "
                                     "see docs/compat.md)")


_LOG_APPEND = TimestampType.LOG_APPEND_TIME
_new_metadata = functools.partial(tuple.__new__, RecordMetadata)

# With aiokafka's linger_ms 0 the records sent in one event-loop iteration linger in
# eventlog's Producer until the loop runs the producer's drain (aiokafka's sender task
# drains its accumulator when it runs: the same batching). The native linger is only a
# backstop that never runs out in practice (about 24 days).
_LOOP_LINGER_MS = 2**31 - 1
# Pending futures whose batches were appended (full, or read) are settled from inside
# send() once this many more are pending, so a loop that never yields keeps a bounded
# number of them alive.
_SETTLE_EVERY = 1024


def _records(tp: _TP, timestamp_type: TimestampType, offsets: Sequence[int],
             timestamps: Sequence[int], keys: Sequence[Any], values: Sequence[Any],
             headers: Sequence[tuple] | None) -> Iterable[ConsumerRecord]:
    """The fetcher's RecordBuilder: aiokafka's ConsumerRecords from a batch's columns, in
    one ``map`` (the dataclass's ``__init__`` is the only Python code per record).
    ``headers`` is a tuple of (str, bytes) pairs, as aiokafka's (``tuple(record.headers)``):
    immutable, so the records of a batch without headers share the empty one."""
    return map(ConsumerRecord, repeat(tp.topic), repeat(tp.partition), offsets, timestamps,
               repeat(1 if timestamp_type is _LOG_APPEND else 0), keys, values, repeat(None),
               _sizes(keys), _sizes(values),
               repeat(()) if headers is None else map(tuple, headers))


class ConsumerRebalanceListener:
    """aiokafka's listener: ``on_partitions_revoked(revoked)`` and
    ``on_partitions_assigned(assigned)`` get sets of TopicPartition and may be coroutines."""

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> Any:
        raise NotImplementedError

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> Any:
        raise NotImplementedError


batch_header_bytes = 61  # a v2 record batch's header (Kafka's RecordBatch format)


def _varint_size(n: int) -> int:
    z = (n << 1) ^ (n >> 63)  # zigzag, as Kafka's record fields are encoded
    size = 1
    while z >= 0x80:
        z >>= 7
        size += 1
    return size


def _field_size(data: bytes | None) -> int:
    return 1 if data is None else _varint_size(len(data)) + len(data)


class BatchRecordMetadata:
    """What ``BatchBuilder.append`` returns: ``offset`` (within the batch), ``size`` (the
    record's encoded bytes), ``timestamp`` (ms) and ``crc`` (None, as v2 records have none)."""

    __slots__ = ("offset", "size", "timestamp")

    def __init__(self, offset: int, size: int, timestamp: int) -> None:
        self.offset = offset
        self.size = size
        self.timestamp = timestamp

    @property
    def crc(self) -> None:
        return None

    def __repr__(self) -> str:
        return (f"DefaultRecordMetadata(offset={self.offset}, size={self.size}, "
                f"timestamp={self.timestamp})")


class BatchBuilder:
    """aiokafka's BatchBuilder (``AIOKafkaProducer.create_batch()``): records collected
    here are appended together by ``send_batch``, as one batch of one partition.

    ``append`` refuses (returns None, and closes the batch) a record that would take
    the batch past ``max_batch_size`` bytes counted as Kafka's v2 format does; the
    first record always fits.
    """

    def __init__(self, batch_size: int, key_serializer: Any, value_serializer: Any,
                 clock: Any) -> None:
        self._batch_size = batch_size
        self._key_ser = key_serializer
        self._value_ser = value_serializer
        self._clock = clock
        self._size = batch_header_bytes
        self._closed = False
        self._sent = False
        self._first_ts: int | None = None
        # (key, value, headers, timestamp_ms) in append order
        self._records: list[tuple[bytes | None, bytes | None, list, int]] = []

    def append(self, *, timestamp: int | float | None, key: Any, value: Any,
               headers: Any = ()) -> BatchRecordMetadata | None:
        """Add a record; its metadata, or None if the batch is full or closed.
        ``timestamp``: epoch milliseconds, or None for now (the log's clock)."""
        if self._closed:
            return None
        hdrs = list(headers or [])
        key_b = key if self._key_ser is None else self._key_ser(None, hdrs, key)
        value_b = value if self._value_ser is None else self._value_ser(None, hdrs, value)
        for what, data in (("key", key_b), ("value", value_b)):
            if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"{what} must be bytes (or use a {what}_serializer), got "
                                f"{type(data).__name__}")
        key_b = None if key_b is None else bytes(key_b)
        value_b = None if value_b is None else bytes(value_b)
        ts = self._clock.time_ms() if timestamp is None else int(timestamp)
        if self._first_ts is None:
            self._first_ts = ts
        offset = len(self._records)
        body = (1 + _varint_size(ts - self._first_ts) + _varint_size(offset)
                + _field_size(key_b) + _field_size(value_b) + _varint_size(len(hdrs)))
        for name, hvalue in hdrs:
            body += _field_size(name.encode()) + _field_size(hvalue)
        size = _varint_size(body) + body
        if self._records and self._size + size > self._batch_size:
            self.close()
            return None
        self._size += size
        self._records.append((key_b, value_b, hdrs, ts))
        return BatchRecordMetadata(offset, size, ts)

    def close(self) -> None:
        """No more records (``append`` returns None from now on)."""
        self._closed = True

    def closed(self) -> bool:
        return self._closed

    def size(self) -> int:
        """The batch's size in bytes (header included)."""
        return self._size

    def record_count(self) -> int:
        return len(self._records)


def _send_error(topic: str, exc: el_errors.EventLogError) -> Exception:
    """The aiokafka error for a record eventlog's Producer refused."""
    if isinstance(exc, el_errors.UnknownTopicError):
        return errors.KafkaTimeoutError(
            f"topic {topic!r} does not exist in the log (create it, or open the log with "
            "auto_create_topics=True)")
    if isinstance(exc, el_errors.RecordTooLargeError):
        return errors.MessageSizeTooLargeError(str(exc))  # type: ignore[attr-defined]
    return _kcommon.kafka_error_for(exc)


def _as_bytes(what: str, data: Any) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes (or use a {what}_serializer), got "
                    f"{type(data).__name__}")


class AIOKafkaProducer:
    """``aiokafka.AIOKafkaProducer(**configs)`` on the EventLog ``bootstrap_servers``
    selects. With aiokafka's default ``linger_ms`` 0 the records sent in one iteration
    of the event loop are appended together (one batch per partition, of up to
    ``max_batch_size`` bytes) when the loop next runs, as aiokafka's sender task drains
    them; with ``linger_ms`` > 0 records linger on the log's clock and are appended in
    batches of up to ``max_batch_size`` bytes."""

    def __init__(self, **configs: Any) -> None:
        configs = dict(configs)
        self._log, _ = _kcommon.take_log(configs)
        self._key_ser = _serializer(configs.pop("key_serializer", None), "key_serializer")
        self._value_ser = _serializer(configs.pop("value_serializer", None), "value_serializer")
        acks = configs.pop("acks", 1)
        if acks is _missing:
            acks = 1
        idempotence = bool(configs.pop("enable_idempotence", False))
        if idempotence:
            acks = "all"
        compression = configs.pop("compression_type", None) or "none"
        max_request = configs.pop("max_request_size", 1_048_576)
        linger_ms = configs.pop("linger_ms", 0)
        # aiokafka's linger_ms 0: batches of one loop iteration (see _LOOP_LINGER_MS)
        self._loop_batches = linger_ms == 0
        self._max_batch_size = configs.pop("max_batch_size", 16384)
        if isinstance(self._max_batch_size, bool) or not isinstance(self._max_batch_size, int) \
                or self._max_batch_size < 1:
            raise errors.ConfigError(
                f"max_batch_size must be an int >= 1, got {self._max_batch_size!r}")
        partitioner = configs.pop("partitioner", None)
        if configs.get("transactional_id") is None:  # aiokafka's defaults: no transactions
            configs.pop("transactional_id", None)
            configs.pop("transaction_timeout_ms", None)
        _refuse({k: v for k, v in configs.items()}, _PRODUCER_IGNORED, "AIOKafkaProducer",
                {"transactional_id": "transactions are not implemented",
                 "transaction_timeout_ms": "transactions are not implemented"})
        try:
            ProducerConfig(compression_type=compression)
        except el_errors.InvalidConfigError:
            compression = "none"
        try:
            self._producer = _ElProducer(
                self._log, linger_ms=_LOOP_LINGER_MS if self._loop_batches else linger_ms,
                batch_size=self._max_batch_size, acks=acks,
                enable_idempotence=idempotence,
                compression_type=compression, max_request_size=max_request,
                partitioner=None if partitioner is None else _CallablePartitioner(partitioner),
            )
        except el_errors.InvalidConfigError as exc:
            raise errors.ConfigError(str(exc)) from None
        self._closed = False
        # each topic's partitions and their TopicPartitions, for the RecordMetadata of
        # their records; the topic object tells a re-created one apart (eventlog's
        # Producer keeps its partitions' queues as long)
        self._tps: dict[str, tuple[Any, list[tuple[Any, TopicPartition]]]] = {}
        self._native_send = self._producer.send
        self._plain = self._key_ser is None and self._value_ser is None  # and not stopped
        # linger_ms 0: the records lingering until the drain, in send order (each one's
        # asyncio future, its eventlog batch and index in it: no eventlog future kept),
        # the batch of the last one, the loop the drain is scheduled on (None: none
        # is), and how many may wait before send() settles the appended ones
        self._futures: list[asyncio.Future] = []
        self._batches: list[PendingBatch] = []
        self._indexes: list[int] = []
        self._last_batch: PendingBatch | None = None
        self._drain_loop: asyncio.AbstractEventLoop | None = None
        self._settle_at = _SETTLE_EVERY

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Append what is pending and settle its futures, then close."""
        self._drain()
        self._closed = True
        self._plain = False  # send() takes _send's path, which raises ProducerClosed
        self._producer.close()

    async def flush(self) -> None:
        """Append every pending record; their futures are done when this returns."""
        self._drain()

    def _drain(self) -> None:
        """Append the lingering records (one batch per partition) and settle their
        futures, in send order: what the loop runs after an iteration's sends."""
        self._drain_loop = None
        self._producer.flush()
        if self._futures:
            pending = self._futures, self._batches, self._indexes
            self._futures, self._batches, self._indexes = [], [], []
            self._last_batch = None
            self._settle_at = _SETTLE_EVERY
            self._settle(*pending)

    def _settle_prefix(self) -> None:
        """From send(), when a record opened a new batch: settle the oldest pending
        futures whose batches were appended (a full batch, a read of the partition),
        up to the first still lingering."""
        batches = self._batches
        k = 0
        for k, b in enumerate(batches):  # noqa: B007 (k is the first one lingering)
            if not b.done:
                break
        else:
            k = len(batches)
        if k:
            settled = self._futures[:k], batches[:k], self._indexes[:k]
            del self._futures[:k], batches[:k], self._indexes[:k]
            self._settle(*settled)
        if len(batches) >= self._settle_at:  # partitions interleaved: settle by filter
            self._settle_appended()

    def _settle_appended(self) -> None:
        """Settle every pending future whose batch was appended; the others keep
        waiting, in order."""
        keep = [b.done is False for b in self._batches]
        settled = ([f for f, k in zip(self._futures, keep) if not k],
                   [b for b, k in zip(self._batches, keep) if not k],
                   [i for i, k in zip(self._indexes, keep) if not k])
        self._futures = [f for f, k in zip(self._futures, keep) if k]
        self._batches = [b for b, k in zip(self._batches, keep) if k]
        self._indexes = [i for i, k in zip(self._indexes, keep) if k]
        self._settle_at = len(self._batches) + _SETTLE_EVERY
        self._settle(*settled)

    def _batch_head(self, b: PendingBatch) -> tuple:
        """What the RecordMetadata of an appended batch's records share; () when they
        are not all appended at ``base_offset + index`` (failed, acks 0) or the topic is
        gone: each record's future is then settled from its own outcome."""
        if b.outcomes is not None or b.exception is not None or b.acks0:
            return ()
        try:
            part, tp = self._partition_route(b.topic, b.partition)
        except el_errors.EventLogError:
            return ()
        return (b.topic, b.partition, tp, b.base_offset, b.append_time,
                1 if part.config.log_append_time else 0, part.start_offset)

    def _settle(self, futures: list[asyncio.Future], batches: list[PendingBatch],
                indexes: list[int]) -> None:
        """Set each asyncio future from its record's appended batch."""
        batch: Any = None
        head: tuple = ()
        for fut, b, i in zip(futures, batches, indexes):
            if fut.done():  # cancelled by its owner
                continue
            if b is not batch:  # one look-up per batch
                batch = b
                head = self._batch_head(b)
            if head:
                topic, partition, tp, base, append_time, ts_type, start = head
                fut.set_result(_new_metadata((
                    topic, partition, tp, base + i,
                    append_time if append_time >= 0 else b.timestamps[i], ts_type, start)))
                continue
            exc = b.error(i)
            if exc is None:
                try:
                    meta = self._record_metadata(b.metadata(i))
                except el_errors.EventLogError as gone:  # the topic is gone since
                    exc = gone
            if exc is not None:
                fut.set_exception(_kcommon.kafka_error_for(exc))
            else:
                fut.set_result(meta)

    async def partitions_for(self, topic: str) -> set[int]:
        try:
            return set(self._producer.partitions_for(topic))
        except el_errors.UnknownTopicError as exc:
            raise errors.KafkaTimeoutError(f"topic {topic!r} does not exist") from exc

    async def send(self, topic: str, value: Any = None, key: Any = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future:
        """Send one record; returns a future of its RecordMetadata, done when its batch
        is appended: with ``linger_ms`` 0 (aiokafka's default) when the event loop next
        runs (the records sent before it yields are appended together, as aiokafka's
        sender drains them), else when the linger runs out on the log's clock; and at
        ``flush()``, ``send_and_wait``, ``stop()``, a full batch, or a read of the
        partition. A record refused (unknown topic, too large) raises here."""
        # The hot path, kept flat: bytes (or None) key and value, no headers, no
        # serializers, not stopped; the rest takes _send's checks.
        if (headers is None and self._plain and (type(value) is bytes or value is None)
                and (type(key) is bytes or key is None)):
            try:
                native = self._native_send(topic, value, key, partition=partition,
                                           timestamp_ms=timestamp_ms)
            except el_errors.EventLogError as exc:
                raise _send_error(topic, exc) from exc
        else:
            native = self._send(topic, value, key, partition, timestamp_ms, headers)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        if self._loop_batches and type(native) is BatchedFuture:
            # linger_ms 0: settled by the drain the loop runs next (scheduled once per
            # iteration), or by a later send() once its batch was appended
            if self._drain_loop is not loop:
                if self._drain_loop is not None:  # sent from another loop meanwhile
                    self._drain()
                self._drain_loop = loop
                loop.call_soon(self._drain)
            batch = native._batch
            self._futures.append(fut)
            self._batches.append(batch)
            self._indexes.append(native._index)
            if batch is not self._last_batch:  # a new batch: the one before may be appended
                self._last_batch = batch
                self._settle_prefix()
            return fut
        if type(native) is SentFuture:  # appended, its metadata's fields known
            fut.set_result(self._sent_metadata(native._fields))
            return fut
        if native.done():  # failed at once: settled now, no callback to make per record
            meta = self._metadata(native)
            if isinstance(meta, BaseException):
                fut.set_exception(meta)
            else:
                fut.set_result(meta)
            return fut

        def settle(_: Any = None) -> None:
            if fut.done():
                return
            meta = self._metadata(native)
            if isinstance(meta, BaseException):
                fut.set_exception(meta)
            else:
                fut.set_result(meta)

        def wake(_: Any) -> None:  # in whichever thread appended the batch
            try:
                loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the loop was closed meanwhile
                pass
        native.add_done_callback(wake)
        return fut

    async def send_and_wait(self, topic: str, value: Any = None, key: Any = None,
                            partition: int | None = None, timestamp_ms: int | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
        native = self._send(topic, value, key, partition, timestamp_ms, headers)
        if self._loop_batches:
            self._drain()  # this record and those sent before it, their futures settled
        native.exception()  # waiting appends a lingering batch at once
        meta = self._metadata(native)
        if isinstance(meta, BaseException):
            raise meta
        return meta

    def create_batch(self) -> BatchBuilder:
        """An empty BatchBuilder (with this producer's serializers and
        ``max_batch_size``), to fill and hand to ``send_batch``."""
        return BatchBuilder(self._max_batch_size, self._key_ser, self._value_ser,
                            self._log.clock)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int
                         ) -> asyncio.Future:
        """Append ``batch``'s records to ``topic``'s ``partition`` together (nothing if
        it raises); returns a done future of the RecordMetadata of its first record.
        The batch is closed; sending it again raises IllegalOperation."""
        if self._closed:
            raise errors.ProducerClosed()
        if not isinstance(batch, BatchBuilder):
            raise TypeError(f"send_batch() needs a batch from create_batch(), got "
                            f"{type(batch).__name__}")
        if batch._sent:
            raise IllegalOperation("this batch was sent already; create a new one")
        try:
            t = self._log.topic_for_produce(topic)
        except el_errors.UnknownTopicError as exc:
            raise errors.KafkaTimeoutError(
                f"topic {topic!r} does not exist in the log (create it, or open the log with "
                "auto_create_topics=True)") from exc
        if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
            raise AssertionError("Unrecognized partition")  # as aiokafka's assert
        if partition >= t.num_partitions:
            raise AssertionError("Unrecognized partition")
        batch.close()
        recs = batch._records
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        if not recs:
            raise ValueError("send_batch() of an empty batch: append records first")
        # one native batch per run of equal timestamps (usually: all of them)
        runs: list[tuple[int, list[tuple[Any, Any, list]]]] = []
        for key_b, value_b, hdrs, ts in recs:
            if not runs or runs[-1][0] != ts:
                runs.append((ts, []))
            runs[-1][1].append((key_b, value_b, hdrs))
        try:
            first = None
            for ts, rows in runs:
                meta = self._producer.send_batch(topic, rows, partition=partition,
                                                 timestamp_ms=ts)
                if first is None:
                    first = meta[0]
        except el_errors.RecordTooLargeError as exc:
            raise errors.MessageSizeTooLargeError(str(exc)) from exc  # type: ignore[attr-defined]
        except el_errors.EventLogError as exc:
            raise _kcommon.kafka_error_for(exc) from exc
        batch._sent = True
        assert first is not None
        part = t.partition(partition)
        ts_type = 1 if part.config.log_append_time else 0
        fut.set_result(RecordMetadata(topic, partition, TopicPartition(topic, partition),
                                      first.offset, first.timestamp_ms, ts_type,
                                      part.start_offset))
        return fut

    def _send(self, topic: str, value: Any, key: Any, partition: int | None,
              timestamp_ms: int | None, headers: Any) -> Any:
        """Hand the record to eventlog's Producer; its DeliveryFuture."""
        if self._closed:
            raise errors.ProducerClosed()
        if headers is not None and not isinstance(headers, (list, tuple)):
            raise TypeError("headers must be a list of (str, bytes) tuples")
        hdrs = list(headers) if headers else []
        key_b = key if self._key_ser is None else self._key_ser(topic, hdrs, key)
        value_b = value if self._value_ser is None else self._value_ser(topic, hdrs, value)
        # bytes (or None) pass as they are: the checks and copies are for the rest
        if type(key_b) is not bytes and key_b is not None:
            key_b = _as_bytes("key", key_b)
        if type(value_b) is not bytes and value_b is not None:
            value_b = _as_bytes("value", value_b)
        try:
            future = self._producer.send(topic, value_b, key_b, partition=partition,
                                         timestamp_ms=timestamp_ms, headers=hdrs or None)
        except el_errors.EventLogError as exc:
            raise _send_error(topic, exc) from exc
        return future

    def _sent_metadata(self, fields: tuple) -> RecordMetadata:
        """aiokafka's RecordMetadata of a record appended inside ``send()``, from the
        fields of its RecordMetadata (the hot path of ``linger_ms`` 0: the partition's
        TopicPartition is made once, the named tuple at C speed)."""
        topic, partition, offset, timestamp_ms, _, _ = fields
        part, tp = self._partition_route(topic, partition)
        return _new_metadata((topic, partition, tp, offset, timestamp_ms,
                              1 if part.config.log_append_time else 0, part.start_offset))

    def _partition_route(self, topic: str, partition: int) -> tuple[Any, TopicPartition]:
        """The partition a record was appended to, and its TopicPartition (made once)."""
        t = self._log.topic_map.get(topic)
        known = self._tps.get(topic)
        if known is None or known[0] is not t:  # new, or the topic was re-created
            known = self._route(topic)
        return known[1][partition]

    def _route(self, topic: str) -> tuple[Any, list[tuple[Any, TopicPartition]]]:
        t = self._log.topic(topic)
        found = (t, [(part, TopicPartition(topic, part.index))
                                  for part in t.partitions])
        self._tps[topic] = found
        return found

    def _metadata(self, future: Any) -> RecordMetadata | BaseException:
        """A done DeliveryFuture's outcome as aiokafka's RecordMetadata or error."""
        exc = future.exception()
        if exc is not None:
            return _kcommon.kafka_error_for(exc)
        return self._record_metadata(future.result())

    def _record_metadata(self, md: Any) -> RecordMetadata:
        """aiokafka's RecordMetadata of an appended record, from eventlog's."""
        t = self._log.topic_map.get(md.topic)  # the topic the record was appended to
        part = (t.partitions[md.partition] if t is not None else
                self._log.topic(md.topic).partition(md.partition))
        ts_type = 1 if part.config.log_append_time else 0
        return RecordMetadata(md.topic, md.partition, TopicPartition(md.topic, md.partition),
                              md.offset, md.timestamp_ms, ts_type, part.start_offset)

    async def __aenter__(self) -> AIOKafkaProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _Listener:
    """eventlog's listener; the user's callbacks may return coroutines, awaited after the
    rebalance step (in order) before the poll that ran it returns."""

    def __init__(self, user: Any, owner: AIOKafkaConsumer) -> None:
        self._user = user
        self._owner = owner
        self._revoked_before_join = False

    def _run(self, name: str, partitions: list[_TP]) -> None:
        res = getattr(self._user, name)({TopicPartition(*tp) for tp in partitions})
        if asyncio.iscoroutine(res):
            self._owner._pending_callbacks.append(res)

    def on_partitions_revoked(self, partitions: list[_TP]) -> None:
        self._revoked_before_join = True
        self._run("on_partitions_revoked", partitions)

    def on_partitions_assigned(self, partitions: list[_TP]) -> None:
        if self._owner._eager and not self._revoked_before_join:
            self._run("on_partitions_revoked", [])  # aiokafka revokes set() before a first join
        self._revoked_before_join = False
        self._run("on_partitions_assigned", partitions)

    def on_partitions_lost(self, partitions: list[_TP]) -> None:
        self.on_partitions_revoked(partitions)


class _CoordinatorView:
    """``consumer._coordinator``: the group member id and generation."""

    def __init__(self, consumer: _ElConsumer) -> None:
        self.member_id = consumer.member_id
        self.generation = consumer.generation
        self.group_id = consumer.group_id


class _SubscriptionView:
    """``consumer._subscription``: the subscribed topics and the assignment."""

    def __init__(self, consumer: _ElConsumer) -> None:
        self.topics = set(consumer.subscription())
        self.assigned_partitions = set(consumer.assignment())


class AIOKafkaConsumer:
    """``aiokafka.AIOKafkaConsumer(*topics, **configs)`` on the EventLog
    ``bootstrap_servers`` selects. ``async for`` ends with the consumer's ``stop()``."""

    def __init__(self, *topics: str, **configs: Any) -> None:
        configs = dict(configs)
        self._log, _ = _kcommon.take_log(configs)
        self._key_de = _deserializer(configs.pop("key_deserializer", None), "key_deserializer")
        self._value_de = _deserializer(configs.pop("value_deserializer", None),
                                       "value_deserializer")
        self._deserializing = self._key_de is not None or self._value_de is not None
        reset = configs.pop("auto_offset_reset", "latest")
        if reset not in _RESETS:
            raise errors.ConfigError(
                f"auto_offset_reset must be one of {', '.join(_RESETS)}, got {reset!r}")
        strategy = _strategy(configs.pop("partition_assignment_strategy", ("roundrobin",)))
        el_config: dict[str, Any] = {
            "auto_offset_reset": _RESETS[reset],
            "session_timeout_ms": configs.pop("session_timeout_ms", 10_000),
            "partition_assignment_strategy": strategy,
        }
        max_poll = configs.pop("max_poll_records", None)
        if max_poll is not None:
            el_config["max_poll_records"] = max_poll
        for name in ("group_id", "group_instance_id", "enable_auto_commit",
                     "auto_commit_interval_ms", "max_poll_interval_ms",
                     "heartbeat_interval_ms", "exclude_internal_topics", "client_id"):
            if name in configs and configs[name] is not None:
                el_config[name] = configs.pop(name)
            else:
                configs.pop(name, None)
        _refuse(configs, _CONSUMER_IGNORED, "AIOKafkaConsumer", {})
        try:
            self._c = _ElConsumer(self._log, **el_config)
        except el_errors.InvalidConfigError as exc:
            raise errors.ConfigError(str(exc)) from None
        self._group_id = el_config.get("group_id")
        self._eager = any(n != "cooperative-sticky" for n in strategy)
        self._heartbeat_s = self._c.config.heartbeat_interval_ms / 1000.0
        self._pending_callbacks: list[Any] = []
        self._stopped = False
        self._waiter = waiter_for(self._log)
        if topics:
            self.subscribe(topics=list(topics))

    # ------------------------------------------------------------------ lifecycle

    # aiokafka's internals that frameworks read (FastStream logs the member id and the
    # subscribed topics): the same facts, from eventlog's consumer
    @property
    def _coordinator(self) -> _CoordinatorView:
        return _CoordinatorView(self._c)

    @property
    def _subscription(self) -> _SubscriptionView:
        return _SubscriptionView(self._c)

    async def start(self) -> None:
        """Nothing to connect to; the group is joined at the first fetch."""

    async def stop(self) -> None:
        """Commit (with auto-commit), leave the group; pending ``get*`` calls raise
        ConsumerStoppedError."""
        if self._stopped:
            return
        self._stopped = True
        with _kcommon.translated():
            self._c.close()
        await self._run_callbacks()
        self._log.wake_waiters()

    async def __aenter__(self) -> AIOKafkaConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check(self) -> None:
        if self._stopped:
            raise ConsumerStoppedError()

    async def _run_callbacks(self) -> None:
        while self._pending_callbacks:
            await self._pending_callbacks.pop(0)

    # ------------------------------------------------------------------ fetching

    def _deserialized(self, r: ConsumerRecord) -> ConsumerRecord:
        """``r`` with the configured deserializers applied (in place, as aiokafka builds
        its records with the deserialized key and value)."""
        if self._key_de is not None:
            r.key = self._key_de(r.topic, r.headers, r.key)
        if self._value_de is not None:
            r.value = self._value_de(r.topic, r.headers, r.value)
        return r

    async def _poll(self, partitions: tuple[Any, ...], max_records: int | None
                    ) -> list[tuple[_TP, list[ConsumerRecord]]]:
        """One poll of the consumer: aiokafka's records by partition, in fetch order."""
        self._check()
        held: list[_TP] = []
        try:
            with _kcommon.translated():
                if partitions:
                    wanted = {_TP(*tp) for tp in partitions}
                    held = sorted(self._c.assignment() - wanted - self._c.paused())
                    if held:
                        self._c.pause(*held)
                runs = self._c.poll_partitions(0, max_records, build=_records)
        finally:
            if held and not self._c.closed:
                self._c.resume(*[tp for tp in held if tp in self._c.assignment()])
        if self._deserializing:
            runs = [(tp, [self._deserialized(r) for r in records]) for tp, records in runs]
        await self._run_callbacks()
        return runs

    async def _wait(self, version: int, timeout_s: float | None) -> None:
        fut = self._waiter.wait(version)
        step = self._heartbeat_s if timeout_s is None else min(timeout_s, self._heartbeat_s)
        try:
            await asyncio.wait_for(fut, step)
        except asyncio.TimeoutError:
            pass

    async def getone(self, *partitions: Any) -> ConsumerRecord:
        """The next record (of ``partitions``, if given), waiting on the loop for one."""
        while True:
            version = self._log.data_version
            runs = await self._poll(partitions, 1)
            if runs:
                return runs[0][1][0]
            await self._wait(version, None)

    async def getmany(self, *partitions: Any, timeout_ms: float = 0,
                      max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records by partition; waits up to ``timeout_ms`` (on the loop) for some."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000.0
        while True:
            version = self._log.data_version
            runs = await self._poll(partitions, max_records)
            remaining = deadline - loop.time()
            if runs or remaining <= 0:
                break
            await self._wait(version, remaining)
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp, records in runs:
            key = TopicPartition(tp.topic, tp.partition)
            bucket = out.get(key)
            if bucket is None:
                out[key] = records
            else:  # a partition read twice in one poll (waiting for fetch_min_bytes)
                bucket.extend(records)
        return out

    def __aiter__(self) -> AIOKafkaConsumer:
        return self

    async def __anext__(self) -> ConsumerRecord:
        try:
            return await self.getone()
        except ConsumerStoppedError:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------------ subscription

    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None,
                  listener: Any = None) -> None:
        self._check()
        topics = [topics] if isinstance(topics, str) else list(topics)
        if bool(topics) == bool(pattern):
            raise ValueError("You must choose topics or pattern, but not both")
        if listener is not None and not isinstance(listener, ConsumerRebalanceListener) \
                and not hasattr(listener, "on_partitions_assigned"):
            raise TypeError("listener should be an instance of ConsumerRebalanceListener")
        if self._group_id is None and listener is not None:
            raise ValueError("listener needs a group_id")
        wrapped = None if listener is None else _Listener(listener, self)
        with _kcommon.translated():
            if pattern:
                self._c.subscribe(pattern=pattern, listener=wrapped)
            else:
                self._c.subscribe(topics, listener=wrapped)

    def unsubscribe(self) -> None:
        self._check()
        with _kcommon.translated():
            self._c.unsubscribe()

    def subscription(self) -> frozenset[str]:
        self._check()
        with _kcommon.translated():
            return frozenset(self._c.subscription())

    def assign(self, partitions: Iterable[Any]) -> None:
        self._check()
        with _kcommon.translated():
            self._c.assign([_TP(*tp) for tp in partitions])

    def assignment(self) -> set[TopicPartition]:
        self._check()
        with _kcommon.translated():
            return {TopicPartition(*tp) for tp in self._c.assignment()}

    async def topics(self) -> set[str]:
        return set(self._log.topics())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        try:
            return set(range(self._log.topic(topic).num_partitions))
        except el_errors.UnknownTopicError:
            return None

    # ------------------------------------------------------------------ positions

    async def position(self, partition: Any) -> int:
        self._check()
        with _kcommon.translated():
            return self._c.position(_TP(*partition))

    def highwater(self, partition: Any) -> int:
        return self._log.topic(partition[0]).partition(partition[1]).end_offset

    def last_stable_offset(self, partition: Any) -> int:
        return self.highwater(partition)  # no transactions: every record is stable

    def seek(self, partition: Any, offset: int) -> None:
        self._check()
        with _kcommon.translated():
            self._c.seek(_TP(*partition), offset)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self._check()
        with _kcommon.translated():
            self._c.seek_to_beginning(*[_TP(*tp) for tp in partitions])

    async def seek_to_end(self, *partitions: Any) -> None:
        self._check()
        with _kcommon.translated():
            self._c.seek_to_end(*[_TP(*tp) for tp in partitions])

    async def seek_to_committed(self, *partitions: Any) -> dict[TopicPartition, int | None]:
        """Move to the committed offsets; returns them (None where nothing is committed)."""
        self._check()
        if self._group_id is None:
            raise IllegalOperation("Requires group_id")
        out: dict[TopicPartition, int | None] = {}
        with _kcommon.translated():
            tps = [_TP(*tp) for tp in partitions] or sorted(self._c.assignment())
            for tp in tps:
                found = self._c.committed(tp)
                out[TopicPartition(*tp)] = found  # type: ignore[assignment]
                if found is not None:
                    self._c.seek(tp, found)  # type: ignore[arg-type]
        return out

    def pause(self, *partitions: Any) -> None:
        with _kcommon.translated():
            self._c.pause(*[_TP(*tp) for tp in partitions])

    def resume(self, *partitions: Any) -> None:
        with _kcommon.translated():
            self._c.resume(*[_TP(*tp) for tp in partitions])

    def paused(self) -> set[TopicPartition]:
        with _kcommon.translated():
            return {TopicPartition(*tp) for tp in self._c.paused()}

    async def beginning_offsets(self, partitions: Iterable[Any]) -> dict[TopicPartition, int]:
        with _kcommon.translated():
            found = self._c.beginning_offsets([_TP(*tp) for tp in partitions])
        return {TopicPartition(*tp): o for tp, o in found.items()}

    async def end_offsets(self, partitions: Iterable[Any]) -> dict[TopicPartition, int]:
        with _kcommon.translated():
            found = self._c.end_offsets([_TP(*tp) for tp in partitions])
        return {TopicPartition(*tp): o for tp, o in found.items()}

    async def offsets_for_times(self, timestamps: Mapping[Any, int]
                                ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        with _kcommon.translated():
            found = self._c.offsets_for_times({_TP(*tp): ts for tp, ts in timestamps.items()})
        return {TopicPartition(*tp): None if v is None else OffsetAndTimestamp(v.offset,
                                                                               v.timestamp_ms)
                for tp, v in found.items()}

    # ------------------------------------------------------------------ commits

    async def commit(self, offsets: Mapping[Any, Any] | None = None) -> None:
        """Commit ``offsets`` ({tp: offset | (offset, metadata)}) or every position."""
        self._check()
        if self._group_id is None:
            raise IllegalOperation("Requires group_id")
        checked = None
        if offsets is not None:
            checked = {}
            for tp, om in offsets.items():
                checked[_TP(*tp)] = (_ElOffset(om[0], om[1] or "") if isinstance(om, tuple)
                                     else _ElOffset(om))
        with _kcommon.translated():
            self._c.commit(checked)

    async def committed(self, partition: Any) -> int | None:
        self._check()
        if self._group_id is None:
            raise IllegalOperation("Requires group_id")
        with _kcommon.translated():
            return self._c.committed(_TP(*partition))  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<eventlog aiokafka.AIOKafkaConsumer group_id={self._group_id!r}>"


