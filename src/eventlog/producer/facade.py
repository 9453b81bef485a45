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
assigned and batches appended under one lock per partition (the open batch has
a lock of its own, so threads fill the next batch while one is appended): records
with the same key keep their send order even with many threads sending.

The package, one noun a module: this facade validates and routes; then the
``accumulator`` (lingering batches, the flusher) or the ``sender`` (sequences,
retries, the ``linger_ms=0`` path) appends; ``bulk`` is ``send_batch``;
``futures`` what ``send()`` returns; ``queues`` the per-partition state.

Nothing accepted by ``send()`` is dropped silently: ``close()`` flushes, an
``EventLog.close()`` closes its producers first, and a producer that is
garbage-collected or still open at interpreter exit flushes what it holds, or
fails those futures with ClosedError and logs an error.
"""


from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..broker import Broker as EventLog  # the broker layer; eventlog.EventLog subclasses it
from ..broker.partition import Partition, timestamp_ms_max, timestamp_problem
from ..broker.topic import internal_topics
from ..clock import SystemClock
from ..errors import InvalidConfigError, InvalidRecordError, RecordTooLargeError
from ..partitioning import (
    DefaultPartitioner,
    Partitioner,
    cached_key_hash,
    checked_partition,
    hash_and_cache_key,
    resolve_partitioner,
)
from ..serde import resolve_serializer
from .accumulator import State, finalize
from .bulk import BatchMetadata, BulkSender
from .checks import closed_error, explicit_partition, not_bytes, validated_headers
from .config import ProducerConfig
from .futures import BatchedFuture, DeliveryFuture, new_object
from .metrics import producer_metrics
from .queues import PartitionQueue, acquire_contended, batch_overhead_bytes, record_size_base

__all__ = ["Producer"]

_time_ns = time.time_ns


# What Producer(log, transactional_id=...) makes: TransactionalProducer, which
# transactions.py (a layer above; the package imports it) registers here.
_transactional_class: list[type[Producer]] = []


def register_transactional_class(cls: type[Producer]) -> type[Producer]:
    """Class decorator: ``cls`` is what ``Producer(log, transactional_id=...)`` makes."""
    _transactional_class[:] = [cls]
    return cls


class Producer:
    """Sends records to topics of an EventLog. Thread-safe: share one across threads.

    ``Producer(log, **config)`` or ``log.producer(**config)``; configs are
    ProducerConfig's fields. A context manager: ``close()`` on exit.
    """

    _state_class: type[State] = State  # the transactional producer's adds its hooks

    def __new__(cls, log_: EventLog | None = None, **config: Any) -> Producer:
        if cls is Producer and (config.get("transactional_id") is not None
                                or config.get("transactional.id") is not None):
            assert _transactional_class, "eventlog.transactions (the package imports it)"
            return super().__new__(_transactional_class[0])
        return super().__new__(cls)

    def __init__(self, log_: EventLog, **config: Any) -> None:
        self.config = ProducerConfig.from_kwargs(config)
        if not isinstance(log_, EventLog):
            raise InvalidConfigError(f"Producer needs an EventLog, got {type(log_).__name__}")
        log_.ensure_open()
        self._log = log_
        self._key_ser = resolve_serializer(self.config.key_serializer, "key_serializer")
        self._value_ser = resolve_serializer(self.config.value_serializer, "value_serializer")
        self._partitioner: Partitioner = resolve_partitioner(
            self.config.partitioner,
            batch_size=self.config.batch_size,
            ignore_keys=self.config.partitioner_ignore_keys,
        )
        self._state = state = self._state_class(log_, self.config)
        self._linger_ms = self.config.linger_ms
        self._partition_fn = self._partitioner.partition
        self._routes = state.routes
        # send() branches out to _serialize when set: serializers, or closed (which raises).
        self._serializing = self._key_ser is not None or self._value_ser is not None
        self._time_ms = log_.clock.time_ms
        self._system_clock = type(log_.clock) is SystemClock
        self._producer_id = state.producer_id  # the transactional producer's, kept in step
        self._producer_epoch = state.producer_epoch
        self._attributes = state.attributes
        self._keyed_default = (
            isinstance(self._partitioner, DefaultPartitioner)
            and not self._partitioner.ignore_keys
        )
        # The two append paths of send(), bound once: send() inlines the accumulator's
        # common case and calls _accumulate (the batch lock held) for the rest.
        self._accumulate = state.accumulate_locked
        self._send_now = state.send_now
        self._bulk = BulkSender(state, self._key_ser, self._value_ser, self._partitioner,
                                self._keyed_default)
        self._finalizer = weakref.finalize(self, finalize, state)
        log_.register_client(self, on_topics_changed=self._topics_changed)

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

        ``on_delivery(error, metadata)`` is called once, when the record is appended
        or has failed. With ``linger_ms=0`` the record is appended before this returns.

        Cost: O(record bytes): a cached key hash and a list append under the queue
        lock; the send that fills a batch pays its encode and append (``linger_ms=0``:
        every send, one batch of one record).
        Thread safety: any thread; records of one partition keep their send order.
        Raises: at once, sending nothing: ClosedError after ``close()``;
            UnknownTopicError; UnknownPartitionError for a partition that does not
            exist; TypeError for a key or value that is not bytes (without a
            serializer); RecordTooLargeError over ``max_request_size`` or the topic's
            ``max_message_bytes``; InvalidRecordError for bad headers or timestamp.
            A failed delivery (StorageError after the retries) fails the future.
        """
        # The hot path of every producer: kept flat (each helper call costs about 5%
        # here); the rare cases branch out to helpers.
        if self._serializing:
            key, value = self._serialize(key, value)
        if type(key) is not bytes and key is not None:
            raise not_bytes("key", key)
        if type(value) is not bytes and value is not None:
            raise not_bytes("value", value)
        queues = self._routes.get(topic)  # cleared on close and when topics change
        if queues is None:
            queues = self._route(topic)
        if partition is not None:
            q = queues[explicit_partition(topic, len(queues), partition)]
        elif self._keyed_default and key is not None:  # the default partitioner, inlined
            h = cached_key_hash(key)
            if h is None:  # a key not seen lately
                h = hash_and_cache_key(key)
            q = queues[h % len(queues)]
        else:
            q = self._choose(queues, topic, key, value)
        # queues.record_size(), inlined: None counts -1 here, 0 bytes in the sum
        size = (-1 if key is None else len(key)) + (-1 if value is None else len(value)) + (
            record_size_base)
        if headers:
            headers = validated_headers(headers)
            size += sum(len(k) + (len(v) if v else 0) for k, v in headers)
        if size > q.record_bytes_max:
            self._too_large(q.partition, size)
        if timestamp_ms is None:
            # SystemClock.time_ms() inlined: one C call instead of a Python method.
            timestamp_ms = _time_ns() // 1_000_000 if self._system_clock else self._time_ms()
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms <= timestamp_ms_max:
            raise InvalidRecordError(timestamp_problem(timestamp_ms))
        if self._linger_ms:
            # The accumulator's common case, inlined (a call here costs about 10% of a
            # send): an open batch without header or callback columns that keeps room
            # after this record (``q.room`` is -1 otherwise) takes it under its lock.
            lock = q.batch_lock
            if not lock.acquire(False):  # not ``with``: a try is cheaper
                acquire_contended(lock)  # another thread sends to this partition: no convoy
            filled = q.bytes + size
            if filled < q.room and on_delivery is None and not headers:
                try:
                    keys = q.keys
                    future = new_object(BatchedFuture)
                    future._batch = q.pending
                    future._index = len(keys)
                    keys.append(key)
                    q.values.append(value)
                    q.timestamps.append(timestamp_ms)
                    q.bytes = filled
                finally:
                    lock.release()
                return future
            # Everything else (opens, fills or overflows a batch; headers, callbacks):
            # the general path, which releases the lock.
            return self._accumulate(q, key, value, headers or None, timestamp_ms,
                                    on_delivery, size)
        return self._send_now(q, key, value, headers or None, timestamp_ms, on_delivery)

    def _serialize(self, key: Any, value: Any) -> tuple[Any, Any]:
        """Apply the configured serializers; ClosedError once the producer is closed."""
        if self._state.closed:
            raise closed_error()
        if self._key_ser is not None:
            key = self._key_ser(key)
        if self._value_ser is not None:
            value = self._value_ser(value)
        return key, value

    def _route(self, topic: str) -> tuple[PartitionQueue, ...]:
        """The queues of ``topic``'s partitions, remembered until the topics change.

        The route cache's miss path: a topic not sent to since the last change,
        or a closed producer (close() empties the cache, so this raises).
        """
        state = self._state
        if state.closed:
            raise closed_error()
        t = self._log.topic_for_produce(topic)
        parts = t.partitions
        queues = tuple(map(state.queue, parts))
        with state.queues_lock:  # _topics_changed clears under it: no stale route survives
            if not state.closed and self._log.topic_map.get(topic) is t and t.partitions is parts:
                self._routes[topic] = queues
        return queues

    def _choose(self, queues: tuple[PartitionQueue, ...], topic: str, key: bytes | None,
                value: bytes | None) -> PartitionQueue:
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

        Cost: one partitioner call per record (none with ``partition``, a
        one-partition topic or the default partitioner's cached keys), then one
        encode and append per partition; no object per record until the metadata
        is read.
        Thread safety: any thread; holds one partition's queue lock at a time.
        Raises: like ``send()``, before anything is appended, for any bad record
            (InvalidRecordError also for records of mixed shapes); StorageError
            when a partition's append fails after the retries (the partitions
            before it were appended).
        """
        return self._bulk.send(topic, records, partition, timestamp_ms)

    # ------------------------------------------------------------------ lifecycle

    def flush(self, timeout: float | None = None) -> None:
        """Append every lingering record now; return when all are delivered.

        ``timeout`` is accepted for Kafka's signature; appends are synchronous here,
        so the call returns once the appends are done.
        Cost: one encode and append per partition holding records.
        Thread safety: any thread; other threads may keep sending meanwhile.
        Raises: nothing; a failed append fails its records' futures.
        """
        self._state.flush_all()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the flusher thread. Idempotent; ``send`` raises ClosedError
        afterwards. After ``EventLog.close()`` the held records fail with ClosedError.

        Cost: as ``flush``, plus joining the flusher thread.
        Thread safety: any thread; a send racing with it is delivered or raises
            ClosedError, never left pending.
        Raises: nothing.
        """
        self._serializing = True  # send() checks ``closed`` before anything else
        # detach(), not calling the finalizer: that one is for a producer nobody closed,
        # and says so in the log. detach() returns None to all but one caller.
        if self._finalizer.detach() is not None:
            self._state.shutdown()

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called (or the producer was finalized)."""
        return self._state.closed

    def partitions_for(self, topic: str) -> list[int]:
        """The partition numbers of ``topic`` (Kafka's partitionsFor).

        Cost: O(partitions); may create the topic (``auto_create_topics``).
        Thread safety: any thread.
        Raises: UnknownTopicError; ClosedError if the log is closed.
        """
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
        Cost: O(partitions sent to).
        Thread safety: any thread; lock-free reads of totals updated per batch.
        Raises: nothing.
        """
        return producer_metrics(self._state)

    def check(self) -> None:
        """Assert the invariants of the producer's state: per partition queue, the
        lingering batch's columns in step, its byte count equal to the sum of its
        records' sizes and under ``batch_size``, its future unresolved and its entry
        in the partition's ``lingering``; sequences in range; routes naming the
        producer's own queues; after ``close()``, nothing held and no flusher; and
        the partitioner's own ``check()`` if it has one.

        Cost: O(partitions sent to + records lingering).
        Thread safety: call it when no thread is sending (it takes each queue's lock
            in turn, so a concurrent send may see a half-checked state).
        Raises: AssertionError naming the broken invariant.
        """
        self._state.check()
        partitioner_check = getattr(self._partitioner, "check", None)
        if callable(partitioner_check):
            partitioner_check()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else f"linger_ms={self._linger_ms}"
        return f"Producer({self._log!r}, {state})"
