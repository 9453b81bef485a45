"""The sender: appends a producer's records to partitions with sequence numbers and retries.

Every batch a partition receives from the producer carries its producer id, epoch
and the partition's next sequence number (idempotence). A storage error is retried
with the same sequence, after ``retry_backoff_ms``, until ``retries`` or
``delivery_timeout_ms`` runs out, so the partition appends the batch once or
recognises the duplicate and returns the original offsets. The caller holds the
queue's lock across the append, which is what keeps sequences in order.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from ..broker import Broker as EventLog  # the broker layer; eventlog.EventLog subclasses it
from ..broker.partition import AppendResult, sequence_modulus
from ..errors import EventLogError, StorageError
from ..records import RecordMetadata
from ..storage.batch import COMPRESSION_CODES
from .config import ProducerConfig
from .futures import DeliveryFuture, SentFuture, call_quietly, new_metadata
from .queues import PartitionQueue, acquire_contended

__all__ = ["Sender"]

log = logging.getLogger("eventlog.producer")

_producer_ids = itertools.count(1)


class Sender:
    """The producer's identity (id, epoch, batch attributes) and its appends."""

    def __init__(self, log_: EventLog, config: ProducerConfig) -> None:
        self.log = log_
        self.config = config
        self.producer_id = next(_producer_ids) if config.enable_idempotence else -1
        self.producer_epoch = 0 if self.producer_id >= 0 else -1
        self.attributes = COMPRESSION_CODES[config.compression_type]

    def send_now(
        self, q: PartitionQueue, key: bytes | None, value: bytes | None,
        headers: tuple | None, timestamp_ms: int,
        on_delivery: Callable[[Any, Any], None] | None,
    ) -> DeliveryFuture:
        """``send()`` with ``linger_ms=0``: append one record as a batch of one with the
        next sequence (retrying storage errors) and return its done future.

        The only path that appends a single record. Under fsync="always" the fsync is
        waited for without ``q.lock``, so that threads sending through this producer
        share one fsync (the partition's group commit). A record whose retries ran
        out, or whose fsync failed, fails its own future (the partition refuses
        writes after a failed fsync, so that is not retried).
        """
        part = q.partition
        sync = part.syncs_each_append
        pid = self.producer_id
        attempt = 0
        lock = q.lock
        if not lock.acquire(False):  # not ``with``: once per record, and try is cheaper
            acquire_contended(lock)  # another thread sends to this partition: no convoy
        try:
            while True:
                try:
                    offset, timestamp_ms = part.append_record(
                        key, value, headers, timestamp_ms, self.attributes, pid,
                        self.producer_epoch, q.next_sequence,  # -1 without idempotence
                        not sync,  # under fsync="always", synced below without the lock
                    )
                    break
                except StorageError:
                    attempt = self.retry_or_raise(q, attempt)  # re-raises when out of retries
            if pid >= 0:
                q.next_sequence = (q.next_sequence + 1) % sequence_modulus
            q.sent += 1  # the only metric this path keeps: one increment per send
        except StorageError as exc:  # retries ran out: the record fails, not the caller
            return self.failed_send(q, exc, on_delivery)
        finally:
            lock.release()
        if sync:
            try:
                part.sync(offset + 1)
            except StorageError as exc:
                return self.failed_send(q, exc, on_delivery)
        future = SentFuture()  # no __init__; done, its metadata built only when asked
        future._fields = (
            part.topic, part.index, -1 if q.acks0 else offset, timestamp_ms,
            -1 if key is None else len(key), -1 if value is None else len(value),
        )
        if on_delivery is not None:
            call_quietly(on_delivery, None, future._value)
        return future

    @staticmethod
    def failed_send(q: PartitionQueue, exc: StorageError, on_delivery: Any) -> DeliveryFuture:
        """The record failed after its retries: count it, report it, return its future."""
        q.stats.errors += 1
        if on_delivery is not None:
            call_quietly(on_delivery, exc, None)
        return DeliveryFuture.completed(None, exc)

    def append_columns(self, q: PartitionQueue, keys: list, values: list,
                       headers: list | None, timestamps: list[int]) -> AppendResult:
        """Append validated columns as one batch with the next sequence, and count it in
        the queue's stats (one clock read before and after: per batch, not per record).
        Caller holds q.lock."""
        clock = self.log.clock
        started_ms = clock.monotonic_ms()
        result = self._append_columns(q, keys, values, headers, timestamps)
        q.stats.batch_appended(len(keys), result, started_ms, clock.monotonic_ms())
        return result

    # send_batch()'s append (caller holds q.lock): the transactional state adds its
    # admission check here; the flusher's appends of lingering batches do not take it.
    append_sent_columns = append_columns

    def _append_columns(self, q: PartitionQueue, keys: list, values: list,
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

    def retry_or_raise(self, q: PartitionQueue, attempt: int, count: int = 1) -> int:
        """Back off before retrying the same sequence (of ``count`` records), or re-raise
        the StorageError being handled when retries run out. Returns the attempt count."""
        cfg = self.config
        attempt += 1
        if attempt > cfg.retries or attempt * cfg.retry_backoff_ms >= cfg.delivery_timeout_ms:
            raise  # the StorageError being handled (called from its except block)
        q.stats.retries += count
        log.warning("append to %s-%d failed; retry %d with the same sequence",
                    q.partition.topic, q.partition.index, attempt, exc_info=True)
        time.sleep(cfg.retry_backoff_ms / 1000.0)
        return attempt

    def deliver_one(self, q: PartitionQueue, key: bytes | None, value: bytes | None,
                    headers: tuple | None, timestamp_ms: int
                    ) -> tuple[RecordMetadata | None, BaseException | None]:
        """Append one record of a batch the partition refused as a whole, as a batch of
        one (so that a bad record fails only its own future); its metadata or its
        error. Caller holds ``q.lock``."""
        try:
            result = self._append_columns(q, [key], [value], None if headers is None else
                                          [headers], [timestamp_ms])
        except EventLogError as exc:
            return None, exc
        except Exception as exc:
            return None, unexpected(q, 1, exc)
        append_time = result.log_append_time_ms
        return new_metadata((
            q.partition.topic, q.partition.index, -1 if q.acks0 else result.base_offset,
            timestamp_ms if append_time < 0 else append_time,
            -1 if key is None else len(key), -1 if value is None else len(value),
        )), None

def unexpected(q: PartitionQueue, count: int, exc: Exception) -> EventLogError:
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
