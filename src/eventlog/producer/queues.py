"""Per-partition producer state: the next sequence number, the lingering batch, its stats.

A ``PartitionQueue`` has two locks, always taken in this order:

* ``batch_lock`` guards the open batch (its columns, byte count, deadline);
* ``lock`` guards the next sequence number: whoever appends to the partition for
  this producer (a ``send()``, the flusher, a reader flushing lingering records)
  holds it from choosing the sequence number until the partition accepted the
  batch, so sequence numbers have no gaps.

A full batch is taken under ``batch_lock``, and ``lock`` is taken before
``batch_lock`` is released, so batches are appended in the order they were taken
(records of one partition keep their send order) while other threads already fill
the next batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..broker.partition import AppendResult, Partition, sequence_modulus
from ..metrics.window import WindowedMax
from .futures import _DONE, PendingBatch

if TYPE_CHECKING:
    from .config import ProducerConfig

__all__ = ["PartitionQueue", "QueueStats", "record_size"]

record_overhead_bytes = 16  # msgpack framing + timestamp per record, an upper estimate
batch_overhead_bytes = 64  # batch header + payload framing
record_size_base = record_overhead_bytes + 2  # + key and value sizes, None counting -1


def record_size(key: bytes | None, value: bytes | None, headers: tuple | None) -> int:
    """The bytes a record counts for in its batch (the same sum ``send()`` makes inline)."""
    size = (-1 if key is None else len(key)) + (-1 if value is None else len(value))
    size += record_size_base
    if headers:
        size += sum(len(k) + (len(v) if v else 0) for k, v in headers)
    return size


contended_yields_max = 8  # GIL yields before a contended acquire blocks (see below)
contended_sleep_s = 0.00002  # long enough for the holder to take the GIL and finish
_sleep = time.sleep


def acquire_contended(lock: Any) -> None:
    """Take a queue ``lock`` that another thread holds, without starting a lock convoy.

    A blocking ``acquire()`` hands the lock to the waiter the moment the holder
    releases it, but the waiter cannot run until the holder gives up the GIL; the
    holder's next send then blocks on the lock the waiter owns, and from then on the
    GIL changes hands on every record (measured: 4 threads sending through one
    producer at half one thread's rate). So this gives up the GIL instead
    (``sleep(0)``) and tries again: the holder runs on, releases the lock while it
    holds the GIL, and each thread sends for its whole GIL slice. After
    ``contended_yields_max`` tries (a holder waiting on a disk, say) it blocks.
    """
    for _ in range(contended_yields_max):
        _sleep(contended_sleep_s)
        if lock.acquire(False):
            return
    lock.acquire()


def _nothing() -> None:
    """A queue's flush_lingering before its producer sets it."""


class PartitionQueue:
    """Per-partition producer state: the next sequence number and the lingering batch,
    kept as columns so draining it hands them to the partition without a copy."""

    __slots__ = (
        "acks0", "batch_bytes_max", "batch_lock", "bytes", "callbacks", "deadline_ms",
        "flush_lingering", "headers", "keys", "lock", "next_sequence", "partition", "pending",
        "rare", "record_bytes_max", "room", "sent", "stats", "timestamps", "values",
    )

    def __init__(self, partition: Partition, config: ProducerConfig) -> None:
        self.partition = partition
        self.lock = threading.Lock()  # the sequence and the appends
        self.batch_lock = threading.Lock()  # the open batch; taken before ``lock``
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
        self.stats = QueueStats()
        # Append the lingering batch now (set by the producer's state): what a read of
        # the partition or a wait on a future calls.
        self.flush_lingering: Callable[[], None] = _nothing
        self._reset()

    def _reset(self) -> None:
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.headers: list[tuple] | None = None  # made at the first record with headers
        self.timestamps: list[int] = []
        self.pending = PendingBatch(self.partition.topic, self.partition.index, self.acks0)
        self.pending.keys, self.pending.values = self.keys, self.values
        self.pending.timestamps = self.timestamps
        self.pending.queue = self
        self.callbacks: list[Callable[[Any, Any], None] | None] | None = None
        self.rare = False  # a record of this batch has headers or a callback
        self.bytes = 0
        # batch_bytes_max while a batch is open and has no header or callback column:
        # then send() adds a record that leaves room inline (one test); else -1.
        self.room = -1

    def add_rare(self, n: int, headers: tuple | None,
                 on_delivery: Callable[[Any, Any], None] | None) -> None:
        """Record ``n``'s headers and callback columns, made at the first record that has
        one (earlier records get ``()`` / None), and send the batch's further
        records through the accumulator's general path. Caller holds ``batch_lock``."""
        self.rare = True
        self.room = -1
        if headers is not None or self.headers is not None:
            if self.headers is None:
                self.headers = [()] * n
            self.headers.append(headers or ())
        if on_delivery is not None or self.callbacks is not None:
            if self.callbacks is None:
                self.callbacks = [None] * n
            self.callbacks.append(on_delivery)

    def take(self) -> tuple[list, list, list | None, list, PendingBatch, list | None]:
        """Remove and return the lingering batch's columns and its shared outcome."""
        taken = (self.keys, self.values, self.headers, self.timestamps, self.pending,
                 self.callbacks)
        self.pending.queue = None
        self.partition.lingering.pop(self, None)
        self._reset()
        return taken

    def check(self, idempotent: bool) -> None:
        """Assert the queue's invariants. Caller holds both locks. O(records lingering)."""
        n = len(self.keys)
        assert len(self.values) == n and len(self.timestamps) == n, "columns out of step"
        assert self.headers is None or len(self.headers) == n, "headers out of step"
        assert self.callbacks is None or len(self.callbacks) == n, "callbacks out of step"
        assert self.rare == (self.headers is not None or self.callbacks is not None)
        pending = self.pending
        assert pending._state != _DONE and pending.queue is self, "the open batch is resolved"
        assert pending.keys is self.keys and pending.values is self.values
        assert pending.timestamps is self.timestamps
        headers = self.headers or [None] * n
        expected = sum(map(record_size, self.keys, self.values, headers))
        assert self.bytes == expected, (self.bytes, expected)
        assert (self in self.partition.lingering) == bool(n), "lingering registration"
        assert self.room == (self.batch_bytes_max if n and not self.rare else -1), (
            self.room, n, self.rare)
        if n:
            # Drained when it reaches batch_bytes_max: an open batch is below it.
            assert 0 < self.bytes < self.batch_bytes_max, (self.bytes, self.batch_bytes_max)
            assert self.deadline_ms > 0, self.deadline_ms
        if idempotent:
            assert 0 <= self.next_sequence < sequence_modulus, self.next_sequence
        else:
            assert self.next_sequence == -1, self.next_sequence
        assert self.sent >= 0
        self.stats.check()


class QueueStats:
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

    def check(self) -> None:
        """Assert that every total is a count or sum that never went below zero."""
        for name in self.totals_fields:
            assert getattr(self, name) >= 0, (name, getattr(self, name))
        assert self.batch_records >= self.batches, (self.batch_records, self.batches)
