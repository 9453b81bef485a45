"""Producer: Kafka's producer API over the in-process log.

Theory of operation
-------------------
``send()`` serializes the key and value, picks the partition (explicit, else
the partitioner: murmur2 of the key bytes as Kafka's Java client, or uniform
sticky for keyless records) and then either

* ``linger_ms > 0`` (the default is 5, Kafka 4's): adds it to that partition's
  open batch, which is appended when it reaches ``batch_size`` bytes, when it
  is ``linger_ms`` old (a background flusher watches the log's clock), on
  ``flush()``/``close()``, when someone waits on one of its futures
  (``result()``/``exception()``), or when anything in the process reads the
  partition (``Partition.read``/``read_batches``/``wait_for``, a consumer's
  ``poll``): the partition knows which producers hold a batch for it. So a
  loop of ``send()`` writes full batches, and a reader in the same process
  never waits out the linger; or
* ``linger_ms == 0``: appends the record as a batch of one before returning, so
  the returned future is already done.

Every batch a partition receives from this producer carries the producer id,
epoch 0 and the partition's next sequence number (idempotence, on by default
as in Kafka 3+). A retry after a storage error re-sends the same sequence, so
the partition either appends it once or recognises the duplicate and returns
the original offsets: retries never duplicate or reorder. Sequences are
assigned and batches appended under one lock per partition, so records with
the same key keep their send order even with many threads sending.

Nothing accepted by ``send()`` is dropped silently: ``close()`` flushes, an
``EventLog.close()`` closes its producers first, and a producer that is
garbage-collected or still open at interpreter exit flushes what it holds, or
fails those futures with ClosedError and logs an error.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import compress
from operator import itemgetter
from typing import Any

from ..broker import EventLog
from ..broker.partition import (
    AppendResult,
    Partition,
    check_bytes_column,
    normalise_headers,
    sequence_modulus,
    split_columns,
    timestamp_ms_max,
    timestamp_problem,
)
from ..broker.topic import internal_topics
from ..clock import SystemClock
from ..config import client_config
from ..errors import (
    ClosedError,
    EventLogError,
    EventLogTimeoutError,
    InvalidConfigError,
    InvalidRecordError,
    RecordTooLargeError,
    StorageError,
    UnknownPartitionError,
)
from ..metrics.window import Window, WindowedMax, average, max_of, rate_per_s
from ..partitioning import (
    DefaultPartitioner,
    Partitioner,
    cached_key_hash,
    checked_partition,
    hash_and_cache_key,
    partition_bytes_for_keys,
    partitions_for_keys,
    resolve_partitioner,
)
from ..records import RecordMetadata
from ..serde import resolve_serializer
from ..storage.batch import COMPRESSION_CODES

__all__ = ["BatchMetadata", "DeliveryFuture", "Producer", "ProducerConfig"]

log = logging.getLogger("eventlog.producer")

record_overhead_bytes = 16  # msgpack framing + timestamp per record, an upper estimate
batch_overhead_bytes = 64  # batch header + payload framing
group_mask_partitions_max = 8  # send_batch: a mask per partition up to this many,
group_scan_partitions_max = 16  # then a sort up to this many, else a dict
_producer_ids = itertools.count(1)


@dataclass(frozen=True)
class ProducerConfig:
    """Producer configs: Kafka's names in snake_case, Kafka's defaults.

    ``acks``: 0, 1 or "all" (-1). With one in-process replica 1 and "all" both
    mean "appended"; with the log's fsync="always" that also means fsynced. With
    0 the metadata's offset is -1, as Kafka reports it.
    ``linger_ms`` / ``batch_size``: see the module docstring.
    ``enable_idempotence``: None means on unless ``acks`` is not "all".
    ``max_request_size``: the largest record (key + value + headers) accepted.
    ``retries`` / ``retry_backoff_ms`` / ``delivery_timeout_ms``: storage errors
    (disk full) are retried with the same sequence until one of these runs out.
    ``partitioner``: None (murmur2 + uniform sticky), "round_robin", an object
    with ``partition(topic, key, value, num_partitions)`` or such a callable.
    ``partitioner_ignore_keys``: spread keyed records like keyless ones.
    """

    acks: int | str = "all"
    linger_ms: int = 5  # Kafka 4's default (KIP-1030); see docs/configuration.md
    batch_size: int = 16384
    compression_type: str = "none"
    enable_idempotence: bool | None = None
    max_in_flight_requests_per_connection: int = 5
    max_request_size: int = 1_048_576
    retries: int = 2_147_483_647
    retry_backoff_ms: int = 100
    delivery_timeout_ms: int = 120_000
    key_serializer: Any = None
    value_serializer: Any = None
    partitioner: Any = None
    partitioner_ignore_keys: bool = False
    client_id: str = ""
    transactional_id: str | None = None
    transaction_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        spelled = self.acks.strip().lower() if isinstance(self.acks, str) else self.acks
        acks = {"all": -1, "-1": -1, "1": 1, "0": 0, -1: -1, 1: 1, 0: 0}.get(spelled)  # type: ignore[call-overload]
        if acks is None or isinstance(self.acks, bool):
            raise InvalidConfigError(f"acks must be 0, 1 or 'all', got {self.acks!r}")
        object.__setattr__(self, "acks", acks)
        for name in ("linger_ms", "retries", "retry_backoff_ms"):
            _require_int(name, getattr(self, name), 0)
        for name in ("batch_size", "max_request_size", "delivery_timeout_ms",
                     "max_in_flight_requests_per_connection"):
            _require_int(name, getattr(self, name), 1)
        if self.compression_type not in COMPRESSION_CODES:
            raise InvalidConfigError(
                f"unknown compression_type {self.compression_type!r}; supported: "
                f"{', '.join(COMPRESSION_CODES)}"
            )
        idempotent = self.enable_idempotence
        if idempotent is True and acks != -1:
            raise InvalidConfigError(
                "enable_idempotence=True requires acks='all' (Kafka's rule); "
                f"got acks={self.acks!r}"
            )
        if idempotent is None:
            idempotent = acks == -1
        if idempotent and self.max_in_flight_requests_per_connection > 5:
            raise InvalidConfigError(
                "enable_idempotence requires max_in_flight_requests_per_connection <= 5, got "
                f"{self.max_in_flight_requests_per_connection}"
            )
        object.__setattr__(self, "enable_idempotence", bool(idempotent))
        _require_int("transaction_timeout_ms", self.transaction_timeout_ms, 1)
        if self.transactional_id is not None:
            if type(self.transactional_id) is not str or not self.transactional_id:
                raise InvalidConfigError(
                    f"transactional_id must be a non-empty str, got {self.transactional_id!r}")
            if not idempotent:
                raise InvalidConfigError(
                    "transactional_id requires idempotence (Kafka's rule): drop "
                    "enable_idempotence=False and use acks='all'"
                )

    @classmethod
    def from_kwargs(cls, config: dict[str, Any]) -> ProducerConfig:
        """Build from keyword configs: snake_case or Kafka's dotted names, string values
        parsed as Kafka does (config.client_config); an unknown name raises
        InvalidConfigError suggesting the closest known one."""
        return cls(**client_config(config, cls, "producer", _KAFKA_PRODUCER_ALIASES))


_KAFKA_PRODUCER_ALIASES = {"partitioner.class": "partitioner"}


def _require_int(name: str, value: Any, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise InvalidConfigError(f"{name} must be an int >= {minimum}, got {value!r}")


# ---------------------------------------------------------------------- futures


_PENDING, _DONE = 0, 1


class DeliveryFuture:
    """The result of one ``send()``: resolves to RecordMetadata or fails with the error.

    The ``concurrent.futures.Future`` interface (``result``, ``exception``,
    ``done``, ``add_done_callback``, ``cancel``...), small enough to make one
    per record. Thread-safe.
    """

    # No __slots__: class-level defaults let a completed future be made with two
    # attribute writes (the linger_ms=0 path makes one per record).
    _state = _PENDING
    _value: RecordMetadata | None = None
    _exception: BaseException | None = None
    _callbacks: list[Callable[[DeliveryFuture], None]] | None = None
    _cond: threading.Condition | None = None

    @classmethod
    def completed(cls, value: RecordMetadata | None, exc: BaseException | None = None
                  ) -> DeliveryFuture:
        """A future that is already done (the ``linger_ms=0`` path)."""
        future = _new_object(cls)
        future._value = value
        if exc is not None:
            future._exception = exc
        future._state = _DONE
        return future

    def done(self) -> bool:
        return self._state == _DONE

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        """A send cannot be cancelled once accepted (Kafka's futures can't either)."""
        return False

    def _wait(self, timeout: float | None) -> None:
        _wait_done(self, timeout)

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Block until delivered; return its metadata or raise its error."""
        self._wait(timeout)
        if self._exception is not None:
            raise self._exception
        assert self._value is not None
        return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._exception

    def add_done_callback(self, fn: Callable[[DeliveryFuture], None]) -> None:
        """Call ``fn(future)`` when done (at once if it already is)."""
        with _future_lock:
            if self._state != _DONE:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        _call_quietly(fn, self)

    def _resolve(self, value: RecordMetadata | None, exc: BaseException | None) -> None:
        with _future_lock:
            self._value = value
            self._exception = exc
            self._state = _DONE
            callbacks, self._callbacks = self._callbacks, None
            if self._cond is not None:
                self._cond.notify_all()
        if callbacks:
            for fn in callbacks:
                _call_quietly(fn, self)

    def __repr__(self) -> str:
        if self._state == _PENDING:
            return "DeliveryFuture(pending)"
        if self._exception is not None:
            return f"DeliveryFuture(failed: {self._exception!r})"
        return f"DeliveryFuture({self._value})"


_new_object = object.__new__
_time_ns = time.time_ns


def _wait_done(owner: Any, timeout: float | None) -> None:
    """Block until ``owner._state`` is done (a future, or a lingering batch's outcome).

    The condition is made lazily, under the lock shared by all futures: most
    futures are never waited on.
    """
    if owner._state == _DONE:
        return
    with _future_lock:
        if owner._cond is None:
            owner._cond = threading.Condition(_future_lock)
        if not owner._cond.wait_for(lambda: owner._state == _DONE, timeout):
            raise EventLogTimeoutError(
                f"the record was not delivered within {timeout} s; call flush() or wait longer"
            )


class _PendingBatch:
    """The outcome of one lingering batch, shared by the futures of its records.

    Resolving a batch is O(1) (plus one call per ``on_delivery`` callback):
    each future computes its RecordMetadata from the batch when asked.
    """

    __slots__ = (
        "_cond", "_state", "acks0", "append_time", "base_offset", "done_callbacks", "exception",
        "keys", "outcomes", "partition", "queue", "timestamps", "topic", "values",
    )

    def __init__(self, topic: str, partition: int, acks0: bool) -> None:
        self.topic = topic
        self.partition = partition
        self.acks0 = acks0
        self._state = _PENDING
        self.exception: BaseException | None = None
        self.outcomes: list[tuple[RecordMetadata | None, BaseException | None]] | None = None
        self._cond: threading.Condition | None = None
        self.done_callbacks: list[tuple[DeliveryFuture, Callable[..., None]]] | None = None
        self.base_offset = -1
        self.append_time = -1
        self.keys: list = []
        self.values: list = []
        self.timestamps: list[int] = []
        self.queue: _PartitionQueue | None = None  # the queue it lingers in

    def error(self, i: int) -> BaseException | None:
        if self.outcomes is not None:
            return self.outcomes[i][1]
        return self.exception

    def metadata(self, i: int) -> RecordMetadata:
        if self.outcomes is not None:
            md, exc = self.outcomes[i]
            if exc is not None:
                raise exc
            assert md is not None
            return md
        if self.exception is not None:
            raise self.exception
        key, value = self.keys[i], self.values[i]
        return _new_metadata((
            self.topic, self.partition, -1 if self.acks0 else self.base_offset + i,
            self.append_time if self.append_time >= 0 else self.timestamps[i],
            -1 if key is None else len(key), -1 if value is None else len(value),
        ))

    def finish(self, callbacks: list | None) -> None:
        """Mark done, wake waiters, then run on_delivery and done callbacks."""
        with _future_lock:
            self._state = _DONE
            done_callbacks, self.done_callbacks = self.done_callbacks, None
            if self._cond is not None:
                self._cond.notify_all()
        if callbacks:
            for i, callback in enumerate(callbacks):
                if callback is not None:
                    exc = self.error(i)
                    _call_quietly(callback, exc, None if exc is not None else self.metadata(i))
        if done_callbacks:
            for future, fn in done_callbacks:
                _call_quietly(fn, future)


class _BatchedFuture(DeliveryFuture):
    """A future whose outcome is that of its record's lingering batch."""

    _batch: _PendingBatch
    _index: int

    def done(self) -> bool:
        return self._batch._state == _DONE

    def _wait(self, timeout: float | None) -> None:
        batch = self._batch
        if batch._state != _DONE and batch.queue is not None:
            # Whoever waits for a record needs it appended: do it now rather than
            # wait out linger_ms (and a manual clock would never get there).
            batch.queue.flush_lingering()
        _wait_done(batch, timeout)

    def result(self, timeout: float | None = None) -> RecordMetadata:
        self._wait(timeout)
        return self._batch.metadata(self._index)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._batch.error(self._index)

    def add_done_callback(self, fn: Callable[[DeliveryFuture], None]) -> None:
        batch = self._batch
        with _future_lock:
            if batch._state != _DONE:
                if batch.done_callbacks is None:
                    batch.done_callbacks = []
                batch.done_callbacks.append((self, fn))
                return
        _call_quietly(fn, self)

    def __repr__(self) -> str:
        if self._batch._state == _PENDING:
            return "DeliveryFuture(pending)"
        exc = self._batch.error(self._index)
        if exc is not None:
            return f"DeliveryFuture(failed: {exc!r})"
        return f"DeliveryFuture({self._batch.metadata(self._index)})"


class _SentFuture(DeliveryFuture):
    """The future of a record appended before ``send()`` returned (``linger_ms=0``):
    done from the start. It keeps RecordMetadata's fields as a plain tuple and
    builds the named tuple when asked, which most callers never do."""

    _state = _DONE
    _fields: tuple

    @property  # type: ignore[override]
    def _value(self) -> RecordMetadata:
        return _new_metadata(self._fields)


_future_lock = threading.Lock()  # guards the rare waits and callback lists of all futures


def _call_quietly(fn: Callable[..., Any], *args: Any) -> None:
    """Run a user callback; an exception in it is logged, as Kafka's producer does."""
    try:
        fn(*args)
    except Exception:
        log.exception("a delivery callback raised; the producer carries on")


# ---------------------------------------------------------------------- batch results


class BatchMetadata(Sequence[RecordMetadata]):
    """What ``send_batch`` returns: the RecordMetadata of each record, in input order.

    Built lazily from one (partition, base offset, record indices) group per
    partition, so a bulk load does not pay for a metadata object per record
    unless it asks for them.
    """

    __slots__ = ("_groups", "_items", "_keys", "_n", "_timestamps", "_topic", "_values")

    def __init__(
        self,
        topic: str,
        n: int,
        groups: list[tuple[int, int, Sequence[int]]],
        timestamps: Sequence[int],
        keys: Sequence[bytes | None],
        values: Sequence[bytes | None],
    ) -> None:
        self._topic = topic
        self._n = n
        self._groups = groups
        self._timestamps = timestamps
        self._keys = keys  # the serialized keys and values: sizes are computed on demand
        self._values = values
        self._items: list[RecordMetadata] | None = None

    def __len__(self) -> int:
        return self._n

    def _build(self) -> list[RecordMetadata]:
        items: list[Any] = [None] * self._n
        keys, values = self._keys, self._values
        for partition, base, indices in self._groups:
            for rank, i in enumerate(indices):
                key, value = keys[i], values[i]
                items[i] = RecordMetadata(
                    self._topic, partition, base + rank if base >= 0 else -1,
                    self._timestamps[i], -1 if key is None else len(key),
                    -1 if value is None else len(value),
                )
        return items

    def __getitem__(self, i: Any) -> Any:
        if self._items is None:
            self._items = self._build()
        return self._items[i]

    @property
    def partitions(self) -> dict[int, tuple[int, int]]:
        """{partition: (first offset, record count)} for each partition written."""
        return {p: (base, len(indices)) for p, base, indices in self._groups}


# ---------------------------------------------------------------------- accumulator


def _nothing() -> None:
    """A queue's flush_lingering before its producer sets it."""


class _PartitionQueue:
    """Per-partition producer state: the next sequence number and the lingering batch,
    kept as columns so draining it hands them to the partition without a copy."""

    __slots__ = (
        "acks0", "batch_bytes_max", "bytes", "callbacks", "deadline_ms", "flush_lingering",
        "headers", "keys", "limit", "lock", "next_sequence", "partition", "pending",
        "record_bytes_max", "sent", "stats", "timestamps", "values",
    )

    def __init__(self, partition: Partition, config: ProducerConfig) -> None:
        self.partition = partition
        self.lock = threading.Lock()
        self.next_sequence = 0 if config.enable_idempotence else -1
        self.deadline_ms = 0.0
        message_bytes_max = min(config.max_request_size, partition.config.max_message_bytes)
        self.record_bytes_max = message_bytes_max - batch_overhead_bytes
        self.batch_bytes_max = min(config.batch_size, self.record_bytes_max)
        self.acks0 = config.acks == 0
        # Metrics, updated under ``lock`` and summed by Producer.metrics(): ``sent`` counts
        # records appended one by one (send() with linger_ms=0: its only cost there),
        # ``stats`` the batches appended from the accumulator and by send_batch.
        self.sent = 0
        self.stats = _QueueStats()
        # Append the lingering batch now (set by _State.queue): what a read of the
        # partition or a wait on a future calls.
        self.flush_lingering: Callable[[], None] = _nothing
        self._reset()

    def _reset(self) -> None:
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.headers: list[tuple] | None = None
        self.timestamps: list[int] = []
        self.pending = _PendingBatch(self.partition.topic, self.partition.index, self.acks0)
        self.pending.keys, self.pending.values = self.keys, self.values
        self.pending.timestamps = self.timestamps
        self.pending.queue = self
        self.callbacks: list[Callable[[Any, Any], None] | None] | None = None
        self.bytes = 0
        # How full send()'s inlined path may fill the batch: batch_bytes_max while the
        # open batch holds only plain records; -1 (never) when no batch is open, a
        # record has headers or a callback, or the producer is closed.
        self.limit = -1

    def take(self) -> tuple[list, list, list | None, list, _PendingBatch, list | None]:
        """Remove and return the lingering batch's columns and its shared outcome."""
        taken = (self.keys, self.values, self.headers, self.timestamps, self.pending,
                 self.callbacks)
        self.pending.queue = None
        self.partition.lingering.pop(self, None)
        self._reset()
        return taken


class _QueueStats:
    """What one partition's queue appended, as cumulative totals (metrics/window.py
    windows them when read). Updated per batch, under the queue's lock."""

    __slots__ = (
        "batch_bytes_max", "batch_records", "batches", "bytes", "errors", "latency_max",
        "latency_ms", "queue_ms", "queue_time_max", "queued_batches", "ratio_sum", "retries",
    )
    totals_fields = ("errors", "retries", "batches", "batch_records", "bytes", "ratio_sum",
                     "latency_ms", "queued_batches", "queue_ms")

    def __init__(self) -> None:
        self.errors = 0  # records whose delivery failed
        self.retries = 0  # records whose append was retried (once per retry)
        self.batches = 0
        self.batch_records = 0
        self.bytes = 0  # bytes of the appended batches, as stored
        self.ratio_sum = 0.0  # sum over batches of stored / uncompressed bytes
        self.latency_ms = 0.0  # sum of append times, retries included
        self.queued_batches = 0  # batches that lingered in the accumulator
        self.queue_ms = 0.0  # sum of their lingering times
        self.latency_max = WindowedMax()
        self.batch_bytes_max = WindowedMax()
        self.queue_time_max = WindowedMax()

    def batch_appended(self, count: int, result: AppendResult, started_ms: float,
                       now_ms: float) -> None:
        if result.duplicate:  # a retry the partition recognised: counted the first time
            return
        self.batches += 1
        self.batch_records += count
        self.bytes += result.size_bytes
        self.ratio_sum += result.size_bytes / result.uncompressed_bytes
        latency = now_ms - started_ms
        self.latency_ms += latency
        self.latency_max.record(latency, now_ms)
        self.batch_bytes_max.record(result.size_bytes, now_ms)

    def queued(self, lingered_ms: float, now_ms: float) -> None:
        lingered_ms = max(0.0, lingered_ms)  # a flush before the deadline was set
        self.queued_batches += 1
        self.queue_ms += lingered_ms
        self.queue_time_max.record(lingered_ms, now_ms)

    def totals(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in self.totals_fields)


class _State:
    """Everything the producer owns, kept apart from the Producer object so a finalizer
    and the flusher thread can deliver its records after the Producer is collected."""

    def __init__(self, log_: EventLog, config: ProducerConfig) -> None:
        self.log = log_
        self.config = config
        self.producer_id = next(_producer_ids) if config.enable_idempotence else -1
        self.producer_epoch = 0 if self.producer_id >= 0 else -1
        self.attributes = COMPRESSION_CODES[config.compression_type]
        self.queues: dict[Partition, _PartitionQueue] = {}
        self.queues_lock = threading.Lock()
        self.routes: dict[str, tuple[_PartitionQueue, ...]] = {}  # topic -> its queues
        self.wakeup = threading.Condition()
        self.flusher_wake_ms = 0.0  # when the waiting flusher wakes (inf: idle; 0: busy)
        self.closed = False
        self.flusher: threading.Thread | None = None
        self.metrics_lock = threading.Lock()
        self.window = Window(log_.clock.monotonic_ms(), len(_QueueStats.totals_fields) + 1)

    def queue(self, partition: Partition) -> _PartitionQueue:
        """The state of ``partition`` (keyed by the object: a re-created topic starts anew)."""
        q = self.queues.get(partition)
        if q is None:
            with self.queues_lock:
                q = self.queues.get(partition)
                if q is None:
                    q = _PartitionQueue(partition, self.config)
                    q.flush_lingering = partial(self.flush_queue, q)
                    self.queues[partition] = q
        return q

    def flush_queue(self, q: _PartitionQueue) -> None:
        """Append q's lingering batch now, if it has one (takes ``q.lock``)."""
        if q.keys:
            with q.lock:
                self.drain(q)

    # -- appending, with retries of storage errors -----------------------------

    def append_one(
        self, q: _PartitionQueue, key: bytes | None, value: bytes | None,
        headers: tuple | None, timestamp_ms: int, attempt: int = 0,
    ) -> tuple[int, int]:
        """Append one record with the next sequence; returns (offset, timestamp_ms) as
        ``Partition.append_record`` does. Caller holds ``q.lock``.

        ``attempt``: how many tries were made already (retries count from there).
        """
        pid = self.producer_id
        while True:
            try:
                result = q.partition.append_record(
                    key, value, headers, timestamp_ms, self.attributes,
                    pid, self.producer_epoch, q.next_sequence,  # -1 without idempotence
                )
            except StorageError:
                attempt = self.retry_or_raise(q, attempt)
                continue
            if pid >= 0:
                q.next_sequence = (q.next_sequence + 1) % sequence_modulus
            return result

    def append_columns(self, q: _PartitionQueue, keys: list, values: list,
                       headers: list | None, timestamps: list[int]) -> AppendResult:
        """Append validated columns as one batch with the next sequence, and count it in
        the queue's stats (one clock read before and after: per batch, not per record).
        Caller holds q.lock."""
        clock = self.log.clock
        started_ms = clock.monotonic_ms()
        result = self._append_columns(q, keys, values, headers, timestamps)
        q.stats.batch_appended(len(keys), result, started_ms, clock.monotonic_ms())
        return result

    def _append_columns(self, q: _PartitionQueue, keys: list, values: list,
                        headers: list | None, timestamps: list[int]) -> AppendResult:
        pid = self.producer_id
        attempt = 0
        while True:
            try:
                result = q.partition.append_columns(
                    keys, values, headers, timestamps, attributes=self.attributes,
                    producer_id=pid, producer_epoch=self.producer_epoch,
                    base_sequence=q.next_sequence,  # -1 without idempotence
                )
            except StorageError:
                attempt = self.retry_or_raise(q, attempt, len(keys))
                continue
            if pid >= 0:
                q.next_sequence = (q.next_sequence + len(keys)) % sequence_modulus
            return result

    def retry_or_raise(self, q: _PartitionQueue, attempt: int, count: int = 1) -> int:
        """Back off before retrying the same sequence (of ``count`` records), or re-raise
        when retries run out."""
        cfg = self.config
        attempt += 1
        if attempt > cfg.retries or attempt * cfg.retry_backoff_ms >= cfg.delivery_timeout_ms:
            raise
        q.stats.retries += count
        log.warning("append to %s-%d failed; retry %d with the same sequence",
                    q.partition.topic, q.partition.index, attempt, exc_info=True)
        time.sleep(cfg.retry_backoff_ms / 1000.0)
        return attempt

    def drain(self, q: _PartitionQueue) -> None:
        """Append q's lingering batch now (caller holds ``q.lock``) and resolve its futures."""
        if not q.keys:
            return
        now_ms = self.log.clock.monotonic_ms()
        q.stats.queued(now_ms - (q.deadline_ms - self.config.linger_ms), now_ms)
        keys, values, headers, timestamps, pending, callbacks = q.take()
        try:
            result = self.append_columns(q, keys, values, headers, timestamps)
        except InvalidRecordError:
            # One bad record must fail only its own future: append them one by one.
            pending.outcomes = outcomes = [
                self._deliver_one(q, keys[i], values[i], headers[i] if headers else None,
                                  timestamps[i])
                for i in range(len(keys))
            ]
            failed = sum(1 for _metadata, exc in outcomes if exc is not None)
            q.stats.errors += failed
            q.sent += len(keys) - failed
        except EventLogError as exc:
            pending.exception = exc
            q.stats.errors += len(keys)
        except Exception as exc:  # never let a batch vanish with its futures unresolved
            pending.exception = _unexpected(q, len(keys), exc)
            q.stats.errors += len(keys)
        else:
            pending.base_offset = result.base_offset
            pending.append_time = result.log_append_time_ms
        pending.finish(callbacks)

    def _deliver_one(self, q: _PartitionQueue, key: bytes | None, value: bytes | None,
                     headers: tuple | None, timestamp_ms: int
                     ) -> tuple[RecordMetadata | None, BaseException | None]:
        try:
            offset, timestamp_ms = self.append_one(q, key, value, headers, timestamp_ms)
        except EventLogError as exc:
            return None, exc
        except Exception as exc:
            return None, _unexpected(q, 1, exc)
        return _new_metadata((
            q.partition.topic, q.partition.index, -1 if q.acks0 else offset, timestamp_ms,
            -1 if key is None else len(key), -1 if value is None else len(value),
        )), None

    # -- lingering ---------------------------------------------------------------

    def start_flusher(self) -> None:
        with self.wakeup:
            if self.flusher is None and not self.closed:
                self.flusher = threading.Thread(target=self._flush_loop,
                                                name="eventlog-producer", daemon=True)
                self.flusher.start()

    def _flush_loop(self) -> None:
        clock = self.log.clock
        real_clock = isinstance(clock, SystemClock)
        while True:
            with self.wakeup:
                if self.closed:
                    return
                earliest = min((q.deadline_ms for q in list(self.queues.values()) if q.keys),
                               default=None)
                now = clock.monotonic_ms()
                if earliest is None:
                    self.flusher_wake_ms = math.inf
                    self.wakeup.wait()
                    self.flusher_wake_ms = 0.0
                    continue
                if earliest > now:
                    # A manual clock moves without notice: look again every millisecond.
                    wait_ms = earliest - now if real_clock else min(earliest - now, 1.0)
                    self.flusher_wake_ms = earliest
                    self.wakeup.wait(wait_ms / 1000.0)
                    self.flusher_wake_ms = 0.0
                    continue
            try:
                self.drain_expired(clock.monotonic_ms())
            except Exception:  # drain fails the batch's futures; the thread must live on
                log.exception("the producer's flusher thread failed; it carries on")

    def drain_expired(self, now_ms: float) -> None:
        for q in list(self.queues.values()):
            if q.keys and q.deadline_ms <= now_ms:
                with q.lock:
                    if q.keys and q.deadline_ms <= now_ms:
                        self.drain(q)

    def flush_all(self) -> None:
        for q in list(self.queues.values()):
            if q.keys:
                with q.lock:
                    self.drain(q)

    def pending_count(self) -> int:
        return sum(len(q.keys) for q in list(self.queues.values()))

    def shutdown(self) -> None:
        """Deliver what is held (or fail it loudly if the log is closed), stop the flusher."""
        with self.queues_lock:
            self.routes.clear()  # every send now takes the path that checks ``closed``
        with self.wakeup:
            self.closed = True
            self.wakeup.notify_all()
        if self.pending_count():
            if self.log.closed:
                self.fail_all(ClosedError("the EventLog was closed before these records were "
                                          "delivered; close the producer before the log"))
            else:
                self.flush_all()
        for q in list(self.queues.values()):
            with q.lock:  # a send that found its route before close() may have added one
                self.drain(q)  # (and leaves q.limit at -1: later ones go to _accumulate)
        if self.flusher is not None and self.flusher is not threading.current_thread():
            self.flusher.join()

    def fail_all(self, exc: EventLogError) -> None:
        failed = 0
        for q in list(self.queues.values()):
            with q.lock:
                keys, _values, _headers, _ts, pending, callbacks = q.take()
            if keys:
                pending.exception = exc
                pending.finish(callbacks)
                failed += len(keys)
                with q.lock:
                    q.stats.errors += len(keys)
        if failed:
            log.error("%d record(s) were not delivered: %s", failed, exc)


_new_metadata = partial(tuple.__new__, RecordMetadata)


def _producer_metrics(state: _State) -> dict[str, float]:
    queues = list(state.queues.values())
    stats = [q.stats for q in queues]
    columns = [sum(column) for column in zip(*(s.totals() for s in stats))] or [0] * len(
        _QueueStats.totals_fields)
    totals = dict(zip(_QueueStats.totals_fields, columns))
    sent = sum(q.sent for q in queues) + totals["batch_records"]
    now_ms = state.log.clock.monotonic_ms()
    with state.metrics_lock:
        elapsed_ms, deltas = state.window.deltas(now_ms, (sent, *columns))
    d = dict(zip(("sent", *_QueueStats.totals_fields), deltas))
    return {
        "record-send-total": sent,
        "record-send-rate": rate_per_s(d["sent"], elapsed_ms),
        "record-error-total": totals["errors"],
        "record-error-rate": rate_per_s(d["errors"], elapsed_ms),
        "record-retry-total": totals["retries"],
        "record-retry-rate": rate_per_s(d["retries"], elapsed_ms),
        "request-total": totals["batches"],
        "request-rate": rate_per_s(d["batches"], elapsed_ms),
        "outgoing-byte-total": totals["bytes"],
        "outgoing-byte-rate": rate_per_s(d["bytes"], elapsed_ms),
        "batch-size-avg": average(d["bytes"], d["batches"]),
        "batch-size-max": max_of([s.batch_bytes_max.value(now_ms) for s in stats]),
        "records-per-request-avg": average(d["batch_records"], d["batches"]),
        "compression-rate-avg": average(d["ratio_sum"], d["batches"]),
        "request-latency-avg": average(d["latency_ms"], d["batches"]),
        "request-latency-max": max_of([s.latency_max.value(now_ms) for s in stats]),
        "record-queue-time-avg": average(d["queue_ms"], d["queued_batches"]),
        "record-queue-time-max": max_of([s.queue_time_max.value(now_ms) for s in stats]),
        # The accumulator holds at most one open batch per partition: what they can
        # still take before they are appended (Kafka's is what buffer.memory has left).
        "buffer-available-bytes": sum(max(0, q.batch_bytes_max - q.bytes) for q in queues),
        "pending_records": sum(len(q.keys) for q in queues),
        "producer_id": state.producer_id,
    }


def _unexpected(q: _PartitionQueue, count: int, exc: Exception) -> EventLogError:
    """The error for ``count`` records whose append raised something that is not an
    eventlog error (a bug, or a failure nothing translated): logged with its
    traceback, and returned wrapped for the records' futures (``__cause__``)."""
    where = f"{q.partition.topic}-{q.partition.index}"
    log.error("appending %d record(s) to %s failed", count, where, exc_info=exc)
    wrapped: EventLogError
    if isinstance(exc, OSError):
        wrapped = StorageError(f"appending {count} record(s) to {where} failed: {exc}")
    else:
        wrapped = EventLogError(
            f"appending {count} record(s) to {where} failed unexpectedly: {exc!r}; the "
            "records were not appended (this is a bug in eventlog: please report it)"
        )
    wrapped.__cause__ = exc
    return wrapped


def _explicit_partition(topic: str, num_partitions: int, partition: object) -> int:
    """``partition`` if the topic has it; UnknownPartitionError naming the count if not."""
    if type(partition) is not int or not 0 <= partition < num_partitions:
        raise UnknownPartitionError(
            f"topic {topic!r} has {num_partitions} partition(s) (0..{num_partitions - 1}); "
            f"there is no partition {partition!r}"
        )
    return partition


def _closed_error() -> ClosedError:
    return ClosedError("this producer is closed; create a new one")


def _not_bytes(what: str, obj: Any) -> TypeError:
    return TypeError(
        f"{what} must be bytes or None, got {type(obj).__name__}; pass bytes or "
        f"configure {what}_serializer (e.g. 'str', 'json', 'msgpack' or a callable)"
    )


def _validated_headers(headers: Any) -> tuple:
    """Headers as a tuple of (str, bytes | None) pairs; InvalidRecordError otherwise."""
    normalised = normalise_headers([headers])
    return normalised[0] if normalised else ()


def _finalize(state: _State) -> None:
    """Run when the Producer is garbage-collected or at interpreter exit."""
    if not state.closed:
        if state.pending_count():
            log.warning("a Producer was not closed; delivering its %d held record(s)",
                        state.pending_count())
        state.shutdown()


# ---------------------------------------------------------------------- producer


class Producer:
    """Sends records to topics of an EventLog. Thread-safe: share one across threads.

    ``Producer(log, **config)`` or ``log.producer(**config)``; configs are
    ProducerConfig's fields. A context manager: ``close()`` on exit.
    """

    _state_class: type[_State] = _State  # the transactional producer's adds its hooks

    def __new__(cls, log_: EventLog | None = None, **config: Any) -> Producer:
        # Producer(log, transactional_id=...) is a TransactionalProducer (transactions.py).
        if cls is Producer and (config.get("transactional_id") is not None
                                or config.get("transactional.id") is not None):
            from ..transactions import TransactionalProducer
            return super().__new__(TransactionalProducer)
        return super().__new__(cls)

    def __init__(self, log_: EventLog, **config: Any) -> None:
        self.config = ProducerConfig.from_kwargs(config)
        if not isinstance(log_, EventLog):
            raise InvalidConfigError(f"Producer needs an EventLog, got {type(log_).__name__}")
        log_._ensure_open()
        self._log = log_
        self._key_ser = resolve_serializer(self.config.key_serializer, "key_serializer")
        self._value_ser = resolve_serializer(self.config.value_serializer, "value_serializer")
        self._partitioner: Partitioner = resolve_partitioner(
            self.config.partitioner,
            batch_size=self.config.batch_size,
            ignore_keys=self.config.partitioner_ignore_keys,
        )
        self._state = self._state_class(log_, self.config)
        self._linger_ms = self.config.linger_ms
        self._acks0 = self.config.acks == 0
        self._partition_fn = self._partitioner.partition
        self._routes = self._state.routes
        # send() branches out to _serialize when set: serializers, or closed (which raises).
        self._serializing = self._key_ser is not None or self._value_ser is not None
        self._time_ms = log_.clock.time_ms
        self._system_clock = type(log_.clock) is SystemClock
        self._producer_id = self._state.producer_id
        self._producer_epoch = self._state.producer_epoch
        self._attributes = self._state.attributes
        self._keyed_default = (
            isinstance(self._partitioner, DefaultPartitioner)
            and not self._partitioner.ignore_keys
        )
        self._clock = log_.clock
        self._finalizer = weakref.finalize(self, _finalize, self._state)
        log_.register_client(self)

    # ------------------------------------------------------------------ sending

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> DeliveryFuture:
        """Send one record; returns a future of its RecordMetadata.

        ``on_delivery(error, metadata)`` is called once, when the record is
        appended or has failed. With ``linger_ms=0`` the record is appended
        before this returns.

        Raises at once, sending nothing: ClosedError after ``close()``;
        UnknownTopicError; UnknownPartitionError for a partition that does not
        exist; TypeError for a key or value that is not bytes (without a
        serializer); RecordTooLargeError over ``max_request_size`` or the topic's
        ``max_message_bytes``; InvalidRecordError for bad headers or timestamp.
        """
        # The hot path of every producer: kept flat on purpose (each helper call
        # costs about 5% here). The rare cases branch out to helpers.
        if self._serializing:
            key, value = self._serialize(key, value)
        if type(key) is not bytes and key is not None:
            raise _not_bytes("key", key)
        if type(value) is not bytes and value is not None:
            raise _not_bytes("value", value)
        queues = self._routes.get(topic)  # cleared on close and when topics change
        if queues is None:
            queues = self._route(topic)
        if partition is not None:
            q = queues[_explicit_partition(topic, len(queues), partition)]
        elif self._keyed_default and key is not None:  # the default partitioner, inlined
            h = cached_key_hash(key)
            if h is None:  # a key not seen lately
                h = hash_and_cache_key(key)
            q = queues[h % len(queues)]
        else:
            q = self._choose(queues, topic, key, value)
        key_size = -1 if key is None else len(key)
        value_size = -1 if value is None else len(value)
        size = key_size + value_size + (record_overhead_bytes + 2)  # None counts 0 bytes
        if headers:
            headers = _validated_headers(headers)
            size += sum(len(k) + (len(v) if v else 0) for k, v in headers)
        if size > q.record_bytes_max:
            self._too_large(q.partition, size)
        if timestamp_ms is None:
            # SystemClock.time_ms() inlined: one C call instead of a Python method.
            timestamp_ms = _time_ns() // 1_000_000 if self._system_clock else self._time_ms()
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms <= timestamp_ms_max:
            raise InvalidRecordError(timestamp_problem(timestamp_ms))
        if self._linger_ms:
            if headers or on_delivery is not None:
                return self._accumulate(q, key, value, headers, timestamp_ms, on_delivery, size)
            # The common case, inlined from _accumulate: a plain record joining an
            # open batch of plain records, with room (see _PartitionQueue.limit).
            future = _new_object(_BatchedFuture)
            lock = q.lock
            lock.acquire()
            try:
                filled = q.bytes + size
                if filled <= q.limit:
                    keys = q.keys
                    future._batch = q.pending
                    future._index = len(keys)
                    keys.append(key)
                    q.values.append(value)
                    q.timestamps.append(timestamp_ms)
                    q.bytes = filled
                    if filled == q.limit:  # full: append it now
                        self._state.drain(q)
                    return future
            finally:
                lock.release()
            return self._accumulate(q, key, value, headers, timestamp_ms, on_delivery, size)
        part = q.partition
        if part.syncs_each_append:  # fsync="always": the fsync outside q.lock (group commit)
            return self._send_synced(q, key, value, headers, timestamp_ms, on_delivery,
                                     key_size, value_size)
        lock = q.lock
        lock.acquire()  # not ``with``: this path runs once per record, and try is cheaper
        try:  # linger 0 holds no records: nothing to drain first
            sequence = q.next_sequence  # -1 without idempotence
            try:
                offset, timestamp_ms = part.append_record(
                    key, value, headers or None, timestamp_ms, self._attributes,
                    self._producer_id, self._producer_epoch, sequence,
                )
            except StorageError:
                try:  # back off, then retry with the same sequence, still holding the lock
                    attempt = self._state.retry_or_raise(q, 0)
                    offset, timestamp_ms = self._state.append_one(
                        q, key, value, headers or None, timestamp_ms, attempt)
                except StorageError as exc:  # retries ran out: the record fails, not the caller
                    return self._failed_send(q, exc, on_delivery)
            else:
                if sequence >= 0:
                    q.next_sequence = (sequence + 1) % sequence_modulus
            q.sent += 1  # the only metric this path keeps: one increment per send
        finally:
            lock.release()
        future = _new_object(_SentFuture)  # done, its metadata built only when asked
        future._fields = (
            part.topic, part.index, -1 if self._acks0 else offset, timestamp_ms, key_size,
            value_size,
        )
        if on_delivery is not None:
            _call_quietly(on_delivery, None, future._value)
        return future

    def _send_synced(
        self, q: _PartitionQueue, key: bytes | None, value: bytes | None, headers: Any,
        timestamp_ms: int, on_delivery: Any, key_size: int, value_size: int,
    ) -> DeliveryFuture:
        """``send`` with linger 0 under fsync="always": append holding ``q.lock`` (the
        sequence order), then wait for the fsync without it, so that threads sending
        through this producer share one fsync (the partition's group commit). A
        failed fsync fails this record's future; the partition refuses writes from
        then on, so it is not retried."""
        part = q.partition
        with q.lock:
            sequence = q.next_sequence
            try:
                offset, timestamp_ms = part.append_record(
                    key, value, headers or None, timestamp_ms, self._attributes,
                    self._producer_id, self._producer_epoch, sequence, sync=False,
                )
            except StorageError:
                try:
                    attempt = self._state.retry_or_raise(q, 0)
                    offset, timestamp_ms = self._state.append_one(
                        q, key, value, headers or None, timestamp_ms, attempt)
                except StorageError as exc:
                    return self._failed_send(q, exc, on_delivery)
            else:
                if sequence >= 0:
                    q.next_sequence = (sequence + 1) % sequence_modulus
            q.sent += 1
        try:
            part.sync(offset + 1)
        except StorageError as exc:
            return self._failed_send(q, exc, on_delivery)
        future = _new_object(_SentFuture)
        future._fields = (
            part.topic, part.index, -1 if self._acks0 else offset, timestamp_ms, key_size,
            value_size,
        )
        if on_delivery is not None:
            _call_quietly(on_delivery, None, future._value)
        return future

    @staticmethod
    def _failed_send(q: _PartitionQueue, exc: StorageError, on_delivery: Any) -> DeliveryFuture:
        """The record failed after its retries: count it, report it, return its future."""
        q.stats.errors += 1
        if on_delivery is not None:
            _call_quietly(on_delivery, exc, None)
        return DeliveryFuture.completed(None, exc)

    def _serialize(self, key: Any, value: Any) -> tuple[Any, Any]:
        """Apply the configured serializers; ClosedError once the producer is closed."""
        if self._state.closed:
            raise _closed_error()
        if self._key_ser is not None:
            key = self._key_ser(key)
        if self._value_ser is not None:
            value = self._value_ser(value)
        return key, value

    def _route(self, topic: str) -> tuple[_PartitionQueue, ...]:
        """The queues of ``topic``'s partitions, remembered until the topics change.

        The route cache's miss path: a topic not sent to since the last change,
        or a closed producer (close() empties the cache, so this raises).
        """
        state = self._state
        if state.closed:
            raise _closed_error()
        t = self._log.topic_for_produce(topic)
        parts = t.partitions
        queues = tuple(map(state.queue, parts))
        with state.queues_lock:  # _topics_changed clears under it: no stale route survives
            if not state.closed and self._log.topic_map.get(topic) is t and t.partitions is parts:
                self._routes[topic] = queues
        return queues

    def _choose(self, queues: tuple[_PartitionQueue, ...], topic: str, key: bytes | None,
                value: bytes | None) -> _PartitionQueue:
        """Ask the partitioner (a one-partition topic needs no asking)."""
        n = len(queues)
        if n == 1:
            return queues[0]
        chosen = self._partition_fn(topic, key, value, n)
        if type(chosen) is not int or not 0 <= chosen < n:
            chosen = checked_partition(chosen, topic, n)
        return queues[chosen]

    def _topics_changed(self) -> None:
        """Called by the log after a topic is deleted or grows: forget the routes."""
        with self._state.queues_lock:
            self._routes.clear()

    def _too_large(self, part: Partition, size: int) -> None:
        limit = min(self.config.max_request_size, part.config.max_message_bytes)
        which = ("max_request_size" if limit == self.config.max_request_size
                 else f"max_message_bytes of topic {part.topic!r}")
        raise RecordTooLargeError(
            f"the record is about {size + batch_overhead_bytes} bytes serialized, over "
            f"{which}={limit}; send a smaller record or raise the limit"
        )

    def _accumulate(self, q: _PartitionQueue, key: bytes | None, value: bytes | None,
                    headers: tuple | None, timestamp_ms: int,
                    on_delivery: Callable[[Any, Any], None] | None, size: int
                    ) -> DeliveryFuture:
        """Add a record to its partition's lingering batch; returns the record's future.

        The linger deadline is checked by the flusher thread, not here: this path
        runs once per record and reads no clock unless it starts a batch.
        """
        state = self._state
        future = _new_object(_BatchedFuture)
        with q.lock:
            if state.closed:
                raise _closed_error()
            if q.bytes + size > q.batch_bytes_max and q.keys:
                state.drain(q)
            keys = q.keys
            n = len(keys)
            if not n:
                q.deadline_ms = self._clock.monotonic_ms() + self._linger_ms
                q.partition.lingering[q] = q.flush_lingering  # a read appends it first
            future._batch = q.pending
            future._index = n
            keys.append(key)
            q.values.append(value)
            q.timestamps.append(timestamp_ms)
            if headers:
                if q.headers is None:
                    q.headers = [()] * n
                q.headers.append(headers)
            elif q.headers is not None:
                q.headers.append(())
            if on_delivery is not None:
                if q.callbacks is None:
                    q.callbacks = [None] * n
                q.callbacks.append(on_delivery)
            elif q.callbacks is not None:
                q.callbacks.append(None)
            q.bytes += size
            if q.bytes >= q.batch_bytes_max:
                state.drain(q)
                return future
            q.limit = q.batch_bytes_max if q.headers is None and q.callbacks is None else -1
        if not n:
            if state.flusher is None:
                state.start_flusher()
            with state.wakeup:  # wake the flusher only if it would sleep past this deadline
                if q.deadline_ms < state.flusher_wake_ms:
                    state.wakeup.notify()
        return future

    def send_batch(
        self,
        topic: str,
        records: Iterable[Sequence[Any]],
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> BatchMetadata:
        """Send many records at once, appended before this returns (linger does not apply).

        ``records`` are ``(key, value)`` or ``(key, value, headers)`` tuples (all of
        one shape), serialized by the configured serializers. Records go to their
        partitions as the partitioner decides (or all to ``partition``), one
        batch per partition, in input order. Returns their metadata, in order.

        Raises like ``send()`` before anything is appended, for any bad record.
        Cost: one partitioner call per record (none with ``partition`` or a
        one-partition topic), then one encode and append per partition.
        """
        state = self._state
        if state.closed:
            raise _closed_error()
        if not isinstance(records, list):
            records = list(records)
        if not records:
            return BatchMetadata(topic, 0, [], [], [], [])
        keys, values, headers, keyless = self._batch_columns(records)
        t = self._log.topic_for_produce(topic)
        groups = self._group(t, keys, values, partition, keyless)
        if timestamp_ms is None:
            timestamp_ms = self._log.clock.time_ms()
        elif timestamp_problem(timestamp_ms) is not None:
            raise InvalidRecordError(timestamp_problem(timestamp_ms))
        timestamps = [timestamp_ms] * len(keys)
        out_groups: list[tuple[int, int, Sequence[int]]] = []
        for index, indices in groups:
            part = t.partitions[index]
            k, v, h, ts = self._select(indices, keys, values, headers, timestamps)
            q = state.queue(part)
            with q.lock:
                if q.keys:
                    state.drain(q)
                result = state.append_columns(q, k, v, h, ts)
            base = -1 if self.config.acks == 0 else result.base_offset
            out_groups.append((index, base, indices))
        n = len(keys)
        return BatchMetadata(topic, n, out_groups, _Repeat(timestamp_ms, n), keys, values)

    def _batch_columns(self, records: list[Sequence[Any]]
                       ) -> tuple[list, list, list | None, bool]:
        """Validated, serialized columns, and whether any key is None."""
        try:
            lengths = list(map(len, records))  # C-level; a count beats building a set
        except TypeError:
            lengths = [-1]
        width = lengths[0]
        if width not in (2, 3) or lengths.count(width) != len(records):
            shapes = sorted({len(r) if hasattr(r, "__len__") else "no length" for r in records},
                            key=str)
            raise InvalidRecordError(
                "send_batch takes (key, value) or (key, value, headers) tuples, all of one "
                f"shape; got lengths {shapes}"
            )
        columns = split_columns(records, width)
        keys = columns[0] if self._key_ser is None else list(map(self._key_ser, columns[0]))
        values = columns[1] if self._value_ser is None else list(map(self._value_ser, columns[1]))
        key_types = check_bytes_column(keys, "key")
        check_bytes_column(values, "value")
        headers = normalise_headers(columns[2]) if len(columns) > 2 else None
        return keys, values, headers, type(None) in key_types

    def _group(self, t: Any, keys: list, values: list, partition: int | None, keyless: bool
               ) -> list[tuple[int, Sequence[int]]]:
        n = t.num_partitions
        count = len(keys)
        if partition is not None:
            return [(_explicit_partition(t.name, n, partition), range(count))]
        if n == 1:
            return [(0, range(count))]
        name = t.name
        if self._keyed_default and not keyless and n <= group_mask_partitions_max:
            # murmur2 through the cache, in bulk: one byte per record, its partition
            return self._groups_from_lanes(partition_bytes_for_keys(keys, n), n, count)
        if self._keyed_default and not keyless:
            chosen = partitions_for_keys(keys, n)
        else:
            chosen = list(map(self._partitioner.partition, itertools.repeat(name, count), keys,
                              values, itertools.repeat(n, count)))
            if not set(map(type, chosen)) <= {int} or min(chosen) < 0 or max(chosen) >= n:
                bad = next(c for c in chosen if type(c) is not int or not 0 <= c < n)
                checked_partition(bad, name, n)
        if n <= group_mask_partitions_max:
            return self._groups_from_lanes(bytes(chosen), n, count)
        if n <= group_scan_partitions_max:
            # A stable sort of the indices by partition, cut at each partition's count:
            # two C-level passes, about three times faster than a scan per partition.
            order = sorted(range(count), key=chosen.__getitem__)
            groups = []
            start = 0
            for p in range(n):
                size = chosen.count(p) if p < n - 1 else count - start  # the last: the rest
                if size:
                    groups.append((p, order[start : start + size]))
                    start += size
            return groups
        buckets: dict[int, list[int]] = {}
        for i, c in enumerate(chosen):
            b = buckets.get(c)
            if b is None:
                buckets[c] = [i]
            else:
                b.append(i)
        return sorted(buckets.items())

    @staticmethod
    def _groups_from_lanes(lanes: bytes, n: int, count: int
                           ) -> list[tuple[int, Sequence[int]]]:
        """Groups from one byte per record, its partition: per partition a 0/1 mask
        (one C-level translate), which compress() then applies to each column."""
        groups: list[tuple[int, Sequence[int]]] = []
        for p in range(n):
            size = lanes.count(p)
            if size == count:
                return [(p, range(count))]
            if size:
                groups.append((p, _Selection(lanes.translate(_MASK_TABLES[p]), size)))
        return groups

    @staticmethod
    def _select(indices: Sequence[int], keys: list, values: list, headers: list | None,
                timestamps: list[int]) -> tuple[list, list, list | None, list[int]]:
        if isinstance(indices, range) and len(indices) == len(keys):
            return keys, values, headers, timestamps
        if isinstance(indices, _Selection):
            pick = indices.pick
            return (pick(keys), pick(values), None if headers is None else pick(headers),
                    timestamps[: len(indices)])
        if len(indices) == 1:
            i = indices[0]
            return [keys[i]], [values[i]], None if headers is None else [headers[i]], [
                timestamps[i]]
        pick = itemgetter(*indices)  # one C call per column
        return (
            list(pick(keys)),
            list(pick(values)),
            None if headers is None else list(pick(headers)),
            timestamps[: len(indices)],
        )

    # ------------------------------------------------------------------ lifecycle

    def flush(self, timeout: float | None = None) -> None:
        """Append every lingering record now; return when all are delivered.

        ``timeout`` is accepted for Kafka's signature; appends are synchronous here,
        so the call returns once the appends are done.
        """
        self._state.flush_all()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop. Idempotent. ``send`` raises ClosedError afterwards."""
        self._serializing = True  # send() checks ``closed`` before anything else
        # detach(), not calling the finalizer: that one is for a producer nobody closed,
        # and says so in the log. detach() returns None to all but one caller.
        if self._finalizer.detach() is not None:
            self._state.shutdown()

    @property
    def closed(self) -> bool:
        return self._state.closed

    def partitions_for(self, topic: str) -> list[int]:
        """The partition numbers of ``topic`` (Kafka's partitionsFor)."""
        if topic in internal_topics:  # readable, not writable: no auto-creation
            return list(range(self._log.topic(topic).num_partitions))
        return list(range(self._log.topic_for_produce(topic).num_partitions))

    def metrics(self) -> dict[str, float]:
        """Kafka's producer-metrics, by Kafka's names (docs/operations.md lists them),
        plus ``pending_records`` (held in lingering batches) and ``producer_id``.

        Rates and averages cover Kafka's window (the last 30 to 60 s, sampled when
        read: metrics/window.py); an average or max without samples is NaN, as in
        Kafka. ``batch-size-*``, ``compression-rate-avg``, ``request-latency-*`` and
        ``outgoing-byte-*`` describe the batches appended from the accumulator and
        by ``send_batch``; a ``send()`` with ``linger_ms=0`` (a batch of one record)
        counts only in ``record-send-*``, which is all its hot path can afford.
        Thread-safe. Cost: O(partitions sent to).
        """
        return _producer_metrics(self._state)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else f"linger_ms={self._linger_ms}"
        return f"Producer({self._log!r}, {state})"


_MASK_TABLES = tuple(
    bytes(int(b == p) for b in range(256)) for p in range(group_mask_partitions_max)
)  # bytes.translate tables: partition p's byte to 1, every other to 0


class _Selection(Sequence[int]):
    """The indices of the records of a send_batch that go to one partition, kept as
    a mask (one byte per record, 1 for those) until someone asks for the indices."""

    __slots__ = ("_indices", "mask", "size")

    def __init__(self, mask: bytes, size: int) -> None:
        self.mask = mask
        self.size = size
        self._indices: list[int] | None = None

    def pick(self, column: Sequence[Any]) -> list[Any]:
        """The items of ``column`` at these indices, in order (C-level)."""
        return list(compress(column, self.mask))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: Any) -> Any:
        if self._indices is None:
            self._indices = self.pick(range(len(self.mask)))
        return self._indices[i]


class _Repeat(Sequence[int]):
    """A sequence of one value, n times (the batch timestamp), without a list."""

    __slots__ = ("_n", "_value")

    def __init__(self, value: int, n: int) -> None:
        self._value = value
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._value] * len(range(*i.indices(self._n)))
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._value
